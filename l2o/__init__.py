"""l2o: learned optimizers by Optimizer Amalgamation, on TensorFlow 2 / Keras 3.

    opt = l2o.load("pre-trained/choice-large/7")     # a keras.optimizers.Optimizer
    model.compile(optimizer=opt, loss=...)
"""

from l2o.errors import L2OError
from l2o.optimizer import LearnedOptimizer, build_analytical_optimizer
from l2o.policies import build_policy, get_policy_class, policy_names
from l2o.saving import export, load, load_policy

__all__ = ["L2OError", "LearnedOptimizer", "build_analytical_optimizer", "build_policy",
           "get_policy_class", "policy_names", "export", "load", "load_policy"]
