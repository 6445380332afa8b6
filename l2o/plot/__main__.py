"""Command line: compare optimizers on one problem, or draw an experiment's training curves.

    python -m l2o.plot --problem=conv_train \\
        --results=results/rnnprop/min-max/1,results/rnnprop/mean --baselines=adam,rmsprop \\
        --baseline-root=baseline --out=figures/conv_train.png
    python -m l2o.plot --training=results/rnnprop/min-max/1 --out=figures/min-max_1.png
    python -m l2o.plot --problem=conv_train --stability=none:experiments/stability/none,\
        gaussian:experiments/stability/gaussian --reference=none --baselines=adam

A ``--results`` entry is an experiment folder, a folder of replicate experiments (their runs are
pooled) or an ``.npz`` file; ``path:checkpoint`` picks a checkpoint (``stage_3.7.0``, ``3.7.0``).
Prints the files read, a markdown table of per-run statistics and, last, the PNG written.
``--stability`` instead prints the meta-stability table of recipes trained as several
replicates (``label:folder``, the folder holding one experiment per replicate): the
replicates' mean, std, worst and worst / best factor of the final and best validation loss,
the std's ratio to the ``--reference`` recipe's and the one-sided F test's p value of a
smaller spread of the log loss than the reference's, with the ``--baselines`` and the
``--grid`` rules at their best learning rate beside them; and it draws every replicate's
curves, one row of panels per recipe (``--out``, default
``figures/stability_<problem>[_<N>ep].png``). ``--epochs=N`` reads every run's figures after
its first N epochs (one 25-epoch evaluation also gives the 10-epoch table). With
``--stability``, ``--problem`` and ``--epochs`` may be comma lists: one table and figure per
problem and horizon, so an experiment's whole table is one command
(``--problem=conv_train,mlp_train,conv_avg --epochs=10,25``), followed by the final training
loss of every problem and horizon in one table and of every replicate in another.
Errors are one line on stderr with exit status 2.
"""

import argparse
import sys
from pathlib import Path

from l2o.cli import ArgumentParser, whole_number, whole_numbers
from l2o.errors import L2OError
from l2o.plot.figures import (accepted_rows, compare, replicate_count, stability_figure,
                              training_figure)
from l2o.plot.results import (baseline_path, default_metadata, describe_entry, folder_rule,
                              load_baseline, load_entry, load_replicates, load_training,
                              replicate_dirs, resolve_eval_path, split_evaluated)
from l2o.plot.stats import (at_horizon, replicate_table, stability_summary, stability_table,
                            stats_table)
from l2o.results import base_name


