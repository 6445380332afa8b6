"""Learning-rate grid search of the analytical rules: "is the baseline tuned?" in numbers.

For each rule and learning rate, ``repeat`` fresh optimizers train the evaluation problem;
the stacked record goes to ``<directory>/<policy>/<problem>/<lr>.npz`` (with its settings),
the layout :func:`l2o.plot.load_gridsearch` reads. The reference's grid-search script wrote
this layout but its plot loader read ``<problem>/<policy>`` (a bug fixed here: one layout).

The rules are the l2o analytical policies with the reference's fixed hyperparameters (or,
with ``use_keras``, Keras' own Adam / RMSprop / SGD with the same values); only the learning
rate varies.
"""

import os

import numpy as np

from l2o.errors import L2OError, unknown
from l2o.evaluate.baselines import run_repeats
from l2o.evaluate.problems import check_problem, get_eval_problem, is_function_problem
from l2o.results import check_evaluation_file, evaluation_record, save_evaluation

#: Policy key -> (l2o rule, fixed hyperparameters), as the reference's grid search.
GRID_POLICIES = {
    "adam": ("Adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    "rmsprop": ("RMSProp", {"rho": 0.9}),
    "sgd": ("SGD", {}),
    "momentum": ("Momentum", {"beta_1": 0.9}),
    "addsign": ("AddSign", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-10}),
    "powersign": ("PowerSign", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-10}),
}

DEFAULT_GRID = (0.001, 0.01, 0.1)


#: Keras' own classes for the rules Keras has (``use_keras``), with the same fixed values.
KERAS_RULES = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD"}


def grid_optimizer(policy, learning_rate, use_keras=False):
    """A fresh Keras optimizer for ``policy`` at ``learning_rate``.

    By default the l2o rule (time-independent bias correction, as the reference's grid
    search); ``use_keras`` takes Keras' own Adam / RMSprop / SGD where one exists, the
    optimizers users compare against.
    """
    import keras

    from l2o.optimizer import build_analytical_optimizer

    if policy not in GRID_POLICIES:
        raise unknown("grid-search policy", policy, GRID_POLICIES)
    rule, fixed = GRID_POLICIES[policy]
    if use_keras and policy in KERAS_RULES:
        return getattr(keras.optimizers, KERAS_RULES[policy])(
            learning_rate=float(learning_rate), **fixed)
    return build_analytical_optimizer(rule, dict(fixed, learning_rate=float(learning_rate)))


def grid_path(directory, policy, problem, learning_rate):
    """``<directory>/<policy>/<problem>/<lr>.npz`` (the learning rate as Python prints it)."""
    return os.path.join(str(directory), policy, problem, f"{float(learning_rate)!r}.npz")


def grid_point(directory, policy, problem, learning_rate, repeat, dataset=None, epochs=None,
               seed=None, use_keras=False):
    """``(path, spec, settings)`` of one grid point: its file, problem and evaluation record."""
    spec = check_problem(get_eval_problem(problem, dataset=dataset))
    if epochs is not None and not is_function_problem(spec):
        spec["epochs"] = int(epochs)
    settings = evaluation_record(problem, spec, repeat, seed, policy=policy,
                                 learning_rate=float(learning_rate),
                                 keras=bool(use_keras and policy in KERAS_RULES))
    return grid_path(directory, policy, problem, learning_rate), spec, settings


def check_grid_points(directory, policy, problem, grid, repeat, overwrite=False, hint=None,
                      **point):
    """An L2OError when a point's file holds other settings, unless ``overwrite`` (see
    :func:`l2o.results.check_evaluation_file`): gridsearch.py checks every point before it
    fits any. ``point``: the other keyword arguments of :func:`grid_point`."""
    for learning_rate in grid:
        path, _, settings = grid_point(directory, policy, problem, learning_rate, repeat,
                                       **point)
        check_evaluation_file(path, settings, overwrite, hint)


def run_grid_point(directory, policy, problem, learning_rate, repeat, dataset=None, epochs=None,
                   seed=None, progress=False, reuse=True, use_keras=False, overwrite=True):
    """Evaluate one grid point and save it; reuses a file recorded with the same settings.

    A file recorded with other settings is replaced (a cache's behaviour, what
    :mod:`l2o.report` wants), or with ``overwrite=False`` refused with an L2OError
    (gridsearch.py without ``--overwrite``). Returns ``(path, results)``.
    """
    from l2o.plot.results import load_npz

    path, spec, settings = grid_point(directory, policy, problem, learning_rate, repeat,
                                      dataset=dataset, epochs=epochs, seed=seed,
                                      use_keras=use_keras)
    if check_evaluation_file(path, settings, overwrite) and reuse:
        return path, load_npz(path)
    results = run_repeats(lambda: grid_optimizer(policy, learning_rate, use_keras), spec, repeat,
                          seed=seed, progress=progress)
    save_evaluation(path, results, settings)
    return path, results


def final_loss(results):
    """Mean over runs of the last training loss (model problems) or last function value."""
    return float(np.mean(np.asarray(results["loss"])[:, -1]))


def grid_search(directory, policy, problem, grid=DEFAULT_GRID, repeat=10, dataset=None,
                epochs=None, seed=None, progress=False, reuse=True, log=print, use_keras=False,
                overwrite=True):
    """Run the grid; returns ``(best learning rate, {lr: results})``, best = lowest final loss.

    A diverged point (non-finite final loss) never wins. ``overwrite``: as
    :func:`run_grid_point`.
    """
    if not grid:
        raise L2OError("the learning-rate grid is empty")
    table = {}
    for lr in grid:
        path, results = run_grid_point(directory, policy, problem, lr, repeat, dataset=dataset,
                                       epochs=epochs, seed=seed, progress=progress, reuse=reuse,
                                       use_keras=use_keras, overwrite=overwrite)
        table[float(lr)] = results
        if log:
            log(f"{policy} lr={float(lr):g} on {problem}: final loss {final_loss(results):.4g} "
                f"({path})")
    return best_learning_rate(table, f"{policy} on {problem}"), table


def best_learning_rate(table, what="the grid"):
    """The learning rate of ``{lr: results}`` with the lowest :func:`final_loss`; a diverged
    point (non-finite final loss) never wins, and an L2OError names ``what`` if all did."""
    scores = {lr: final_loss(r) for lr, r in table.items()}
    finite = {lr: s for lr, s in scores.items() if np.isfinite(s)}
    if not finite:
        raise L2OError(f"every learning rate of the grid diverged for {what}")
    return min(finite, key=finite.get)
