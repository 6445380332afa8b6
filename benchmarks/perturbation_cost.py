"""Meta-step cost of each stability-aware perturbation relative to no perturbation.

conv_train optimizee (batch 128) on the offline MNIST sample, RNNProp learner with the
Adam + RMSProp teachers (min-max), one optimizee lifetime of ``--depth`` meta-steps of
``--unroll`` inner steps, timed after a first (tracing) call. An adversarial perturbation
with K attack steps runs K extra unrolls per meta-step, so PGD/CGD with K steps should cost
about K + 1 times as much; the Gaussian ones only add noise to every weight read.

    python benchmarks/perturbation_cost.py [--unroll=10] [--depth=3]
"""

import argparse
import copy
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from l2o.config import default_config, get_preset  # noqa: E402
from l2o.config.overrides import apply_overrides  # noqa: E402
from l2o.policies import build_policy  # noqa: E402
from l2o.problems import build_problem  # noqa: E402
from l2o.train import MetaTrainer  # noqa: E402

CASES = [("none", None, {}), ("fgsm", "fgsm", {}), ("pgd", "pgd", {}),
         ("pgd, steps=3", "pgd", {"steps": 3}), ("cgd", "cgd", {}),
         ("cgd, steps=3", "cgd", {"steps": 3}), ("gaussian", "gaussian", {}),
         ("gaussian_rel", "gaussian_rel", {})]


def trainer_for(preset, changes):
    config = default_config("curriculum", "rnnprop")
    for name in ("conv_train", "adam", "rmsprop", "offline"):
        config = apply_overrides(config, get_preset(name))
    if preset:
        config = apply_overrides(config, get_preset(preset))
        config["policy"]["perturbation"]["config"].update(changes)
    policy = build_policy(config["policy_constructor"], copy.deepcopy(config["policy"]))
    return MetaTrainer(policy, config["optimizer"], **config["training"]), config["problems"][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unroll", type=int, default=10)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    problem = None
    seconds = {}
    for label, preset, changes in CASES:
        trainer, spec = trainer_for(preset, changes)
        problem = problem or build_problem(spec)
        trainer.train([problem], args.unroll, 0.2, epochs=1, depth=1, progress=False)  # trace
        start = time.perf_counter()
        trainer.train([problem], args.unroll, 0.2, epochs=1, depth=args.depth, progress=False)
        seconds[label] = (time.perf_counter() - start) / args.depth
        attacks = trainer.policy.perturbation.adversarial_attack_steps
        print(f"{label:>14}: {seconds[label]:6.2f} s per meta-step "
              f"({attacks} attack step(s)), x{seconds[label] / seconds['none']:.2f}", flush=True)
    print("\n| perturbation | attack steps K | meta-step cost vs none |\n| - | - | - |")
    for label, preset, changes in CASES:
        trainer_k = changes.get("steps", 1 if preset in ("fgsm", "pgd", "cgd") else 0)
        print(f"| {label} | {trainer_k} | {seconds[label] / seconds['none']:.2f} |")


if __name__ == "__main__":
    main()
