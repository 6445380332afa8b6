"""The results table and figure: our optimizers against the paper's and their teachers.

    python -m l2o.report                       # conv_train, mlp_train, conv_avg on mnist_5k
    python -m l2o.report --problems=conv_train --seeds=3 --epochs=10 --out=figures/quick

For every problem it trains fresh models (the problem's batch size, seeds ``seed .. seed +
seeds - 1``, the same seeds for every optimizer) with

- ``ours``: every optimizer folder under ``--ours`` (``pre-trained/<kind>/<n>``) on the first
  problem, replicate 1 of each kind on the others, loaded with ``l2o.load`` as a user would,
  so with the warmup it was packaged with;
- ``paper``: replicate 1 of each of the paper's released optimizers (``--paper``, skipped when
  that folder is absent), loaded with ``l2o.load`` (no warmup);
- ``teacher``: the six analytical rules at the paper's learning rates (``baseline.py`` keys);
- ``grid``: Keras' Adam at the best learning rate of a grid (``--grid``), found on the same
  seeds (the fits of :mod:`l2o.evaluate.gridsearch`), so "is the baseline tuned?" has an
  answer.

**Horizons.** ``--epochs`` is a comma list of horizons (default ``10,25``: ours and the
paper's 25). Every optimizer is fitted once, for the longest horizon, and each horizon's
figures are read from the first ``h`` epochs of that fit (:func:`at_horizon`). This is exact,
not an approximation: a fit (:func:`l2o.evaluate.evaluate_model`) has no epoch-dependent
schedule, its shuffle order and model initialisation depend on the seed alone, and epoch ``k``
is computed before the fit knows how many epochs follow, so the first ``h`` epochs of a longer
fit are the ``h``-epoch fit (``tests/test_report.py`` checks it on a real fit). The grid-tuned
Adam is chosen per horizon: the learning rate with the lowest mean training loss at epoch
``h`` (:func:`grid_best`). Function problems (``quadratic10``, ...) have no epochs: one table
at their own number of steps.

**Columns**, per problem and horizon ``h`` (mean and standard deviation over the seeds):
final training loss (the mean batch loss of epoch ``h``), best validation loss (the lowest
validation loss of epochs ``1..h``), the ratio of the final training loss to Adam's (Keras'
Adam at lr 0.005, the ``adam`` teacher) and to the grid-tuned Adam's at ``h``, and the wall
clock to Adam's loss (:func:`seconds_to_reach`): let ``target`` be Adam's final training loss
at ``h`` (its mean over seeds, the table's figure) and ``e`` the first epoch ``<= h`` whose
training loss, averaged over the seeds, is at or below ``target``; the entry is the training
time up to the end of epoch ``e``, averaged over the seeds, or "not reached". Training time
excludes validation (:func:`training_seconds`): it is the sum of the fit's step durations,
read from its per-batch time stamps ``batch_time`` (seconds since the fit started, taken
after each batch), with the first step of every epoch after the first (whose stamp also
covers the previous epoch's validation) charged the median step duration of its epoch. The
first epoch includes the tracing of the training step. Adam's own entry is, by definition,
its full training time at ``h``. The column exists because a learned step costs more than
Adam's; its times come from fits that may have run in different processes and at different
machine loads (cached fits are reused), so read it as a rough figure.

It writes ``<out>/report.md`` (one table per problem and horizon), ``<out>/report.csv`` (one
row per optimizer, problem and horizon; column ``epochs`` is the horizon, empty for function
problems; ``seconds_to_adam`` / ``epoch_reached`` are the wall clock to Adam's loss and the
epoch it was reached, empty when not reached; ``train_seconds`` the full training time at the
horizon) and ``<out>/report.png`` (training loss per epoch over the longest horizon, the
shorter ones marked). Every fit is cached in ``<out>/runs/<problem>/<name>.npz`` with its
settings (the number of epochs fitted among them) and reused only when the settings match, so
an interrupted report resumes, a cache of another length is fitted again, and two processes
may fill the cache for different ``--problems`` before one run with all of them writes the
table. The settings of a learned optimizer include a SHA-256 of its folder's config.json and
weights files, so a retrained ``pre-trained/<kind>/<n>`` is fitted again instead of reusing
the old fits, while one that was only renumbered or moved reuses the fit of its weights
(:func:`same_weights_fit`): shipping best first costs no refit.
"""

