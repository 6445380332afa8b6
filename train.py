"""Meta-train a learned optimizer into an experiment folder (resumes when the folder exists).

    python train.py --strategy=curriculum --policy=rnnprop \\
        --presets=conv_train,adam,rmsprop,il_more --directory=results/rnnprop/min-max/1

Order of work: every argument that can be checked without TensorFlow is checked first
(strategy, policy and preset names, every override, the strategy settings, and whether the
folder holds a different config), so a typo fails at once and the folder is untouched; then
the devices are configured, everything is built, and training runs.
"""

from l2o import cli

SCRIPT = cli.Script(
    "train.py",
    "Meta-train a learned optimizer. Running it again on the same --directory with the same "
    "settings resumes from the last finished period.",
    (
        cli.Flag("directory", str, "weights",
                 "experiment folder (config.json, summary.csv, checkpoint/, log/, eval/)"),
        cli.Flag("strategy", str, "repeat", "training strategy: simple, repeat or curriculum"),
        cli.Flag("policy", str, "rnnprop",
                 "policy to train, a key of the policy defaults (rnnprop, less_choice, "
                 "more_choice, ...)"),
        cli.Flag("presets", str, "", "comma list of presets, applied in order "
                                     "(see --list-presets)"),
        cli.Flag("seed", int, None, "make the run repeatable: initial weights and every "
                                    "period's draws (stored as strategy/seed; resume with "
                                    "the same seed)", shown="random"),
        *cli.device_flags(),
        cli.Flag("initialize", bool, False,
                 "build everything and write config.json, then exit without training"),
        cli.Flag("info", bool, False, "print the resolved config before training"),
        cli.Flag("list-presets", bool, False, "print every preset with its description and exit"),
    ),
    overrides="config",
    notes="""Any other --a/b/c=value is a config override, applied after the presets in the
order given: the path walks the config (dict keys, list indices, '*' appends to a list) and the
value is a Python literal (3, 0.1, [20], {'type': 'list', 'values': [1, 2]}, true, None);
other text stays a string. A value must be of the kind of the one it replaces (true/false,
a whole number, a number, text, a list, a dict; the strategy's schedules also take a number,
a list or a dict; a None takes anything). Examples:
  --strategy/num_periods=5   --training/teachers/*={'class_name': 'SGD', 'config': {}}
  --policy/perturbation/config/step_size=0.01   (after a perturbation preset such as fgsm)""",
)


def list_presets():
    from l2o.config import list_presets as presets

    table = presets()
    width = max(len(name) for name in table)
    for name, description in table.items():
        print(f"{name:<{width}}  {description}")


def resolve_config(args, overrides):
    """The full config of this run, checked as far as possible without TensorFlow."""
    from l2o.config import apply_presets, default_config

    config = default_config(args.strategy, args.policy)
    config = apply_presets(config, args.presets)
    config = cli.apply_cli_overrides(config, overrides, SCRIPT)
    if args.seed is not None:
        if args.seed < 0:
            raise cli.UsageError(f"--seed must be a whole number >= 0, got {args.seed}")
        config["strategy"]["seed"] = args.seed
    cli.check_strategy_settings(config)
    return config


def check_directory(directory, config):
    """A folder holding a different config.json is an error (and is left untouched)."""
    from l2o.results import Experiment

    experiment = Experiment(directory)
    if experiment.config_path.exists():
        experiment.write_or_check_config(config, strict=True)  # an existing file is only read
    elif experiment.directory.exists() and not experiment.directory.is_dir():
        raise cli.UsageError(f"--directory={directory} is a file, not a folder")


def main(argv):
    if SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, _, overrides = SCRIPT.parse(argv)
    if args.list_presets:
        list_presets()
        return 0
    cli.check_device_flags(args)
    config = resolve_config(args, overrides)
    check_directory(args.directory, config)

    # Everything is built and trained inside the strategy's scope: with several devices each
    # replica meta-trains on its own optimizee, meta-gradients are summed across replicas;
    # with several workers only the chief writes --directory (see cli.train_on_workers).
    strategy = cli.create_devices(args)
    from l2o.strategy import build

    cli.train_on_workers(
        strategy, args.directory,
        lambda folder: build(config, (), directory=folder, strict=True, info=args.info),
        initialize=args.initialize)
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