def _parser():
    parser = ArgumentParser(prog="python -m l2o.plot", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", help="evaluation problem key, e.g. conv_train (with "
                                          "--stability a comma list: one table each)")
    parser.add_argument("--results", default="",
                        help="comma list of experiment / replicate folders or .npz files, "
                             "each optionally path:checkpoint")
    parser.add_argument("--baselines", default="", help="comma list of baseline optimizer keys")
    parser.add_argument("--baseline-root", default="baseline", help="baseline folder (baseline)")
    parser.add_argument("--labels", default="",
                        help="comma list of legend labels: results first, then baselines")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint for every --results entry without its own")
    parser.add_argument("--band", choices=("minmax", "std"), default="minmax",
                        help="shaded band: min-max over runs or mean ± std (minmax)")
    parser.add_argument("--x", choices=("epoch", "time"), default="epoch",
                        help="x axis of the per-epoch panels (epoch)")
    parser.add_argument("--window", type=whole_number(1), default=100,
                        help="moving-average window of the per-batch panel (100)")
    parser.add_argument("--stability", default="",
                        help="comma list of label:folder, each folder the replicates of a "
                             "recipe: print their meta-stability table")
    parser.add_argument("--evaluated-only", action="store_true",
                        help="--stability: leave out (and name) the replicates not evaluated "
                             "on the problem yet, instead of stopping at the first")
    parser.add_argument("--reference", default=None,
                        help="--stability label whose std the others are divided by")
    parser.add_argument("--grid", default="",
                        help="comma list of grid-searched rules (e.g. adam): each is shown "
                             "beside the --stability recipes at its best learning rate")
    parser.add_argument("--grid-root", default="gridsearch",
                        help="grid search folder (gridsearch)")
    parser.add_argument("--epochs", type=whole_numbers(1), default=None,
                        help="figures after the first N epochs of each run (all); with "
                             "--stability a comma list of horizons, one table each")
    parser.add_argument("--training", default=None,
                        help="experiment folder whose summary.csv to plot instead")
    parser.add_argument("--out", default=None, help="PNG to write (figures/<name>.png)")
    return parser


def _split(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def _result_label(path):
    parts = Path(path).parts
    if path.suffix == ".npz":
        parts = parts[:-1] + (path.stem,)
    if "results" in parts:
        tail = parts[parts.index("results") + 1:]
        if tail:
            return "/".join(tail)
    return "/".join(parts[-2:]) if len(parts) > 1 else (parts[0] if parts else str(path))


def _entries(args):
    """Label -> (loaded record, files read), results first, then baselines."""
    specs = []
    for item in _split(args.results):
        path, _, checkpoint = item.rpartition(":") if ":" in item else (item, "", "")
        specs.append(("result", Path(path), checkpoint or args.checkpoint))
    specs += [("baseline", name, None) for name in _split(args.baselines)]
    if not specs and not _split(args.grid):
        raise L2OError("nothing to plot: give --results, --baselines and/or --grid "
                       "(or --training)")
    labels = _split(args.labels)
    if labels and len(labels) != len(specs):
        raise L2OError(f"--labels has {len(labels)} names for {len(specs)} entries "
                       "(results first, then baselines)")
    entries, sources = {}, {}
    for index, (kind, what, checkpoint) in enumerate(specs):
        if kind == "result":
            label = labels[index] if labels else _result_label(what)
            record = load_entry(what, args.problem, checkpoint)
            files = describe_entry(what, args.problem, checkpoint)
        else:
            label = labels[index] if labels else what
            record = load_baseline(args.baseline_root, what, args.problem)
            files = [str(baseline_path(args.baseline_root, what, args.problem))]
        unique, number = label, 2
        while unique in entries:
            unique, number = f"{label} ({number})", number + 1
        entries[unique], sources[unique] = record, files
    return entries, sources


def _compare(args):
    if not args.problem:
        raise L2OError("--problem is required to compare results (e.g. --problem=conv_train)")
    from l2o.results import describe_settings, read_evaluation_settings

    entries, sources = _entries(args)
    entries = {label: _horizon(args, record) for label, record in entries.items()}
    entries.update({label: record for label, (_, _, record) in _grid_best(args).items()})
    for label, files in sources.items():
        print(f"{label}: {', '.join(files)}")
        # which protocol each file holds, so a table never mixes them unseen
        for path in files:
            if str(path).endswith(".npz") and Path(path).is_file():
                print(f"    {Path(path).name}: "
                      f"{describe_settings(read_evaluation_settings(path))}")
    print()
    print(stats_table(entries))
    print()
    out = Path(args.out or Path("figures") / f"{args.problem}.png")
    written = compare(args.problem, entries, out, band=args.band, x=args.x,
                      window=args.window)
    print(written)


def _one_table(args, what):
    """``args`` with its single ``--problem`` and ``--epochs`` (an int or None): a comparison
    or a training figure is one problem at one horizon."""
    problems, horizons = _split(args.problem or ""), args.epochs or [None]
    if len(problems) > 1 or len(horizons) > 1:
        raise L2OError(f"{what} takes one --problem and one --epochs; several are for "
                       "--stability tables")
    return argparse.Namespace(**{**vars(args), "problem": args.problem, "epochs": horizons[0]})


def _stability_tables(args):
    """One meta-stability table (and figure) per ``--problem`` and ``--epochs`` horizon, so
    an experiment's whole table is one command, e.g. ``--problem=conv_train,mlp_train
    --epochs=10,25``; with several, then the final training loss of every problem and horizon
    in one table, and every replicate's."""
    problems = _split(args.problem or "")
    if not problems:
        raise L2OError("--problem is required (e.g. --problem=conv_train)")
    tables = [(problem, epochs) for problem in problems for epochs in (args.epochs or [None])]
    if args.out and len(tables) > 1:
        raise L2OError(f"--out names one figure, but {len(tables)} tables were asked for; "
                       "leave it out to write figures/stability_<problem>_<N>ep.png each")
    summary, per_replicate = [], []
    for problem, epochs in tables:
        heading = problem + ("" if epochs is None else f", {epochs} epochs")
        if len(tables) > 1:
            print(f"## {heading}")
            print()
        recipes, names, baselines, grid = _stability(
            argparse.Namespace(**{**vars(args), "problem": problem, "epochs": epochs}))
        summary.append((heading, recipes, baselines))
        per_replicate.append((heading, recipes, names, {
            **{label: record for label, record in baselines.items() if label not in grid},
            **{f"{policy}, grid-best": (record, f"lr {rate}")
               for label, (policy, rate, record) in grid.items()}}))
        if len(tables) > 1:
            print()
    if len(tables) > 1:
        print("## Final training loss, every problem and horizon")
        print()
        print(stability_summary(summary, reference=args.reference))
        print()
        print("## Final training loss of every replicate (mean of its runs)")
        print()
        print(replicate_table(per_replicate))


def _stability(args):
    """The meta-stability table of the ``--stability`` recipes, baselines beside, for one
    problem and horizon. Returns what it compared: ``(recipes, names, baselines, grid)``,
    the replicates' records and names (folder and evaluated checkpoint) per recipe, the
    baselines' records by label, and the ``--grid`` rules among them by label
    (``(policy, rate, record)``)."""
    recipes, names, legend = {}, {}, {}
    for item in _split(args.stability):
        label, sep, folder = item.partition(":")
        if not sep or not label or not folder:
            raise L2OError(f"--stability entries are label:folder, got '{item}'")
        dirs = replicate_dirs(folder)
        if args.evaluated_only:
            dirs, missing = split_evaluated(dirs, args.problem, args.checkpoint)
            if missing:
                print(f"{label}: left out, no evaluation of {args.problem}: "
                      + ", ".join(str(m) for m in missing))
            if not dirs:
                raise L2OError(f"no replicate in {folder} is evaluated on {args.problem}")
        pooled = load_replicates(folder, args.problem, args.checkpoint, replicates=dirs)
        replicate = pooled.pop("replicate")
        numbers = sorted(set(replicate.tolist()))
        recipes[label] = [_horizon(args, {k: v[replicate == r] for k, v in pooled.items()})
                          for r in numbers]
        legend[label] = [dirs[r].name for r in numbers]
        names[label] = [f"{dirs[r].name} "
                        f"({resolve_eval_path(dirs[r], args.problem, args.checkpoint).stem})"
                        for r in numbers]
        print(f"{label}: {replicate_count(len(recipes[label]))} in {folder}")
    baselines = {name: _horizon(args, load_baseline(args.baseline_root, name, args.problem))
                 for name in _split(args.baselines)}
    grid = _grid_best(args)
    baselines.update({label: record for label, (_, _, record) in grid.items()})
    if args.epochs:
        print(f"figures after the first {args.epochs} epochs of each run")
    print()
    print(stability_table(recipes, reference=args.reference, baselines=baselines))
    print()
    horizon = f"_{args.epochs}ep" if args.epochs else ""
    out = Path(args.out or Path("figures") / f"stability_{args.problem}{horizon}.png")
    print(stability_figure(args.problem, recipes, out, baselines=baselines, names=legend))
    return recipes, names, baselines, grid


def _horizon(args, record):
    return record if args.epochs is None else at_horizon(record, args.epochs)


def _grid_best(args):
    """``{"<rule>, grid-best lr <lr>": (rule, lr, record)}`` for each ``--grid`` rule: the
    learning rate with the lowest mean final training loss at the ``--epochs`` horizon."""
    from l2o.evaluate.gridsearch import best_learning_rate
    from l2o.plot.results import gridsearch_learning_rates, load_gridsearch

    best = {}
    for policy in _split(args.grid):
        rates = gridsearch_learning_rates(args.grid_root, policy, args.problem)
        table = {rate: _horizon(args, load_gridsearch(args.grid_root, policy, args.problem, rate))
                 for rate in (rates or [None])}  # no rates: load_gridsearch says what is there
        rate = best_learning_rate(table, f"{policy} on {args.problem}")
        best[f"{policy}, grid-best lr {rate}"] = (policy, rate, table[rate])
    return best


def _training(args):
    directory = Path(args.training)
    summary = load_training(directory)
    name = "_".join(directory.parts[-3:]) if directory.parts else "training"
    out = Path(args.out or Path("figures") / f"training_{name}.png")
    rule = folder_rule(directory)
    best = default_metadata(summary, rule)
    if best is not None:
        rows = summary
        for key, value in best.items():
            rows = rows[rows[key] == value]
        validation = rows["validation"].iloc[-1] if len(rows) else float("nan")
        rejected = len(summary) - len(accepted_rows(summary, rule))
        print(f"{directory}: {len(summary)} rows in summary.csv ({rejected} rejected repeats); "
              f"default checkpoint {base_name(best)} (validation {validation:.4g})")
    written = training_figure(summary, out, title=str(directory))
    print(written)


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
        if args.training is not None:
            if args.results or args.baselines:
                raise L2OError("--training draws one experiment's curves; give it without "
                               "--results / --baselines")
            _training(_one_table(args, "--training"))
        elif args.stability:
            _stability_tables(args)
        else:
            _compare(_one_table(args, "a comparison"))
    except L2OError as error:
        print(f"l2o.plot: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"l2o.plot: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # TensorFlow is imported only by --grid (l2o.evaluate); its C++ start-up lines stay off
    # the terminal as in the other scripts. Here, not in main(): the tests call main() in
    # their own process, whose stderr capture must not be redirected.
    from l2o.cli import quiet_native_logs

    quiet_native_logs()
    sys.exit(main())