import argparse
import glob
import hashlib
import os
import re
import sys
import time
import zipfile

import numpy as np

from l2o.plot.stats import at_horizon  # noqa: F401  (report.at_horizon: one horizon rule)

DEFAULT_PROBLEMS = ("conv_train", "mlp_train", "conv_avg")  # training problem first
TEACHERS = ("adam", "rmsprop", "sgd", "momentum", "addsign", "powersign")
KINDS = ("min-max", "mean", "choice-large", "choice-small")
DEFAULT_EPOCHS = (10, 25)  # 25: the paper's evaluation length
DEFAULT_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
DEFAULT_PAPER = os.path.join("..", "shared", "reference", "pretrained")


class Entry:
    """One optimizer of the report: a label, its group and a factory of fresh optimizers.

    ``fingerprint`` (learned optimizers) is :func:`folder_fingerprint` of its folder: part of
    the cache key, so that new weights are fitted again.
    """

    def __init__(self, label, group, make, source, fingerprint=None):
        self.label, self.group, self.make, self.source = label, group, make, source
        self.fingerprint = fingerprint

    @property
    def slug(self):
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.group}-{self.label}")


def _folders(root):
    """``[(kind, replicate, path)]`` of the optimizer folders ``root/<kind>/<n>``."""
    found = []
    for path in sorted(glob.glob(os.path.join(root, "*", "*"))):
        kind, replicate = os.path.basename(os.path.dirname(path)), os.path.basename(path)
        if os.path.isdir(path) and replicate.isdigit() and (
                os.path.exists(os.path.join(path, "weights.index"))):
            found.append((kind, int(replicate), path))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found, key=lambda f: (order.get(f[0], len(order)), f[0], f[1]))


