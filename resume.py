"""Resume (or finish) training an experiment folder from its own config.json.

    python resume.py results/rnnprop/min-max/1

The same as running train.py again with the original arguments, without having to repeat them,
on one machine or several (TF_CONFIG, SLURM: only the chief writes the folder).
"""

from l2o import cli

SCRIPT = cli.Script(
    "resume.py",
    "Continue training the experiment in <directory> from its last finished period, with the "
    "settings saved in its config.json.",
    (
        *cli.device_flags(),
        cli.Flag("info", bool, False, "print the config before training"),
    ),
    positionals=(("directory", "the experiment folder (it holds config.json)"),),
)


def main(argv):
    if SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, positionals, _ = SCRIPT.parse(argv)
    cli.check_device_flags(args)
    directory = positionals[0]
    from l2o.strategy import read_config

    cli.check_strategy_settings(read_config(directory))

    strategy = cli.create_devices(args)
    from l2o.strategy import build_from_config

    # as train.py: in the strategy's scope; with several workers only the chief writes
    cli.train_on_workers(strategy, directory,
                         lambda folder: build_from_config(folder, info=args.info))
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
