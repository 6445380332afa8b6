"""The named evaluation problems (``--problem`` keys) and their lookup.

A *model problem* trains a fresh Keras classifier on a dataset; its dict holds ``target``,
``dataset``, ``epochs``, ``batch_size``, ``config`` (builder keyword arguments) and, for the
differentially private ones, ``dp_args``. A *function problem* minimises a synthetic function;
its dict holds ``target``, ``config`` and ``steps``.

Deviation from the reference: ``conv_kmnist`` trains on KMNIST (the reference used MNIST).
"""

import copy

from l2o.errors import L2OError, unknown

_CONV_TRAIN = {"layers": [[16, 3, 1], 2, [32, 5, 1], 2], "activation": "relu"}
_CONV_WIDER = {"layers": [[32, 3, 1], 2, [64, 5, 1], 2], "activation": "relu"}
_CONV_DEEPER = {
    "layers": [[16, 3, 1], [32, 3, 2], [32, 3, 1], [64, 3, 2], [64, 3, 1]],
    "activation": "relu",
}
_CONV_DEEPER_POOL = {
    "layers": [[16, 3, 1], [32, 3, 1], [32, 3, 1], 2, [64, 3, 1], [64, 3, 1], 2],
    "activation": "relu",
}
_CONV_AVG = {
    "layers": [[16, 3, 1], 2, [32, 5, 1], 2, [0, 3, 1]],
    "head_type": "average",
    "activation": "relu",
}
_NAS = {"filters": 16, "activation": "relu"}
_DP = {"clip_norm": 1.0, "noise_multiplier": 1.1}


def _model(target, dataset, config, batch_size=128, epochs=25, dp_args=None):
    problem = {
        "target": target,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "config": copy.deepcopy(config),
    }
    if dp_args is not None:
        problem["dp_args"] = dict(dp_args)
    return problem


def _function(target, config, steps=1000):
    return {"target": target, "config": config, "steps": steps}


EVAL_PROBLEMS = {
    "mlp_train": _model(
        "mlp_classifier", "mnist", {"layers": [20], "activation": "sigmoid"}),
    "conv_train": _model("conv_classifier", "mnist", _CONV_TRAIN),
    "conv_train_dp": _model("conv_classifier", "mnist", _CONV_TRAIN, dp_args=_DP),
    "conv_kmnist_dp": _model("conv_classifier", "kmnist", _CONV_TRAIN, dp_args=_DP),
    "conv_avg": _model("conv_classifier", "mnist", _CONV_AVG),
    "conv_kmnist": _model("conv_classifier", "kmnist", _CONV_TRAIN),
    "conv_fmnist": _model("conv_classifier", "fashion_mnist", _CONV_TRAIN),
    "conv_train_cifar10": _model("conv_classifier", "cifar10", _CONV_TRAIN),
    "conv_cifar10": _model("conv_classifier", "cifar10", _CONV_DEEPER),
    "conv_smallbatch": _model("conv_classifier", "mnist", _CONV_TRAIN, batch_size=32),
    "conv_wider": _model("conv_classifier", "mnist", _CONV_WIDER),
    "conv_deeper": _model("conv_classifier", "mnist", _CONV_DEEPER),
    "conv_deeper_pool": _model("conv_classifier", "mnist", _CONV_DEEPER_POOL),
    "conv_cifar10_pool": _model("conv_classifier", "cifar10", _CONV_DEEPER_POOL),
    "conv_cifar10_wider": _model("conv_classifier", "cifar10", _CONV_WIDER),
    "conv_svhn": _model("conv_classifier", "svhn_cropped", _CONV_TRAIN),
    "conv_nas": _model("nas_classifier", "mnist", _NAS),
    "conv_nas_cifar": _model("nas_classifier", "cifar10", _NAS),
    "resnet": _model("resnet", "cifar10", {"depth": 28, "width": 1}),
    "resnet_52": _model("resnet", "cifar10", {"depth": 52, "width": 1}),
    "resnet_52_100": _model("resnet", "cifar100", {"depth": 52, "width": 1}),
    "resnet_100_100": _model("resnet", "cifar100", {"depth": 100, "width": 1}),
    "wide_resnet": _model("resnet", "cifar10", {"depth": 28, "width": 4}),
    "rastrigin2": _function("Rastrigin", {"n": 2, "alpha": 10}),
    "rastrigin10": _function("Rastrigin", {"n": 10, "alpha": 10}),
    "rastrigin20": _function("Rastrigin", {"n": 20, "alpha": 10}),
    "quadratic10": _function("Quadratic", {"n": 10}),
    "quadratic20": _function("Quadratic", {"n": 20}),
    "quadratic100": _function("Quadratic", {"n": 100}),
}


def is_function_problem(problem):
    """True for a synthetic-function problem (it counts ``steps``), False for a model problem."""
    return "steps" in problem


def get_eval_problem(problem, dataset=None):
    """Return the problem dict for a key of :data:`EVAL_PROBLEMS` (a dict passes through).

    A key returns a private deep copy, so callers may edit it. ``dataset``, when given, replaces
    the dataset of a model problem (e.g. ``"mnist_5k"`` to evaluate offline); function problems
    have no dataset and are returned unchanged.
    """
    if isinstance(problem, dict):
        result = problem
    elif isinstance(problem, str) and problem in EVAL_PROBLEMS:
        result = copy.deepcopy(EVAL_PROBLEMS[problem])
    else:
        raise unknown("evaluation problem", problem, EVAL_PROBLEMS)
    if dataset is not None and not is_function_problem(result):
        result = dict(result, dataset=dataset)
    return result


def check_problem(problem):
    """Raise :class:`L2OError` if a problem dict lacks a key its evaluator needs."""
    if is_function_problem(problem):
        needed = ("target", "config", "steps")
    else:
        needed = ("target", "dataset", "epochs", "batch_size", "config")
    missing = [key for key in needed if key not in problem]
    if missing:
        raise L2OError(
            f"evaluation problem is missing {', '.join(missing)}; it needs {', '.join(needed)}")
    return problem
