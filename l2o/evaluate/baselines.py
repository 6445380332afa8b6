"""Fixed analytical optimizers to compare against (``baseline.py --optimizer``), and the repeat
loop shared by every evaluation.

Deviation from the reference: with the Keras path on (the default) the l2o-only rules
(Momentum, AddSign, PowerSign) are built from the l2o analytical policies instead of failing.
"""

import keras
import numpy as np

from l2o.errors import L2OError, unknown
from l2o.evaluate.fit import evaluate_model
from l2o.evaluate.functions import evaluate_function
from l2o.evaluate.problems import check_problem, get_eval_problem, is_function_problem


def _entry(class_name, **config):
    return {"class_name": class_name, "config": config}


BASELINES = {
    "adam": _entry("Adam", learning_rate=0.005, beta_1=0.9, beta_2=0.999),
    "rmsprop": _entry("RMSProp", learning_rate=0.005, rho=0.9),
    "sgd": _entry("SGD", learning_rate=0.2),
    "momentum": _entry("SGD", learning_rate=0.5, momentum=0.9),
    "momentum_custom": _entry("Momentum", learning_rate=0.5, beta_1=0.9),
    "addsign": _entry("AddSign", learning_rate=0.1, beta_1=0.9, beta_2=0.999),
    "powersign": _entry("PowerSign", learning_rate=0.1, beta_1=0.9, beta_2=0.999),
    "adam_deep": _entry("Adam", learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    "rmsprop_deep": _entry("RMSProp", learning_rate=0.0005, rho=0.9),
    "sgd_deep": _entry("SGD", learning_rate=0.2),
    "momentum_deep": _entry("Momentum", learning_rate=0.2, beta_1=0.9),
    "addsign_deep": _entry("AddSign", learning_rate=0.05, beta_1=0.9, beta_2=0.999),
    "powersign_deep": _entry("PowerSign", learning_rate=0.05, beta_1=0.9, beta_2=0.999),
}

# Table class names that Keras implements; the others exist only as l2o analytical policies.
KERAS_CLASSES = {
    "Adam": keras.optimizers.Adam,
    "RMSProp": keras.optimizers.RMSprop,
    "SGD": keras.optimizers.SGD,
}


def make_baseline(key, use_keras=True):
    """A fresh optimizer for baseline ``key`` (a key of :data:`BASELINES`).

    ``use_keras=True``: stock Keras classes for Adam, RMSProp and SGD, l2o analytical rules for
    the rest. ``use_keras=False``: always the l2o analytical rule (time-independent bias
    correction); the Keras-only ``momentum`` entry (SGD with momentum) is then an error.
    """
    if key not in BASELINES:
        raise unknown("baseline optimizer", key, BASELINES)
    class_name, config = BASELINES[key]["class_name"], dict(BASELINES[key]["config"])
    if use_keras and class_name in KERAS_CLASSES:
        return KERAS_CLASSES[class_name](**config)
    if "momentum" in config:
        raise L2OError(f"baseline '{key}' exists only as a Keras optimizer (the l2o SGD rule "
                       "has no momentum); use it with keras enabled, or use 'momentum_custom'")
    try:
        from l2o import build_analytical_optimizer
    except ImportError as error:
        raise L2OError(f"baseline '{key}' needs l2o.build_analytical_optimizer, which cannot be "
                       f"imported: {error}") from None
    return build_analytical_optimizer(class_name, config)


def run_repeats(make_optimizer, problem, repeat, data_dir=None, debug=False, seed=None,
                progress=True, dataset=None):
    """Evaluate ``repeat`` fresh optimizers from ``make_optimizer()`` on ``problem``.

    ``problem`` is a key of the evaluation table or a problem dict; function problems (those
    with ``steps``) go to :func:`evaluate_function`, the rest to :func:`evaluate_model`
    (``dataset`` overrides their dataset). Each result key is stacked over the runs on a new
    axis 0. With ``seed``, run ``i`` uses ``seed + i``. ``data_dir``, ``debug`` and ``progress``
    only concern model problems.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise L2OError(f"repeat must be a positive integer, got {repeat!r}")
    problem = check_problem(get_eval_problem(problem, dataset=dataset))
    runs = []
    for i in range(int(repeat)):
        run_seed = None if seed is None else int(seed) + i
        optimizer = make_optimizer()
        if is_function_problem(problem):
            runs.append(evaluate_function(optimizer, problem["target"], problem["config"],
                                          problem["steps"], seed=run_seed))
        else:
            runs.append(evaluate_model(
                optimizer, problem["target"], problem["dataset"], problem["epochs"],
                problem["batch_size"], problem["config"], dp_args=problem.get("dp_args"),
                data_dir=data_dir, debug=debug, seed=run_seed, progress=progress))
    return {key: np.stack([run[key] for run in runs]) for key in runs[0]}
