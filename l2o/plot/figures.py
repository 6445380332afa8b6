"""Figures of evaluation records and training summaries (matplotlib, no display needed).

Each ``plot_*`` primitive draws on a given matplotlib axis and takes ``results``, a dict from a
label to an evaluation record (see :mod:`l2o.plot.results`), so several optimizers share one
panel with one colour each. :func:`compare` and :func:`training_figure` build whole figures and
write them as PNG files. Figures are built on ``matplotlib.figure.Figure`` directly, so no
pyplot state or interactive backend is involved.
"""

import io
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from l2o.errors import L2OError
from l2o.plot.results import load_entry
from l2o.results import accepted_attempts
from l2o.plot.stats import eval_stats
from l2o.results import atomic_write_bytes

NAN_LOSS = 2.3  # a diverged run's NaN loss is drawn at about the loss of a 10-class guess
LABELS = {
    "val_loss": "validation loss",
    "loss": "training loss",
    "val_sparse_categorical_accuracy": "validation accuracy",
    "sparse_categorical_accuracy": "training accuracy",
    "val_best": "best log validation loss",
    "train_best": "best log training loss",
    "acc_best": "best validation accuracy",
}


def _color(index):
    return f"C{index % 10}"


def _runs(values):
    values = np.asarray(values, dtype=np.float64)
    return values[None, :] if values.ndim == 1 else values


def moving_average(values, window):
    """Row-wise trailing moving average ('valid' part only); the window shrinks to fit."""
    values = _runs(values)
    window = max(1, min(int(window), values.shape[1]))
    cumulative = np.cumsum(np.pad(values, ((0, 0), (1, 0))), axis=1)
    return (cumulative[:, window:] - cumulative[:, :-window]) / window


def plot_band(ax, x, values, label=None, color=None, band="minmax", k=1.0, **line_kwargs):
    """Mean over runs (rows of ``values``) as a line, with min-max or mean ± k·std shaded."""
    values = _runs(values)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, quietly
        mean = np.nanmean(values, axis=0)
        if band == "minmax":
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        elif band == "std":
            std = np.nanstd(values, axis=0)
            low, high = mean - k * std, mean + k * std
        else:
            raise L2OError(f"unknown band '{band}'; valid: minmax, std")
    (line,) = ax.plot(x, mean, label=label, color=color, **line_kwargs)
    if len(values) > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def _log_loss(values):
    values = np.where(np.isnan(values), NAN_LOSS, values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values)


def _label(label, values):
    return f"{label} (n={len(values)})"


def plot_loss(ax, results, key="val_loss", band="minmax", x="epoch"):
    """Log loss per epoch (or against mean wall time), one band per entry.

    ``key`` is ``val_loss`` or ``loss``; entries without it are skipped. A function problem's
    ``loss`` is per step, and its x axis is labelled so.
    """
    if x not in ("epoch", "time"):
        raise L2OError(f"unknown x axis '{x}'; valid: epoch, time")
    steps = False
    for index, (label, result) in enumerate(results.items()):
        if key not in result:
            continue
        values = _runs(result[key])
        steps = steps or "val_loss" not in result
        if x == "time" and "epoch_time" in result:
            xs = np.nanmean(_runs(result["epoch_time"]), axis=0)
        else:
            xs = np.arange(1, values.shape[1] + 1)
        plot_band(ax, xs, _log_loss(values), _label(label, values), _color(index), band)
    xlabel = "wall time (s)" if x == "time" else ("step" if steps else "epoch")
    ax.set(xlabel=xlabel, ylabel=f"log {LABELS.get(key, key)}",
           title=f"{LABELS.get(key, key).capitalize()}")
    ax.grid(alpha=0.3)


