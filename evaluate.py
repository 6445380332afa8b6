"""Evaluate trained optimizers: fit fresh models with each chosen checkpoint's policy.

    python evaluate.py --problem=conv_train,conv_wider --directory=results/rnnprop/min-max \\
        --recursive --repeat=10

Results go to ``<directory>/eval/<problem>[_<suffix>][_dbg]/<checkpoint>.npz``. Problem names,
folders and checkpoints are all checked before TensorFlow starts, so a typo costs nothing.
"""

from l2o import cli

SCRIPT = cli.Script(
    "evaluate.py",
    "Evaluate the checkpoints of experiment folders on named evaluation problems. "
    "Without arguments it prints this help.",
    (
        cli.Flag("problem", str, "conv_train", "comma list of evaluation problems (conv_train, "
                                               "mlp_train, conv_wider, resnet, rastrigin10, ...)"),
        cli.Flag("directory", str, "weights", "comma list of experiment folders"),
        cli.Flag("recursive", bool, False,
                 "replace each --directory by its sub-folders that hold a config.json "
                 "(e.g. all replicates)"),
        cli.Flag("repeat", int, 10, "independent evaluation runs per problem (at least 1)"),
        cli.Flag("strategy", str, "repeat",
                 "how to read --periods/--stages: simple or repeat (periods), curriculum "
                 "(stages, optionally paired with periods)"),
        cli.Flag("periods", str, None, "comma list of periods to evaluate", shown="best"),
        cli.Flag("stages", str, None, "comma list of curriculum stages to evaluate", shown="best"),
        cli.Flag("suffix", str, "", "appended to the output folder name: `eval/<problem>_<suffix>/`"),
        cli.Flag("dataset", str, None,
                 "replace the problems' dataset, e.g. mnist_5k (offline); same output folder",
                 shown="the problem's"),
        cli.Flag("epochs", int, None,
                 "train model problems for this many epochs instead of their own (a quick "
                 "look); same output folder", shown="the problem's"),
        cli.Flag("warmup", str, "none",
                 "evaluation protocol: none (0 SGD steps first, what l2o.load gives), config "
                 "(the paper's: the config's validation warmup, e.g. 100 SGD steps) or a "
                 "number of SGD steps"),
        cli.Flag("warmup_rate", float, None, "learning rate of the warmup SGD steps",
                 shown="the config's"),
        cli.Flag("seed", int, None, "seed of run 0 (run i uses seed + i): models, shuffles",
                 shown="random"),
        cli.OVERWRITE,
        cli.Flag("debug", bool, False,
                 "build the policy in debug mode and record its debug statistics (_dbg folder)"),
        cli.Flag("info", bool, False, "print each folder's config"),
        cli.Flag("override", bool, False,
                 "turn the other --a/b/c=value arguments into overrides of the saved config "
                 "(not checked against it, not saved)"),
        *cli.device_flags(repeats=True),
    ),
    overrides="optional",
    notes="""Checkpoints: by default the strategy's best one (latest period for repeat, the best
period of the latest stage for curriculum). --periods=3,4 picks periods (their best repeat);
with --strategy=curriculum, --stages=1,2 picks stages and --stages=1,2 --periods=5,3 picks
(stage, period) pairs.

Protocol: by default no warmup, as l2o.load runs an optimizer validated without one; the
paper's protocol (--warmup=config) first trains 100 SGD steps, a third of a 10-epoch
mnist_5k run. The warmup, dataset, epochs, repeat and seed are printed and stored in every
evaluation file.""",
)


def _whole_numbers(flag, text):
    if text is None:
        return None
    values = []
    for part in cli.split_list(text):
        if not part.isdigit():
            raise cli.UsageError(f"--{flag} expects a comma list of whole numbers, got '{text}'")
        values.append(int(part))
    if not values:
        raise cli.UsageError(f"--{flag} is empty; e.g. --{flag}=1,2")
    return values


