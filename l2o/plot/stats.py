"""Per-run statistics of an evaluation record, and a markdown table of them.

Every statistic is an array with one value per run (axis 0 of the record). Losses are reported
as natural logs. Deviations from the reference, both fixes: ``train_meta`` averages the log of
the *training* loss (the reference averaged the validation loss), and ``acc_best`` is each run's
best validation accuracy (the reference returned one maximum over all runs).
"""

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d

from l2o.errors import L2OError

VAL_ACCURACY = "val_sparse_categorical_accuracy"
TABLE_STATS = ("val_best", "train_last", "val_stability")
FUNCTION_TABLE_STATS = ("train_best", "train_last", "train_meta")


def _curves(result, key):
    values = np.asarray(result[key], dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] == 0:
        raise L2OError(f"'{key}' must have shape (runs, epochs), got {values.shape}")
    return values


def _nan_argmin(values):
    """Row-wise argmin ignoring NaN; -1 where a whole row is NaN."""
    finite = ~np.isnan(values)
    index = np.argmin(np.where(finite, values, np.inf), axis=1)
    return np.where(finite.any(axis=1), index, -1)


def _curve_stats(values, prefix):
    """best_index, best, last, meta and stability of one (runs, epochs) loss array."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        log = np.log(values)
        smoothed = gaussian_filter1d(values, sigma=2, axis=1, mode="nearest")
        stats = {
            f"{prefix}_best_index": _nan_argmin(values),
            f"{prefix}_best": np.log(np.nanmin(values, axis=1)),
            f"{prefix}_last": log[:, -1],
            f"{prefix}_meta": np.mean(log, axis=1),
            f"{prefix}_stability": np.std(np.log(smoothed) - log, axis=1),
        }
    return stats


def eval_stats(result):
    """Per-run statistics of an evaluation record (a dict of arrays, runs on axis 0).

    From ``val_loss`` (model problems): ``val_best_index``, ``val_best`` (log of the lowest),
    ``val_last``, ``val_meta`` (mean log), ``val_stability`` (spread of the log loss around its
    Gaussian-smoothed curve, sigma 2 epochs). The same ``train_*`` from ``loss``, plus
    ``train_10`` (log loss at epoch index 9, when there are 10 epochs or more). ``acc_best``:
    each run's highest validation accuracy. A function-problem record (``loss`` only, per step)
    gets the ``train_*`` statistics.
    """
    if "loss" not in result and "val_loss" not in result:
        raise L2OError(f"an evaluation record needs 'loss' or 'val_loss'; it holds "
                       f"{', '.join(sorted(result)) or 'nothing'}")
    stats = {}
    if "val_loss" in result:
        stats.update(_curve_stats(_curves(result, "val_loss"), "val"))
    if "loss" in result:
        loss = _curves(result, "loss")
        train = _curve_stats(loss, "train")
        stats.update({k: v for k, v in train.items() if not k.endswith("_stability")})
        if loss.shape[1] > 9:
            with np.errstate(divide="ignore", invalid="ignore"):
                stats["train_10"] = np.log(loss[:, 9])
    if VAL_ACCURACY in result:
        accuracy = _curves(result, VAL_ACCURACY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats["acc_best"] = np.nanmax(accuracy, axis=1)
    return stats


def summarize(values):
    """(mean, std, n) of one statistic over runs, ignoring NaN runs."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    return float(finite.mean()), float(finite.std()), int(finite.size)


def _cell(values):
    mean, std, n = summarize(values)
    if n == 0:
        return "n/a"
    cell = f"{mean:.4g} ± {std:.2g}"
    missing = len(np.asarray(values)) - n
    return cell + (f" ({missing} non-finite)" if missing else "")


def stats_table(results, stats=None):
    """A markdown table, one row per entry: runs and mean ± std over runs of each statistic.

    ``results`` maps a label to an evaluation record. ``stats`` defaults to val_best,
    train_last and val_stability, or to train_best, train_last and train_meta when no entry
    has a validation loss (function problems).
    """
    computed = {label: eval_stats(result) for label, result in results.items()}
    if stats is None:
        has_val = any("val_best" in s for s in computed.values())
        stats = TABLE_STATS if has_val else FUNCTION_TABLE_STATS
    lines = ["| entry | runs | " + " | ".join(stats) + " |",
             "|" + " --- |" * (len(stats) + 2)]
    for label, entry in computed.items():
        runs = len(next(iter(results[label].values())))
        cells = [_cell(entry[s]) if s in entry else "n/a" for s in stats]
        lines.append(f"| {label} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