def folder_fingerprint(folder):
    """SHA-256 of an optimizer folder's config.json and weights files (names and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name == "config.json" or name.startswith("weights."):
            digest.update(name.encode() + b"\0")
            with open(os.path.join(folder, name), "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


def learned_entries(root, group, replicates=None):
    """Entries for the optimizer folders under ``root`` (``replicates``: keep only those)."""
    import l2o

    entries = []
    for kind, replicate, path in _folders(root):
        if replicates is None or replicate in replicates:
            entries.append(Entry(f"{kind}/{replicate}", group,
                                 lambda path=path: l2o.load(path), path,
                                 fingerprint=folder_fingerprint(path)))
    return entries


def teacher_entries():
    from l2o.evaluate import BASELINES, make_baseline

    entries = []
    for key in TEACHERS:
        lr = BASELINES[key]["config"]["learning_rate"]
        entries.append(Entry(f"{key} (lr {lr:g})", "teacher",
                             lambda key=key: make_baseline(key), f"baseline.py --optimizer={key}"))
    return entries


def run_entry(entry, problem, spec, seeds, seed, cache):
    """The stacked results of ``entry`` on ``problem`` (from the cache when it matches)."""
    from l2o.evaluate import run_repeats
    from l2o.plot.results import load_npz
    from l2o.results import evaluation_record, read_evaluation_settings, save_evaluation

    probe = entry.make()  # the warmup it runs with is part of the protocol
    warmup = int(getattr(probe, "warmup", 0) or 0)
    settings = evaluation_record(problem, spec, seeds, seed, warmup=warmup,
                                 warmup_rate=getattr(probe, "warmup_rate", 0.0) if warmup else 0.0,
                                 source=entry.source)
    if entry.fingerprint is not None:  # the weights it ran, wherever their folder is
        settings["sha256"] = entry.fingerprint
    path = os.path.join(cache, problem, entry.slug + ".npz")
    if os.path.exists(path) and read_evaluation_settings(path) == settings:
        return load_npz(path), settings
    moved = same_weights_fit(os.path.dirname(path), settings)
    if moved is not None:  # renumbered or moved: the same weights' fit, under its new name
        results = load_npz(moved)
        save_evaluation(path, results, settings)
        print(f"  {entry.group:8s} {entry.label:28s} the fit of the same weights in {moved}",
              flush=True)
        return results, settings
    start = time.perf_counter()
    results = run_repeats(entry.make, spec, seeds, seed=seed, progress=False)
    save_evaluation(path, results, settings)
    print(f"  {entry.group:8s} {entry.label:28s} final train loss "
          f"{np.mean(results['loss'][:, -1]):.4f}  ({time.perf_counter() - start:.0f} s)",
          flush=True)
    return results, settings


def same_weights_fit(folder, settings):
    """A cached fit in ``folder`` of the same weights (``sha256``) under the same protocol,
    made when they were in another folder (a renumbered ``pre-trained/<kind>/<n>``), or
    None: every setting but ``source`` must match."""
    from l2o.results import read_evaluation_settings

    if settings.get("sha256") is None:
        return None
    wanted = {k: v for k, v in settings.items() if k != "source"}
    for other in sorted(glob.glob(os.path.join(folder, "*.npz"))):
        try:
            held = read_evaluation_settings(other) or {}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: no match
            continue
        if {k: v for k, v in held.items() if k != "source"} == wanted:
            return other
    return None


def training_seconds(results):
    """``[seeds, epochs]``: training seconds from the start of each fit to the end of each
    epoch, validation excluded (the module doc says how)."""
    loss = np.asarray(results["loss"])
    seeds, epochs = loss.shape
    stamps = np.asarray(results["batch_time"], np.float64)
    per_epoch = stamps.shape[1] // epochs
    steps = np.diff(stamps, axis=1, prepend=0.0).reshape(seeds, epochs, per_epoch)
    if per_epoch > 1:  # the stamp of an epoch's first step also covers the last validation
        steps[:, 1:, 0] = np.median(steps[:, 1:, 1:], axis=2)
    return np.cumsum(steps.sum(axis=2), axis=1)


def seconds_to_reach(results, target):
    """``(seconds, epoch)``: the first epoch (1-based) whose training loss, averaged over the
    seeds, is at or below ``target``, and the training time to its end averaged over the
    seeds; ``(nan, None)`` when no epoch reaches it or the fit has no time stamps."""
    if "batch_time" not in results:
        return float("nan"), None
    reached = np.flatnonzero(np.mean(np.asarray(results["loss"]), axis=0) <= target)
    if reached.size == 0:
        return float("nan"), None
    epoch = int(reached[0])
    return float(np.mean(training_seconds(results)[:, epoch])), epoch + 1


def full_seconds(results):
    """The training time of the whole fit, averaged over the seeds (nan without stamps)."""
    if "batch_time" not in results:
        return float("nan")
    return float(np.mean(training_seconds(results)[:, -1]))


def grid_best(grid, epochs):
    """The learning rate of ``grid`` ({lr: results}) with the lowest mean training loss at
    epoch ``epochs``; a diverged point (non-finite loss) never wins."""
    from l2o.evaluate.gridsearch import best_learning_rate

    return best_learning_rate({lr: at_horizon(results, epochs) for lr, results in grid.items()},
                              f"Adam at {epochs} epochs")


def summarize(results):
    final = np.asarray(results["loss"])[:, -1]
    row = {"final_train": float(np.mean(final)), "final_train_std": float(np.std(final))}
    if "val_loss" in results:
        best = np.min(np.asarray(results["val_loss"]), axis=1)
        row.update(best_val=float(np.mean(best)), best_val_std=float(np.std(best)))
    return row


#: The label of the reference every ratio and the wall-clock column are taken against.
ADAM_PREFIX = "adam ("


def horizon_rows(fits, grid, epochs):
    """The table rows of one horizon: ``fits`` is ``[(label, group, warmup, results)]`` of
    full-length fits, ``grid`` ``{lr: results}`` of the Adam grid, ``epochs`` the horizon
    (None: function problems)."""
    rows = []
    for label, group, warmup, results in fits:
        rows.append((dict(label=label, group=group, warmup=warmup),
                     at_horizon(results, epochs)))
    best_lr = grid_best(grid, epochs)
    rows.append((dict(label=f"Adam, grid-best lr {best_lr:g}", group="grid", warmup=0),
                 at_horizon(grid[best_lr], epochs)))
    adam = next((results for row, results in rows if row["label"].startswith(ADAM_PREFIX)),
                None)
    adam_loss = np.nan if adam is None else summarize(adam)["final_train"]
    tuned_loss = summarize(rows[-1][1])["final_train"]
    table = []
    for row, results in rows:
        row.update(summarize(results), epochs=epochs)
        row["vs_adam"] = row["final_train"] / adam_loss
        row["vs_tuned_adam"] = row["final_train"] / tuned_loss
        row["train_seconds"] = full_seconds(results)
        if results is adam:  # by definition: Adam reaches its own final loss at its end
            seconds = (row["train_seconds"], np.asarray(results["loss"]).shape[1])
        else:
            seconds = seconds_to_reach(results, adam_loss)
        row["seconds_to_adam"], row["epoch_reached"] = seconds
        table.append(row)
    return table, best_lr


def _cell(mean, std):
    """``mean ± std``: four decimals, or three significant digits below 0.001 (at 25 epochs
    several optimizers end conv_train near 1e-4, which four decimals would show as 0.0000 or
    0.0001 and make unrankable)."""
    if not np.isfinite(mean):
        return "diverged"
    if mean != 0 and abs(mean) < 1e-3:
        return f"{mean:.2e} ± {std:.1e}"
    return f"{mean:.4f} ± {std:.4f}"


def _seconds(row):
    if row.get("epoch_reached") is None:
        return "-" if not np.isfinite(row.get("train_seconds", np.nan)) else "not reached"
    return f"{row['seconds_to_adam']:.1f} (epoch {row['epoch_reached']})"


def problem_table(problem, rows, protocol, epochs=None):
    """A markdown table of one problem's rows (dicts from :func:`horizon_rows`)."""
    title = problem if epochs is None else f"{problem}, {epochs} epochs"
    lines = [f"### {title}", "", protocol, "",
             "| optimizer | group | final train loss | × Adam | × tuned Adam | best val loss "
             "| s to Adam's loss |",
             "| - | - | - | - | - | - | - |"]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['group']} | {_cell(row['final_train'], row['final_train_std'])}"
            f" | {row['vs_adam']:.2f} | {row['vs_tuned_adam']:.2f} | "
            f"{_cell(row.get('best_val', np.nan), row.get('best_val_std', np.nan))} | "
            f"{_seconds(row)} |")
    return "\n".join(lines) + "\n"


