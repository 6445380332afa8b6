"""Build a strategy from a config, rebuild one from its folder, package its result.

``build`` checks everything it can (strategy settings, policy, teachers, problems and the
meta trainer) before it writes anything, so a typo never leaves a half-made experiment
folder, and a config that differs from the folder's config.json (strict mode) leaves the
folder exactly as it was.
"""

import copy
import json
import os

from l2o.config.overrides import apply_overrides
from l2o.errors import L2OError
from l2o.results import Experiment, read_config
from l2o.strategy.base import get_strategy_class, teacher_scores

CONFIG_KEYS = ("training", "optimizer", "problems", "strategy_constructor", "strategy",
               "policy_constructor", "policy")


def _train_api():
    """``(MetaTrainer, build_teacher)``, imported late so evaluation never needs them."""
    from l2o.train import MetaTrainer, build_teacher

    return MetaTrainer, build_teacher


def _check_shape(config):
    if not isinstance(config, dict):
        raise L2OError(f"a config is a dict with the keys {', '.join(CONFIG_KEYS)}")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise L2OError(f"the config lacks {', '.join(missing)}; a config has the keys "
                       f"{', '.join(CONFIG_KEYS)}")
    extra = sorted(set(config) - set(CONFIG_KEYS))
    if extra:
        raise L2OError(f"unknown config key(s) {', '.join(extra)}; valid: "
                       f"{', '.join(CONFIG_KEYS)}")
    for key in ("training", "strategy", "policy"):
        if not isinstance(config[key], dict):
            raise L2OError(f"config '{key}' must be a dict, got {config[key]!r}")
    if not isinstance(config["problems"], list) or not config["problems"]:
        raise L2OError(f"config 'problems' must be a non-empty list, got {config['problems']!r}")


def _build_policy(config, debug):
    from l2o.policies.base import build_policy

    return build_policy(config["policy_constructor"], config["policy"], debug=debug)


def _build_problems(specs, what):
    from l2o.problems import build_problem

    if not isinstance(specs, list) or not specs:
        raise L2OError(f"{what} must be a non-empty list of problem specs, got {specs!r}")
    return [build_problem(spec) for spec in specs]


def build(config, overrides=(), exempt_overrides=(), directory="weights", strict=True,
          info=True, debug=False):
    """The strategy of ``config`` (after ``overrides``), ready to ``train()``.

    ``<directory>/config.json`` is written on the first build and compared on later ones:
    with ``strict`` a difference raises one L2OError listing the differing keys; otherwise
    they are printed. ``exempt_overrides`` are applied after that check and never saved.
    """
    checked = apply_overrides(config, overrides)
    final = apply_overrides(checked, exempt_overrides)
    _check_shape(checked)
    _check_shape(final)

    # Everything is constructed before the folder is touched.
    cls = get_strategy_class(final["strategy_constructor"])
    settings = cls.check_settings(copy.deepcopy(final["strategy"]))
    if settings["seed"] is not None:  # the initial policy weights (the ops: Strategy.train)
        import keras

        keras.utils.set_random_seed(settings["seed"])
    policy = _build_policy(final, debug)
    MetaTrainer, build_teacher = _train_api()
    training = dict(final["training"])
    teacher_specs = training.pop("teachers", [])
    if not isinstance(teacher_specs, list):
        raise L2OError(f"training/teachers must be a list, got {teacher_specs!r}")
    teachers = [build_teacher(spec) for spec in teacher_specs]
    problems = _build_problems(final["problems"], "config 'problems'")
    if settings["validation_problems"] is not None:
        settings["validation_problems"] = _build_problems(
            settings["validation_problems"], "strategy/validation_problems")
    try:
        trainer = MetaTrainer(policy, final["optimizer"], teachers=teachers, **training)
    except TypeError as err:
        raise L2OError(f"bad training settings: {err}") from None

    experiment = Experiment(directory)
    differences = experiment.write_or_check_config(checked, strict=strict)
    for line in differences:
        print(f"warning: config differs from {experiment.config_path}: {line}", flush=True)
    if info:
        print(json.dumps(final, indent=4), flush=True)
    return cls(trainer, problems, directory=directory, **settings)


