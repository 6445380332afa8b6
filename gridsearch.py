"""Learning-rate grid search of the analytical rules on evaluation problems.

    python gridsearch.py --problem=conv_train --policy=adam,rmsprop --grid=0.001,0.005,0.01 \\
        --repeat=5 --dataset=mnist_5k --epochs=10

Writes ``<directory>/<policy>/<problem>/<lr>.npz`` (atomically, with its settings; the same
arrays as baseline.py) and prints the best learning rate of each rule and problem (lowest
mean final training loss). A point already written with the same settings is reused; one
written with other settings is refused before anything runs, unless ``--overwrite``.
"""

from l2o import cli

SCRIPT = cli.Script(
    "gridsearch.py",
    "Search the learning rate of analytical rules (the l2o policies with the reference's "
    "fixed hyperparameters) on evaluation problems.",
    (
        cli.Flag("problem", str, "conv_train", "comma list of evaluation problems"),
        cli.Flag("policy", str, "adam,rmsprop,sgd,momentum,addsign,powersign",
                 "comma list of rules to search"),
        cli.Flag("grid", str, "0.001,0.01,0.1", "comma list of learning rates"),
        cli.Flag("repeat", int, 10, "independent runs per learning rate (at least 1)"),
        cli.Flag("keras", bool, False,
                 "true: Keras' own Adam/RMSprop/SGD; false: the l2o rules (the reference's)"),
        cli.Flag("directory", str, "gridsearch",
                 "output folder; files go to `<directory>/<policy>/<problem>/<lr>.npz`"),
        cli.Flag("dataset", str, None, "replace the problems' dataset, e.g. mnist_5k (offline)",
                 shown="the problem's"),
        cli.Flag("epochs", int, None, "train model problems for this many epochs instead of "
                                      "their own", shown="the problem's"),
        cli.Flag("seed", int, None, "seed of run 0 (run i uses seed + i); the same seeds for "
                                    "every learning rate", shown="random"),
        cli.OVERWRITE,
        *cli.device_flags(repeats=True),
    ),
)


def parse_grid(text):
    values = []
    for part in cli.split_list(text):
        try:
            value = float(part)
        except ValueError:
            raise cli.UsageError(f"--grid expects a comma list of learning rates, got '{text}'") \
                from None
        if not value > 0:
            raise cli.UsageError(f"--grid learning rates must be positive, got {part}")
        values.append(value)
    if not values:
        raise cli.UsageError("--grid is empty; e.g. --grid=0.001,0.01")
    return values


def main(argv):
    if SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, _, _ = SCRIPT.parse(argv)
    problems = cli.check_evaluation_flags(args)
    grid = parse_grid(args.grid)
    policies = cli.split_list(args.policy)

    from l2o.errors import unknown
    from l2o.evaluate.gridsearch import GRID_POLICIES, check_grid_points, grid_search

    for policy in policies:
        if policy not in GRID_POLICIES:
            raise unknown("grid-search policy", policy, GRID_POLICIES)
    point = dict(dataset=args.dataset, epochs=args.epochs, seed=args.seed, use_keras=args.keras)
    for problem in problems:  # every file is checked before the first fit
        for policy in policies:
            check_grid_points(args.directory, policy, problem, grid, args.repeat,
                              overwrite=args.overwrite, hint=cli.OVERWRITE_HINT, **point)
    strategy = cli.create_devices(args)
    best = []
    for problem in problems:
        for policy in policies:
            with cli.problem_scope(strategy, problem):
                lr, _ = grid_search(args.directory, policy, problem, grid, args.repeat,
                                    overwrite=args.overwrite, **point)
            best.append(f"  {policy} on {problem}: best learning rate {lr:g}")
    print("Best learning rates (lowest mean final training loss):")
    print("\n".join(best))
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