def horizons_of(spec, epochs):
    """The horizons of one problem: ``epochs`` sorted (model problems), ``[None]`` for a
    function problem."""
    from l2o.evaluate import is_function_problem

    return [None] if is_function_problem(spec) else sorted(set(int(e) for e in epochs))


def report_problem(problem, entries, args, cache):
    """Fit (or read) every entry and the Adam grid on one problem, once, for the longest
    horizon; returns ``([(epochs, rows, protocol)], curves, horizons)``."""
    from l2o.evaluate import get_eval_problem
    from l2o.evaluate.gridsearch import grid_search

    spec = get_eval_problem(problem, dataset=args.dataset)
    horizons = horizons_of(spec, args.epochs)
    longest = horizons[-1]
    if longest is not None:
        spec["epochs"] = longest
    print(f"{problem}: {len(entries)} optimizers + Adam grid {list(args.grid)}, "
          f"{args.seeds} seeds" + ("" if longest is None else f", {longest} epochs"),
          flush=True)
    _, grid = grid_search(os.path.join(cache, "gridsearch"), "adam", problem,
                          args.grid, args.seeds, dataset=args.dataset, epochs=longest,
                          seed=args.seed, log=lambda line: print("  " + line, flush=True),
                          use_keras=True)
    fits, curves = [], {}
    for entry in entries:
        results, settings = run_entry(entry, problem, spec, args.seeds, args.seed, cache)
        fits.append((entry.label, entry.group, settings["warmup"], results))
        curves[(entry.group, entry.label)] = results
    tables = []
    for epochs in horizons:
        rows, best_lr = horizon_rows(fits, grid, epochs)
        for row in rows:
            row["problem"] = problem
        if epochs == longest:
            curves[("grid", f"Adam lr {best_lr:g}")] = grid[best_lr]
        warmups = sorted({r["warmup"] for r in rows})
        length = (f"{spec.get('steps', '-')} steps" if epochs is None else
                  f"{epochs} epochs" + ("" if epochs == longest else
                                        f" (the first {epochs} of each {longest}-epoch fit)"))
        protocol = (f"{problem} on {spec.get('dataset', '-')}, {length}, "
                    f"batch {spec.get('batch_size', '-')}, seeds {args.seed}-"
                    f"{args.seed + args.seeds - 1}; mean ± std over seeds. Learned optimizers "
                    f"are run as `l2o.load` gives them (warmup: "
                    f"{', '.join(str(w) for w in warmups)} SGD steps). × columns divide the "
                    "final training loss by Adam's (lr 0.005) and by the grid-tuned Adam's at "
                    "this horizon. s to Adam's loss: training seconds (validation excluded, "
                    "mean over seeds) to the end of the first epoch whose seed-mean training "
                    "loss is at or below Adam's final one; Adam's own entry is its full "
                    "training time.")
        tables.append((epochs, rows, protocol))
    return tables, curves, horizons