def plot_batch_loss(ax, results, window=100, band="minmax", x="step"):
    """Log training loss of every batch, as a trailing moving average over ``window`` batches."""
    if x not in ("step", "time"):
        raise L2OError(f"unknown x axis '{x}'; valid: step, time")
    for index, (label, result) in enumerate(results.items()):
        if "batch_loss" not in result:
            continue
        values = np.asarray(result["batch_loss"], dtype=np.float64)
        if values.ndim == 3:  # reference DP records: a per-example loss vector per batch
            values = values.mean(axis=2)
        values = _runs(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            smoothed = moving_average(np.log(values + 1e-10), window)
        width = values.shape[1] - smoothed.shape[1] + 1
        if x == "time" and "batch_time" in result:
            xs = moving_average(np.nanmean(_runs(result["batch_time"]), axis=0), width)[0]
        else:
            xs = np.arange(width, values.shape[1] + 1)
        plot_band(ax, xs, smoothed, _label(label, values), _color(index), band)
    ax.set(xlabel="wall time (s)" if x == "time" else "training step",
           ylabel="log training loss", title=f"Per-batch training loss (moving average {window})")
    ax.grid(alpha=0.3)


def plot_accuracy(ax, results, key="val_sparse_categorical_accuracy", band="minmax"):
    """Accuracy per epoch, one band per entry (entries without ``key`` are skipped)."""
    for index, (label, result) in enumerate(results.items()):
        if key not in result:
            continue
        values = _runs(result[key])
        plot_band(ax, np.arange(1, values.shape[1] + 1), values, _label(label, values),
                  _color(index), band)
    ax.set(xlabel="epoch", ylabel=LABELS.get(key, key), title=LABELS.get(key, key).capitalize())
    ax.grid(alpha=0.3)


def boxplot(ax, results, stat="val_best", k=2.0):
    """One box per entry of a per-run statistic, with its mean ± k standard errors marked."""
    names, data = [], []
    for label, result in results.items():
        stats = eval_stats(result)
        if stat not in stats:
            continue
        values = np.asarray(stats[stat], dtype=np.float64)
        names.append(label)
        data.append(values[np.isfinite(values)])
    if not data:
        ax.set_title(f"{stat}: no entry has it")
        return
    positions = np.arange(1, len(data) + 1)
    parts = ax.boxplot([d if d.size else [np.nan] for d in data], positions=positions,
                       tick_labels=names, widths=0.5)
    for index in range(len(data)):
        color = _color(index)
        for artist in (parts["boxes"][index], parts["medians"][index],
                       *parts["whiskers"][2 * index:2 * index + 2],
                       *parts["caps"][2 * index:2 * index + 2]):
            artist.set_color(color)
        parts["medians"][index].set_linewidth(2)
        parts["fliers"][index].set_markeredgecolor(color)
    for position, values, index in zip(positions, data, range(len(data))):
        if values.size == 0:
            continue
        error = k * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
        ax.errorbar(position + 0.32, values.mean(), yerr=error, fmt="o", color=_color(index),
                    capsize=4, markersize=4)
    ax.set(ylabel=LABELS.get(stat, stat),
           title=f"{stat} per run (mean ± {k:g} s.e. at right)")
    ax.tick_params(axis="x", labelrotation=20)
    ax.grid(alpha=0.3, axis="y")


def replicate_curve(record, key="loss"):
    """One replicate's curve: the mean over its runs of ``key`` per epoch (a diverged run's
    non-finite epochs are left out), so its last point is the replicate's figure in
    :func:`l2o.plot.meta_stability`."""
    values = _runs(record[key])
    values = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch where every run diverged
        return np.nanmean(values, axis=0)


def plot_replicates(ax, records, key="loss", names=None, baselines=None):
    """Each replicate of one recipe as its own line (log of :func:`replicate_curve`), the
    ``baselines`` (label: record, mean over runs) dashed in grey, so a panel shows how far
    apart the replicates end. Returns the replicates' lines."""
    def draw(record, **style):
        curve = replicate_curve(record, key)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ax.plot(np.arange(1, curve.size + 1), np.log(curve), **style)[0]

    names = names or [str(index + 1) for index in range(len(records))]
    lines = [draw(record, color=_color(index), label=f"replicate {name}")
             for index, (name, record) in enumerate(zip(names, records))]
    for index, (label, record) in enumerate((baselines or {}).items()):
        if key in record:
            draw(record, color="0.4", linestyle=("--", ":", "-.")[index % 3], label=label)
    ax.set(xlabel="epoch", ylabel=f"log {LABELS.get(key, key)} (mean over runs)")
    ax.grid(alpha=0.3)
    return lines


def replicate_count(n):
    """``"1 replicate"``, ``"3 replicates"``: the count the stability figure and table name."""
    return f"{n} replicate" + ("" if n == 1 else "s")


def stability_figure(problem, recipes, out_png, baselines=None, names=None):
    """The replicates' curves per recipe as a PNG: one row per recipe (training loss, then
    validation loss), the same y range in every row so spreads compare at a glance.

    ``recipes`` maps a recipe's label to its replicates' evaluation records (as
    :func:`l2o.plot.meta_stability`), ``names`` (optional) the label to the replicates'
    names, ``baselines`` a label to a record drawn in every panel. Returns the path.
    """
    if not recipes:
        raise L2OError("stability_figure needs at least one recipe")
    keys = [k for k in ("loss", "val_loss") if all(k in r for rs in recipes.values() for r in rs)]
    if not keys:
        raise L2OError("the replicates' records share no per-epoch loss (loss, val_loss)")
    figure = Figure(figsize=(6.5 * len(keys), 3.6 * len(recipes)), layout="constrained")
    axes = np.asarray(figure.subplots(len(recipes), len(keys), sharey="col", squeeze=False))
    for row, (label, records) in enumerate(recipes.items()):
        for column, key in enumerate(keys):
            ax = axes[row, column]
            plot_replicates(ax, records, key, (names or {}).get(label), baselines)
            ax.set_title(f"{label}: {LABELS.get(key, key)}, {replicate_count(len(records))}")
            ax.legend(fontsize="small")
    figure.suptitle(f"{problem}: each replicate's mean over its runs", fontsize=14)
    return _save(figure, out_png)


# -- training summaries ------------------------------------------------------------------


def accepted_rows(summary, rule=None):
    """The rows of summary.csv that training kept: each period's accepted attempt
    (:func:`l2o.results.accepted_attempts`; ``rule``: the folder's repeat rule), the
    checkpoint training went on from. A pending repeat keeps nothing of its period."""
    return summary[accepted_attempts(summary, rule)]


def plot_training(ax, summary, keys=("validation", "meta_loss"), twin=("imitation_loss",),
                  show_rejected=True):
    """Per-period training curves from summary.csv.

    ``keys`` share the main y axis; ``twin`` columns go on a second y axis (dotted), since the
    imitation loss has another scale. Simple and Repeat: one colour per column. Curriculum:
    one colour per stage (line style per column) against the period within the stage.
    Rejected repeats show as crosses.
    """
    keys = [k for k in keys if k in summary.columns]
    twin = [k for k in twin if k in summary.columns]
    kept = accepted_rows(summary)
    rejected = summary.drop(index=kept.index)
    curriculum = "stage" in summary.columns
    stages = sorted(summary["stage"].unique()) if curriculum else [None]
    styles = ["-", "--", "-.", (0, (5, 1, 1, 1))]
    other = ax.twinx() if twin else None

    def select(frame, stage):
        return frame if stage is None else frame[frame["stage"] == stage]

    for stage_index, stage in enumerate(stages):
        rows, bad = select(kept, stage), select(rejected, stage)
        prefix = f"stage {stage}: " if curriculum else ""
        for key_index, key in enumerate(keys + twin):
            color = _color(stage_index if curriculum else key_index)
            style = ":" if key in twin else (styles[key_index % 4] if curriculum else "-")
            axis = other if key in twin else ax
            suffix = " (right axis)" if key in twin else ""
            axis.plot(rows["period"], rows[key], linestyle=style, marker=".", color=color,
                      label=f"{prefix}{key}{suffix}")
            if show_rejected and len(bad):
                axis.plot(bad["period"], bad[key], "x", color=color, alpha=0.6)
    ax.set(xlabel="period within stage" if curriculum else "period",
           ylabel=" / ".join(keys) or "loss")
    handles, labels = ax.get_legend_handles_labels()
    if other is not None:
        other.set_ylabel(" / ".join(twin))
        more = other.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if show_rejected and len(rejected):
        handles.append(Line2D([], [], linestyle="", marker="x", color="gray"))
        labels.append("rejected repeat")
    if handles:
        ax.legend(handles, labels, fontsize="small")
    ax.grid(alpha=0.3)


def _save(figure, out_png):
    """Write a figure to ``out_png`` atomically (parents created); returns the Path."""
    out_png = Path(out_png)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    try:
        atomic_write_bytes(out_png, buffer.getvalue())
    except OSError as error:
        raise L2OError(f"cannot write {out_png}: {error}") from None
    return out_png


def training_figure(summary, out_png, title=None):
    """Training curves of one experiment (its summary.csv frame) as a PNG; returns the path."""
    figure = Figure(figsize=(13, 5))
    left, right = figure.subplots(1, 2)
    plot_training(left, summary, keys=("validation",), twin=())
    left.set_title("Validation meta-loss per period")
    plot_training(right, summary, keys=("meta_loss",), twin=("imitation_loss",))
    right.set_title("Training meta-loss and imitation loss per period")
    if title:
        figure.suptitle(title)
    return _save(figure, out_png)


def compare(problem, entries, out_png, band="minmax", x="epoch", window=100):
    """The standard comparison of several optimizers on one problem, written as a PNG.

    ``entries`` maps a label to an evaluation record or to a path (``.npz`` file, experiment
    folder or folder of replicates). Model problems get four panels: validation and training
    loss per epoch, the per-batch training loss, and a box plot of each run's best validation
    loss. Function problems get the loss per step and a box plot of the best loss. Returns the
    path written.
    """
    if not entries:
        raise L2OError("compare needs at least one entry")
    results = {label: entry if isinstance(entry, dict) else load_entry(entry, problem)
               for label, entry in entries.items()}
    if any("val_loss" in r for r in results.values()):
        figure = Figure(figsize=(13, 10))
        axes = figure.subplots(2, 2)
        plot_loss(axes[0, 0], results, "val_loss", band=band, x=x)
        plot_loss(axes[0, 1], results, "loss", band=band, x=x)
        plot_batch_loss(axes[1, 0], results, window=window, band=band)
        boxplot(axes[1, 1], results, "val_best")
        legend_axes = [axes[0, 0]]
    else:
        figure = Figure(figsize=(13, 5))
        axes = figure.subplots(1, 2)
        plot_loss(axes[0], results, "loss", band=band)
        boxplot(axes[1], results, "train_best")
        legend_axes = [axes[0]]
    for ax in legend_axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    band_text = "min-max over runs" if band == "minmax" else "mean ± std over runs"
    figure.suptitle(f"{problem}  (line: mean, band: {band_text})", fontsize=14)
    return _save(figure, out_png)
