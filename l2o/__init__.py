"""l2o: learned optimizers by Optimizer Amalgamation, on TensorFlow 2 / Keras 3.

    opt = l2o.load("pre-trained/choice-large/7")     # a keras.optimizers.Optimizer
    model.compile(optimizer=opt, loss=...)

The names backed by TensorFlow are imported on first use, so ``import l2o`` stays light:
the scripts check their arguments (and ``python -m l2o.plot`` draws its figures) without
paying for a TensorFlow import, and the device setup still runs before TensorFlow starts.
"""

import importlib

from l2o.errors import L2OError

# Public name -> the module that defines it (imported on first attribute access).
_LAZY = {
    "LearnedOptimizer": "l2o.optimizer",
    "build_analytical_optimizer": "l2o.optimizer",
    "build_policy": "l2o.policies",
    "get_policy_class": "l2o.policies",
    "policy_names": "l2o.policies",
    "export": "l2o.saving",
    "load": "l2o.saving",
    "load_policy": "l2o.saving",
    "build": "l2o.strategy",
    "build_from_config": "l2o.strategy",
    "package": "l2o.strategy",
}

__all__ = ["L2OError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'l2o' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
