"""Score any policy on the validation unrolls of an experiment's config (lower is better).

    python -m l2o.score --directory=results/rnnprop/min-max/1 \\
        results/rnnprop/min-max/1 pre-trained/min-max/1 adam rmsprop:0.005

The score is the meta-loss that training validates with (mean over the validation unrolls of
``log f(theta_t) - log f(theta_0)``), on the config's validation problems, lifetimes, unroll
length, depth, warmup and seed, so it is the number summary.csv's ``validation`` column holds
for the learner and ``validation_<teacher>`` for its teachers. A policy is

- an experiment folder (its default checkpoint) or ``folder:<checkpoint>`` (``stage_0.2.0``);
- an optimizer folder: one of ours (``l2o.package``) or a paper release (``weights.index``);
- an analytical rule: ``adam``, ``rmsprop``, ``sgd``, ``momentum``, ``addsign``,
  ``powersign``, optionally with a learning rate, ``adam:0.005`` (default: the paper's).
"""

import os
import sys

import numpy as np

#: Rule name -> the baseline.py key whose class and paper learning rate it uses (the l2o
#: rules; ``momentum`` is the l2o Momentum rule, baseline ``momentum_custom``).
RULES = {"adam": "adam", "rmsprop": "rmsprop", "sgd": "sgd", "momentum": "momentum_custom",
         "addsign": "addsign", "powersign": "powersign"}


def build_scored_policy(text):
    """``(label, policy, is_rule)`` for a policy description (see the module doc)."""
    from l2o.errors import L2OError
    from l2o.evaluate.baselines import BASELINES
    from l2o.policies.base import build_policy

    name, _, option = text.partition(":")
    if name in RULES and not os.path.exists(text):
        baseline = BASELINES[RULES[name]]
        config = dict(baseline["config"])
        if option:
            try:
                config["learning_rate"] = float(option)
            except ValueError:
                raise L2OError(f"'{text}': the learning rate after ':' must be a number") from None
        cls = baseline["class_name"] + "Optimizer"
        return f"{name} (lr {config['learning_rate']:g})", build_policy(cls, config), True
    folder, checkpoint = (name, option) if option else (text, None)
    if os.path.exists(os.path.join(folder, "summary.csv")) or checkpoint:
        from l2o.results import base_name, default_checkpoint
        from l2o.saving import load_experiment_policy

        checkpoint = checkpoint or base_name(default_checkpoint(folder))
        return f"{folder} [{checkpoint}]", load_experiment_policy(folder, checkpoint), False
    if os.path.isdir(folder):
        from l2o.saving import load_policy

        return folder, load_policy(folder), False
    raise L2OError(f"cannot score '{text}': not an experiment folder, an optimizer folder or a "
                   f"rule ({', '.join(RULES)}, optionally rule:learning_rate)")


def score(config, policies, index=0, epochs=None, seed=None, progress=False):
    """``{label: {mean, std, settings}}`` of each ``(label, policy, is_rule)`` on ``config``.

    Learned policies are scored as the learner (mean and spread over the validation
    unrolls). Analytical rules are scored as teachers, exactly as summary.csv's
    ``validation_<teacher>`` columns (in the optimizee's true coordinates, beside a learner
    that never moves, so no learner can cut their unrolls short); their spread is not
    available (None). ``index`` is the schedule index whose validation settings are used (the
    curriculum stage, or the period of the simple and repeat strategies); ``epochs``
    replaces the number of validation lifetimes; ``seed`` the validation seed.
    """
    from l2o.strategy.base import get_strategy_class
    from l2o.train import MetaTrainer

    cls = get_strategy_class(config["strategy_constructor"])
    settings = cls.check_settings(dict(config["strategy"]))
    schedule = cls.__new__(cls)
    schedule._apply_settings(settings)
    args = dict(schedule.validation_args_at(int(index)), p_teacher=0.0)
    if epochs is not None:
        args["epochs"] = int(epochs)
    seed = settings["validation_seed"] if seed is None else int(seed)
    specs = settings["validation_problems"] or config["problems"]
    problems = cls._build_problems(specs)
    training = {k: v for k, v in config["training"].items()
                if k not in ("teachers", "step_callbacks", "stack_stats", "mean_stats",
                             "pbar_values")}
    out = {}
    rules = [(label, policy) for label, policy, is_rule in policies if is_rule]
    if rules:
        from l2o.policies.base import build_policy

        still = build_policy("SGDOptimizer", {"learning_rate": 0.0, "trainable": True})
        trainer = MetaTrainer(still, config["optimizer"], teachers=[p for _, p in rules],
                              **training)
        result = trainer.train(problems, validation=True, seed=seed, progress=progress, **args)
        for (label, _), value in zip(rules, result["mean"]["teacher_meta_loss"].values()):
            out[label] = {"mean": float(value), "std": None, "settings": args}
    for label, policy, is_rule in policies:
        if is_rule:
            continue
        trainer = MetaTrainer(policy, config["optimizer"], **training)
        result = trainer.train(problems, validation=True, seed=seed, progress=progress, **args)
        per_unroll = np.asarray(result["stack"]["meta_loss"], dtype=np.float64).ravel()
        out[label] = {"mean": float(np.mean(per_unroll)), "std": float(np.std(per_unroll)),
                      "settings": args}
    return out


def run(argv):
    from l2o.cli import ArgumentParser, whole_number

    parser = ArgumentParser(
        prog="python -m l2o.score",
        description="Score policies on the validation unrolls of an experiment's config "
                    "(meta-loss, lower is better).")
    parser.add_argument("policies", nargs="+",
                        help="experiment folder[:checkpoint], optimizer folder, or rule[:lr]")
    parser.add_argument("--directory", required=True,
                        help="experiment folder whose config.json gives the validation unrolls")
    parser.add_argument("--index", type=whole_number(0), default=0,
                        help="schedule index (curriculum stage) of the validation settings")
    parser.add_argument("--epochs", type=whole_number(1), default=None,
                        help="validation lifetimes (default: the config's)")
    parser.add_argument("--seed", type=whole_number(0), default=None,
                        help="validation seed (default: the config's validation_seed)")
    args = parser.parse_args(argv)

    from l2o.strategy import read_config

    config = read_config(args.directory)
    policies = [build_scored_policy(p) for p in args.policies]
    scores = score(config, policies, index=args.index, epochs=args.epochs, seed=args.seed)
    settings = next(iter(scores.values()))["settings"]
    print(f"Validation meta-loss on {args.directory}'s config (index {args.index}: "
          + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "p_teacher")
          + "); lower is better")
    for label, value in sorted(scores.items(), key=lambda kv: kv[1]["mean"]):
        spread = " (rule)  " if value["std"] is None else f" ± {value['std']:.4f}"
        print(f"  {value['mean']:8.4f}{spread}  {label}")
    return 0


def main(argv=None):
    from l2o.cli import main_wrapper

    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())
