"""Evaluate a fixed analytical optimizer on evaluation problems, for comparison.

    python baseline.py --problem=conv_train,conv_wider --optimizer=adam --repeat=10

Writes ``<directory>/<optimizer>/<problem>.npz`` (atomically), with the same arrays as
evaluate.py's ``eval/<problem>/<checkpoint>.npz``, so both plot side by side. A file there
that holds other settings (another seed, repeat, dataset, ...) is refused before anything
runs, unless ``--overwrite``.
"""

from pathlib import Path

from l2o import cli

SCRIPT = cli.Script(
    "baseline.py",
    "Evaluate a fixed analytical optimizer (Adam, RMSProp, SGD, ...) on evaluation problems.",
    (
        cli.Flag("problem", str, "conv_train", "comma list of evaluation problems"),
        cli.Flag("optimizer", str, "adam",
                 "baseline key: adam, rmsprop, sgd, momentum, momentum_custom, addsign, "
                 "powersign, or the *_deep variants"),
        cli.Flag("repeat", int, 10, "independent runs per problem (at least 1)"),
        cli.Flag("keras", bool, True,
                 "true: Keras' own Adam/RMSprop/SGD where one exists; false: always the l2o "
                 "analytical rule"),
        cli.Flag("directory", str, "baseline", "output folder; files go to "
                                               "`<directory>/<optimizer>/<problem>.npz`"),
        cli.Flag("dataset", str, None, "replace the problems' dataset, e.g. mnist_5k (offline)",
                 shown="the problem's"),
        cli.Flag("epochs", int, None, "train model problems for this many epochs instead of "
                                      "their own (a quick look)", shown="the problem's"),
        cli.Flag("seed", int, None, "seed of run 0 (run i uses seed + i): models, shuffles",
                 shown="random"),
        cli.OVERWRITE,
        *cli.device_flags(repeats=True),
    ),
)


def main(argv):
    if SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, _, _ = SCRIPT.parse(argv)
    problems = cli.check_evaluation_flags(args)
    output = Path(args.directory)
    if output.exists() and not output.is_dir():
        raise cli.UsageError(f"--directory={args.directory} is a file, not a folder")

    # Importing the evaluation code imports TensorFlow but runs no op, so the devices can
    # still be configured afterwards.
    from l2o.errors import unknown
    from l2o.evaluate import BASELINES, get_eval_problem, is_function_problem, make_baseline
    from l2o.evaluate import run_repeats
    from l2o.results import check_evaluation_file, evaluation_record, save_evaluation

    if args.optimizer not in BASELINES:
        raise unknown("baseline optimizer", args.optimizer, BASELINES)
    work = []  # every file is checked before the first fit
    for problem in problems:
        spec = get_eval_problem(problem, dataset=args.dataset)
        if args.epochs is not None and not is_function_problem(spec):
            spec["epochs"] = args.epochs
        settings = evaluation_record(problem, spec, args.repeat, args.seed,
                                     optimizer=args.optimizer, keras=args.keras)
        path = output / args.optimizer / f"{problem}.npz"
        check_evaluation_file(path, settings, args.overwrite, hint=cli.OVERWRITE_HINT)
        work.append((problem, spec, settings, path))
    strategy = cli.create_devices(args)

    def make_optimizer():
        return make_baseline(args.optimizer, use_keras=args.keras)

    make_optimizer()  # an optimizer that cannot be built fails before any fit
    written = []
    for problem, spec, settings, path in work:
        print(f"Evaluating baseline {args.optimizer} on {problem}: repeat={args.repeat}",
              flush=True)
        with cli.problem_scope(strategy, problem):
            results = run_repeats(make_optimizer, spec, args.repeat, seed=args.seed)
        save_evaluation(path, results, settings)
        print(f"Saved baseline: {path}", flush=True)
        written.append(path)
    print(f"Wrote {len(written)} baseline file(s):")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