def check_warmup(text):
    """``--warmup``: ``"none"``, ``"config"`` or a whole number of SGD iterations."""
    if text in ("none", "config"):
        return text
    if text.isdigit():
        return int(text)
    raise cli.UsageError(f"--warmup must be none, config or a whole number of SGD steps, "
                         f"got '{text}'")


def checkpoint_list(args):
    """The checkpoints to evaluate, as partial metadata dicts (``{}``: the default one)."""
    from l2o.config import STRATEGIES
    from l2o.errors import unknown

    if args.strategy not in STRATEGIES:
        raise unknown("strategy", args.strategy, STRATEGIES)
    periods = _whole_numbers("periods", args.periods)
    stages = _whole_numbers("stages", args.stages)
    if args.strategy != "curriculum":
        if stages is not None:
            raise cli.UsageError(f"--stages needs --strategy=curriculum (got "
                                 f"--strategy={args.strategy})")
        return [{"period": p} for p in periods] if periods else [{}]
    if stages is None:
        if periods is not None:
            raise cli.UsageError("with --strategy=curriculum, --periods pairs with --stages: "
                                 "give --stages too (same length)")
        return [{}]
    if periods is None:
        return [{"stage": s} for s in stages]
    if len(periods) != len(stages):
        raise cli.UsageError(f"--stages has {len(stages)} entries but --periods has "
                             f"{len(periods)}; they are paired one to one")
    return [{"stage": s, "period": p} for s, p in zip(stages, periods)]


def experiment_folders(text, recursive):
    """The experiment folders named by ``--directory`` (and ``--recursive``)."""
    from pathlib import Path

    names = cli.split_list(text)
    if not names:
        raise cli.UsageError("--directory names no folder")
    folders = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            raise cli.UsageError(f"--directory: {name} is not a folder")
        if recursive:
            found = sorted(p for p in path.iterdir() if (p / "config.json").is_file())
            if not found:
                raise cli.UsageError(f"--recursive: no sub-folder of {name} holds a config.json")
            folders.extend(str(p) for p in found)
        else:
            folders.append(name)
    return folders


def plan(folders, checkpoints, overrides):
    """Check every folder's config and checkpoints; ``[(folder, [metadata, ...]), ...]``."""
    from l2o.strategy import read_config

    work = []
    for folder in folders:
        config = cli.apply_cli_overrides(read_config(folder), overrides, SCRIPT)
        index = cli.checkpoint_index(folder, config)
        resolved = []
        for partial in checkpoints:
            try:
                metadata = index.complete_metadata(partial)
            except cli.L2OError as err:
                raise cli.L2OError(f"{folder}: {err}") from None
            if not index.experiment.has_checkpoint(metadata):
                raise cli.L2OError(f"{folder}: the checkpoint "
                                   f"{index.experiment.checkpoint_prefix(metadata)}.index is "
                                   "missing")
            resolved.append(metadata)
        work.append((folder, resolved))
    return work


def main(argv):
    if not argv or SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, _, overrides = SCRIPT.parse(argv)
    problems = cli.check_evaluation_flags(args)
    warmup = check_warmup(args.warmup)
    if args.warmup_rate is not None and args.warmup_rate < 0:
        raise cli.UsageError(f"--warmup_rate must be >= 0, got {args.warmup_rate}")
    work = plan(experiment_folders(args.directory, args.recursive), checkpoint_list(args),
                overrides)

    strategy = cli.create_devices(args)
    from l2o.strategy import build_from_config

    written = []
    for folder, checkpoints in work:
        with cli.experiment_scope(strategy):
            experiment = build_from_config(folder, overrides, info=args.info, debug=args.debug,
                                           for_evaluation=True)
        for metadata in checkpoints:
            for problem in problems:
                with cli.problem_scope(strategy, problem), cli.eval_epochs(problem, args.epochs):
                    written.append(experiment.evaluate(
                        metadata, repeat=args.repeat, problem=problem, suffix=args.suffix,
                        dataset=args.dataset, warmup=warmup, warmup_rate=args.warmup_rate,
                        seed=args.seed, overwrite=args.overwrite))
    print(f"Wrote {len(written)} evaluation file(s):")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
