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


def at_horizon(record, epochs):
    """``record`` as its runs stood after their first ``epochs`` epochs.

    Training the same seeds for fewer epochs gives exactly these figures (a fit has no
    epoch-dependent schedule, and epoch k is computed before it knows how many follow), so
    one long evaluation serves every shorter horizon. Arrays with one column per epoch
    (``loss``, ``val_loss``, ``epoch_time``, ...) keep their first ``epochs`` columns, arrays
    with a whole number of columns per epoch (``batch_loss``, ``batch_time``, debug
    summaries) the columns of those epochs; everything else is kept as it is.
    ``epochs=None`` (function problems, which have no epochs) returns ``record``.
    """
    if epochs is None:
        return record
    total = _curves(record, "loss").shape[1]
    epochs = int(epochs)
    if not 1 <= epochs <= total:
        raise L2OError(f"a horizon of {epochs} epochs is outside the record's 1..{total}")
    out = {}
    for key, values in record.items():
        array = np.asarray(values)
        if array.ndim >= 2 and array.shape[1] % total == 0:
            out[key] = array[:, :epochs * (array.shape[1] // total)]
        else:
            out[key] = values
    return out


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


#: The per-replicate figures of :func:`meta_stability`, in table order.
STABILITY_FIGURES = ("final_loss", "best_val_loss")


def run_figures(record):
    """Per evaluation run of one record: ``final_loss`` (the training loss after the last
    epoch), ``best_val_loss`` (the run's lowest validation loss; raw losses, as the README's
    tables give them) and ``val_stability`` (:func:`eval_stats`'s spread of the log
    validation loss around its smoothed curve), the last two only with a validation loss."""
    figures = {"final_loss": _curves(record, "loss")[:, -1]}
    if "val_loss" in record:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            figures["best_val_loss"] = np.nanmin(_curves(record, "val_loss"), axis=1)
        figures["val_stability"] = eval_stats(record)["val_stability"]
    return figures


def replicate_figures(record):
    """One replicate's figures on one problem: :func:`run_figures` averaged over its runs
    (runs whose figure is not finite count as missing; NaN if all are)."""
    return {key: summarize(values)[0] for key, values in run_figures(record).items()}


def meta_stability(recipes, reference=None):
    """The paper's stability measures of several recipes, each trained as several replicates.

    ``recipes`` maps a recipe's label to the evaluation records of its replicates on one
    problem (one record per replicate, runs on axis 0). For each recipe and each of
    :data:`STABILITY_FIGURES` (a replicate's figure is the mean over its evaluation runs):
    the replicates' ``mean``, ``std`` (population), ``worst`` (the highest loss), ``best``,
    ``spread_factor`` (worst / best: scale-free, the form in which replicates differing by
    orders of magnitude are easiest to read) and ``spread_ratio``, the std divided by the
    ``reference`` recipe's (the unperturbed arm); ``val_stability`` is the replicates' mean
    evaluation stability, ``replicates`` their number. Meta-stability is the spread across
    replicates: a recipe whose replicates end alike has a small std and a worst close to its
    mean. A spread needs two finite replicates: with fewer, ``std``, ``spread_factor`` and
    ``spread_ratio`` are NaN (not a spread of 0).
    """
    if reference is not None and reference not in recipes:
        raise L2OError(f"reference recipe '{reference}' is not among {', '.join(recipes)}")
    out = {}
    for label, records in recipes.items():
        if not records:
            raise L2OError(f"recipe '{label}' has no replicate records")
        figures = [replicate_figures(record) for record in records]
        row = {"replicates": len(figures)}
        for key in STABILITY_FIGURES + ("val_stability",):
            values = np.array([f.get(key, np.nan) for f in figures], dtype=np.float64)
            mean, std, n = summarize(values)
            finite = values[np.isfinite(values)]
            worst, best = (float(finite.max()), float(finite.min())) if n else (np.nan, np.nan)
            spread = n >= 2
            row[key] = {"mean": mean, "std": std if spread else float("nan"),
                        "worst": worst, "best": best,
                        "spread_factor": worst / best if spread and best > 0 else float("nan"),
                        "finite": n}
        out[label] = row
    for label, row in out.items():
        for key in STABILITY_FIGURES:
            base = out[reference][key]["std"] if reference is not None else float("nan")
            row[key]["spread_ratio"] = (row[key]["std"] / base if base and np.isfinite(base)
                                        else float("nan"))
    return out


def _ratio(value, spec):
    """``value`` in ``spec``, but never rounded to a bare 0 (a spread 500x smaller than the
    reference's is not none): below 0.01, one significant digit."""
    if not np.isfinite(value):
        return "n/a"
    return format(value, spec) if value == 0 or abs(value) >= 0.01 else f"{value:.1g}"


def stability_table(recipes, reference=None, baselines=None):
    """A markdown table of :func:`meta_stability`: one row per recipe, then one per baseline.

    ``baselines`` maps a label (e.g. "Adam, lr 0.005") to the evaluation record of that
    optimizer from the same run: its figures are means (± std) over its runs, the yardstick
    beside the recipes' replicate means.
    """
    rows = meta_stability(recipes, reference)
    head = ["recipe", "replicates"]
    for key in STABILITY_FIGURES:
        head += [f"{key} mean ± std", f"{key} worst", f"{key} worst / best",
                 f"{key} std / {reference or 'ref'}"]
    head.append("val_stability")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for label, row in rows.items():
        cells = [label, str(row["replicates"])]
        for key in STABILITY_FIGURES:
            figure = row[key]
            std = "n/a" if not np.isfinite(figure["std"]) else f"{figure['std']:.2g}"
            cells += [f"{figure['mean']:.4g} ± {std}", f"{figure['worst']:.4g}",
                      _ratio(figure["spread_factor"], ".3g"), _ratio(figure["spread_ratio"], ".2f")]
        cells.append(f"{row['val_stability']['mean']:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    for label, record in (baselines or {}).items():
        runs = run_figures(record)
        cells = [label, f"({len(runs['final_loss'])} runs)"]
        for key in STABILITY_FIGURES:
            mean, std, n = summarize(runs.get(key, [np.nan]))
            cells += [f"{mean:.4g} ± {std:.2g}" if n else "n/a", "", "", ""]
        stability = runs.get("val_stability")
        cells.append("" if stability is None else f"{summarize(stability)[0]:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