def build_from_config(directory, overrides=(), info=True, debug=False, for_evaluation=False):
    """Rebuild the strategy of an existing experiment folder from its config.json.

    ``overrides`` are exempt (applied, not checked, not saved). With ``for_evaluation`` only
    the policy and an evaluation-only strategy are built: no teachers, no meta trainer, and
    no training dataset is loaded until something asks for the problems.
    """
    config = read_config(directory)
    if not for_evaluation:
        return build(config, (), exempt_overrides=overrides, directory=directory, strict=False,
                     info=info, debug=debug)
    final = apply_overrides(config, overrides)
    _check_shape(final)
    cls = get_strategy_class(final["strategy_constructor"])
    settings = cls.check_settings(copy.deepcopy(final["strategy"]))
    policy = _build_policy(final, debug)
    if info:
        print(json.dumps(final, indent=4), flush=True)
    return cls(None, final["problems"], directory=directory, policy=policy, lazy_problems=True,
               **settings)


def package(src, dst, command=None):
    """Export the default checkpoint of the experiment ``src`` as an optimizer folder ``dst``.

    ``dst`` (which must not exist) gets the policy weights, its config and the evaluation
    warmup in iterations, plus the source folder, the chosen checkpoint and the source
    config; ``l2o.load(dst)`` returns the optimizer. ``record.json`` beside them says how it
    was made (:func:`training_record`; ``command`` is the train.py command line, if known).
    """
    from l2o.results import atomic_write_json
    from l2o.saving import export, restore_policy

    if os.path.exists(dst):
        raise L2OError(f"{dst} already exists; choose a new destination")
    strategy = build_from_config(src, info=False, for_evaluation=True)
    metadata = strategy.default_metadata()
    restore_policy(strategy.policy, strategy.experiment.checkpoint_prefix(metadata))
    settings = strategy.evaluation_settings()
    record = training_record(strategy, metadata, command)
    export(strategy.policy, dst, warmup=settings["warmup"], warmup_rate=settings["warmup_rate"],
           extra={"source": str(src), "metadata": metadata, "config": read_config(src)})
    atomic_write_json(os.path.join(dst, "record.json"), record)
    return dst


def training_record(strategy, metadata, command=None):
    """How an experiment was made: command, commit, wall time, hardware, final validation.

    The validation figures are those of the packaged checkpoint's summary.csv row: the
    learner's meta-loss and, when logged, each teacher's on the same unrolls (lower is
    better); ``meta_updates`` counts the rows' training unrolls (lifetimes x depth).
    """
    import platform
    import subprocess

    summary = strategy.summary
    row = summary
    for key, value in metadata.items():
        row = row[row[key] == value]
    row = row.iloc[-1]
    teachers = teacher_scores(row)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, cwd=os.path.dirname(os.path.abspath(__file__))
                                ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        import tensorflow as tf
        tf_version = tf.__version__
    except ImportError:
        tf_version = None
    return {
        "command": command,
        "commit": commit,
        "source": str(strategy.directory),
        "checkpoint": os.path.basename(strategy.experiment.checkpoint_prefix(metadata)),
        "periods": int(len(summary)),
        # False: stopped (time budget, crash) before the schedule's end; the packaged
        # checkpoint is the best one so far
        "finished": bool(strategy.finished),
        "meta_updates": int((summary["epochs"] * summary["depth"]).sum()),
        "wall_time_minutes": round(float(summary["duration"].sum()) / 60, 1),
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or None,
                     "cpu_count": os.cpu_count(), "system": platform.system(),
                     "tensorflow": tf_version},
        "final_validation": {"learner": float(row["validation"]), "teachers": teachers},
    }
