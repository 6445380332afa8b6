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

    Losses of replicates spread multiplicatively (one replicate 100x another's), so each
    figure also has ``log_std``, the sample standard deviation (ddof 1) of its natural log
    over the finite positive replicates, and ``log_p``, the one-sided F test's p value that
    the recipe's log-variance is below the ``reference``'s (the ratio of the reference's
    log-variance to the recipe's, on ``n_ref - 1`` and ``n - 1`` degrees of freedom; small
    when the recipe's replicates agree more than the reference's could by chance). The F
    test assumes normal log losses: with 3-4 replicates a p value is evidence, not proof.
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
            logs = np.log(values[np.isfinite(values) & (values > 0)])
            row[key] = {"mean": mean, "std": std if spread else float("nan"),
                        "worst": worst, "best": best,
                        "spread_factor": worst / best if spread and best > 0 else float("nan"),
                        "finite": n,
                        "log_std": float(np.std(logs, ddof=1)) if len(logs) >= 2
                        else float("nan"), "log_n": len(logs)}
        out[label] = row
    for label, row in out.items():
        for key in STABILITY_FIGURES:
            base = out[reference][key] if reference is not None else None
            std = base["std"] if base else float("nan")
            row[key]["spread_ratio"] = (row[key]["std"] / std if std and np.isfinite(std)
                                        else float("nan"))
            row[key]["log_p"] = (float("nan") if base is None or label == reference
                                 else _smaller_spread_p(row[key], base))
    return out


def _smaller_spread_p(figure, reference):
    """One-sided F test: the p value of a log-variance as far below the reference's as
    ``figure``'s is, were the two equal (NaN without two finite replicates on each side)."""
    from scipy.stats import f as f_distribution

    if figure["log_n"] < 2 or reference["log_n"] < 2:
        return float("nan")
    var, var_ref = figure["log_std"] ** 2, reference["log_std"] ** 2
    if var == 0:
        return 0.0 if var_ref > 0 else float("nan")
    return float(f_distribution.sf(var_ref / var, reference["log_n"] - 1, figure["log_n"] - 1))


def _ratio(value, spec):
    """``value`` in ``spec``, but never rounded to a bare 0 (a spread 500x smaller than the
    reference's is not none): below 0.01, one significant digit."""
    if not np.isfinite(value):
        return "n/a"
    return format(value, spec) if value == 0 or abs(value) >= 0.01 else f"{value:.1g}"


def _figure_cells(figure):
    """A recipe's cells for one figure: mean ± std, worst, worst / best, std / reference's
    and the F test's p value of a smaller log spread than the reference's."""
    std = "n/a" if not np.isfinite(figure["std"]) else f"{figure['std']:.2g}"
    p_value = "n/a" if not np.isfinite(figure["log_p"]) else f"{figure['log_p']:.2g}"
    return [f"{figure['mean']:.4g} ± {std}", f"{figure['worst']:.4g}",
            _ratio(figure["spread_factor"], ".3g"), _ratio(figure["spread_ratio"], ".2f"),
            p_value]


def _baseline_cells(values):
    """A baseline's cells for one figure: its mean ± std over runs, the rest empty (one
    optimizer has no replicates to spread)."""
    mean, std, n = summarize(values)
    return [f"{mean:.4g} ± {std:.2g}" if n else "n/a", "", "", "", ""]


def _figure_head(key, reference):
    return [f"{key} mean ± std", f"{key} worst", f"{key} worst / best",
            f"{key} std / {reference or 'ref'}", f"{key} p (ln spread < {reference or 'ref'})"]


def _markdown(head, rows):
    return "\n".join(["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
                     + ["| " + " | ".join(cells) + " |" for cells in rows])


def stability_table(recipes, reference=None, baselines=None):
    """A markdown table of :func:`meta_stability`: one row per recipe, then one per baseline.

    ``baselines`` maps a label (e.g. "Adam, lr 0.005") to the evaluation record of that
    optimizer from the same run: its figures are means (± std) over its runs, the yardstick
    beside the recipes' replicate means.
    """
    rows = meta_stability(recipes, reference)
    head = ["recipe", "replicates"]
    for key in STABILITY_FIGURES:
        head += _figure_head(key, reference)
    head.append("val_stability")
    lines = []
    for label, row in rows.items():
        cells = [label, str(row["replicates"])]
        for key in STABILITY_FIGURES:
            cells += _figure_cells(row[key])
        lines.append(cells + [f"{row['val_stability']['mean']:.3g}"])
    for label, record in (baselines or {}).items():
        runs = run_figures(record)
        cells = [label, f"({len(runs['final_loss'])} runs)"]
        for key in STABILITY_FIGURES:
            cells += _baseline_cells(runs.get(key, [np.nan]))
        stability = runs.get("val_stability")
        lines.append(cells + ["" if stability is None else f"{summarize(stability)[0]:.3g}"])
    return _markdown(head, lines)


def stability_summary(tables, reference=None, key="final_loss"):
    """One markdown table of one figure (default the final training loss) over several
    problems and horizons: per ``(heading, recipes, baselines)`` in ``tables`` (as for
    :func:`stability_table`), a row per recipe and per baseline, led by the heading, e.g.
    "conv_train, 25 epochs". The whole experiment's answer in one table."""
    head = ["problem, horizon", "recipe", "replicates"] + _figure_head(key, reference)
    lines = []
    for heading, recipes, baselines in tables:
        for label, row in meta_stability(recipes, reference).items():
            lines.append([heading, label, str(row["replicates"])] + _figure_cells(row[key]))
        for label, record in (baselines or {}).items():
            runs = run_figures(record)
            lines.append([heading, label, f"({len(runs['final_loss'])} runs)"]
                         + _baseline_cells(runs.get(key, [np.nan])))
    return _markdown(head, lines)


def replicate_table(tables, key="final_loss"):
    """A markdown table of every replicate's figure (default its final training loss, the
    mean over its runs): one column per ``(heading, recipes, names, baselines)`` of
    ``tables``, one row per recipe and replicate (``names[label]`` name the replicates of
    ``recipes[label]``, e.g. their folders), then one per baseline, the mean of its runs
    (``baselines`` map a label to a record or to ``(record, note)``, the note shown beside
    the figure, e.g. the learning rate a grid picked for that column). What each recipe's
    spread is made of; a replicate missing from a table is blank there."""
    columns = [heading for heading, *_ in tables]
    rows, baseline_rows = {}, {}
    for column, (_, recipes, names, baselines) in enumerate(tables):
        for label, records in recipes.items():
            for name, record in zip(names[label], records):
                value = replicate_figures(record).get(key, np.nan)
                rows.setdefault((label, name), [""] * len(columns))[column] = f"{value:.3g}"
        for label, entry in (baselines or {}).items():
            record, note = entry if isinstance(entry, tuple) else (entry, "")
            value = summarize(run_figures(record).get(key, [np.nan]))[0]
            baseline_rows.setdefault((label, "(mean of runs)"), [""] * len(columns))[column] = (
                f"{value:.3g}" + (f" ({note})" if note else ""))
    return _markdown(["recipe", "replicate"] + columns,
                     [[label, name] + cells
                      for (label, name), cells in (rows | baseline_rows).items()])