def figure(curves_by_problem, out_png, marks=None):
    """Training loss per epoch (mean over seeds), one panel per problem; ``marks``
    ({problem: [epochs]}) draws a dotted vertical line at each shorter horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(curves_by_problem)
    fig, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4.5), squeeze=False)
    styles = {"ours": "-", "paper": "--", "teacher": ":", "grid": "-"}
    for ax, problem in zip(axes[0], problems):
        curves = curves_by_problem[problem]
        shown = [k for k in curves if k[0] != "ours" or k[1].endswith("/1")]
        for index, (group, label) in enumerate(shown):
            if group == "teacher" and not label.startswith(("adam", "rmsprop")):
                continue
            loss = np.asarray(curves[(group, label)]["loss"])
            epochs = np.arange(1, loss.shape[1] + 1)
            color = "black" if group == "grid" else f"C{index % 10}"
            ax.semilogy(epochs, np.mean(loss, axis=0), styles[group], color=color,
                        label=f"{label} ({group})", linewidth=2 if group == "ours" else 1.2,
                        marker="." if loss.shape[1] < 30 else None)
        for epochs in (marks or {}).get(problem, ()):
            ax.axvline(epochs, color="grey", linestyle=":", linewidth=1)
        ax.set_title(problem)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (mean over seeds)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    tmp = out_png + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def _problems(text):
    if not _names(text):
        raise argparse.ArgumentTypeError(f"must name at least one evaluation problem, got '{text}'")
    return _names(text)


def _learning_rates(text):
    try:
        rates = tuple(float(g) for g in _names(text))
    except ValueError:
        rates = ()
    if not rates or not all(0 < rate < float("inf") for rate in rates):  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"must be a comma list of positive learning rates, got '{text}'")
    return rates


def _replicates(text):
    """'all' (None) or a comma list of replicate numbers (a set)."""
    if text == "all":
        return None
    try:
        replicates = {int(r) for r in _names(text)}
    except ValueError:
        replicates = set()
    if not replicates or min(replicates) < 1:
        raise argparse.ArgumentTypeError(
            f"must be 'all' or a comma list of replicate numbers (1, 2, ...), got '{text}'")
    return replicates


def parse_args(argv):
    from l2o.cli import ArgumentParser, whole_number, whole_numbers

    parser = ArgumentParser(
        prog="python -m l2o.report",
        description="Evaluate our optimizers, the paper's and the teachers on the same seeds; "
                    "write a markdown table, a CSV and a figure.")
    parser.add_argument("--problems", type=_problems, default=list(DEFAULT_PROBLEMS),
                        help=f"comma list of evaluation problems (default: "
                             f"{','.join(DEFAULT_PROBLEMS)})")
    parser.add_argument("--dataset", default="mnist_5k",
                        help="dataset of the model problems (default: %(default)s, offline)")
    parser.add_argument("--epochs", type=whole_numbers(1), default=list(DEFAULT_EPOCHS),
                        help="comma list of horizons in epochs: one fit of the longest, a "
                             "table for each (default: "
                             f"{','.join(str(e) for e in DEFAULT_EPOCHS)})")
    parser.add_argument("--seeds", type=whole_number(1), default=5,
                        help="fits per optimizer (default: 5)")
    parser.add_argument("--seed", type=whole_number(0), default=0, help="first seed (default: 0)")
    parser.add_argument("--grid", type=_learning_rates, default=DEFAULT_GRID,
                        help=f"Adam learning rates to search (default: "
                             f"{','.join(f'{g:g}' for g in DEFAULT_GRID)})")
    parser.add_argument("--ours", default="pre-trained",
                        help="folder of our optimizers, <kind>/<n> (default: %(default)s)")
    parser.add_argument("--ours-replicates", type=_replicates, default=None,
                        help="'all' (default), or a comma list of replicates of ours to "
                             "include on the first problem")
    parser.add_argument("--paper", default=DEFAULT_PAPER,
                        help="the paper's released optimizers (replicate 1 of each kind is "
                             "used; skipped when absent; default: %(default)s)")
    parser.add_argument("--out", default=os.path.join("figures", "report"),
                        help="output folder (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    from l2o.cli import main_wrapper, quiet_native_logs

    quiet_native_logs()
    return main_wrapper(run, argv)


def run(argv):
    import pandas as pd

    from l2o.errors import L2OError
    from l2o.evaluate import EVAL_PROBLEMS

    args = parse_args(argv)
    unknown = [p for p in args.problems if p not in EVAL_PROBLEMS]
    if unknown:
        raise L2OError(f"unknown evaluation problem(s) {', '.join(unknown)}; valid: "
                       f"{', '.join(sorted(EVAL_PROBLEMS))}")
    others = []
    if os.path.isdir(args.paper):
        others += learned_entries(args.paper, "paper", {1})
    others += teacher_entries()
    cache = os.path.join(args.out, "runs")
    sections, frames, curves, marks = [], [], {}, {}
    for index, problem in enumerate(args.problems):
        ours = []
        if os.path.isdir(args.ours):
            ours = learned_entries(args.ours, "ours",
                                   args.ours_replicates if index == 0 else {1})
        tables, curves[problem], horizons = report_problem(problem, ours + others, args, cache)
        marks[problem] = [h for h in horizons[:-1] if h is not None]
        for epochs, rows, protocol in tables:
            sections.append(problem_table(problem, rows, protocol, epochs))
            frames.append(pd.DataFrame(rows))
    from l2o.results import atomic_write_text

    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "report.md"), "\n".join(sections))
    table = pd.concat(frames)
    first = ["problem", "epochs", "label", "group"]
    table = table[first + [c for c in table.columns if c not in first]].copy()
    table["epochs"] = table["epochs"].astype("Int64")  # empty for function problems
    table["epoch_reached"] = table["epoch_reached"].astype("Int64")
    atomic_write_text(os.path.join(args.out, "report.csv"), table.to_csv(index=False))
    png = figure(curves, os.path.join(args.out, "report.png"), marks)
    print("\n".join(sections))
    print(f"Wrote {os.path.join(args.out, 'report.md')}, report.csv and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
