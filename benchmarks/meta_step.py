"""Cost of meta-training relative to plain training, and tracing time, in one run.

Prints, for the conv_train optimizee (batch 128) on the offline MNIST sample:
- (time per inner step of meta-training RNNProp: unroll 20, second order, min-max with
  Adam + RMSProp teachers) / (time of one plain Adam training step of the same network);
- the same ratio without teachers (meta loss only);
- the tracing time of the compiled meta step for unroll lengths 20 and 100 (first call
  minus second call of the same shape).

    python benchmarks/meta_step.py [--unroll=20] [--repeats=3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from l2o.config.defaults import default_config  # noqa: E402
from l2o.policies import build_policy  # noqa: E402
from l2o.problems import build_problem  # noqa: E402
from l2o.train import MetaTrainer  # noqa: E402

CONV_TRAIN = {"target": "conv_classifier", "args": [], "kwargs": {
    "layers": [[16, 3, 1], 2, [32, 5, 1], 2], "head_type": "dense", "activation": "relu",
    "dataset": "mnist_5k", "batch_size": 128}}
TEACHERS = [{"class_name": "Adam", "config": {"learning_rate": 0.005, "beta_1": 0.9,
                                              "beta_2": 0.999, "epsilon": 1e-10}},
            {"class_name": "RMSProp", "config": {"learning_rate": 0.005, "rho": 0.9,
                                                 "epsilon": 1e-10}}]


def make_trainer(teachers):
    config = default_config("curriculum", "rnnprop")
    training = dict(config["training"], teachers=teachers)
    policy = build_policy(config["policy_constructor"], config["policy"])
    return MetaTrainer(policy, config["optimizer"], **training)


def adam_step_time(problem, steps=60):
    model = problem.model
    model.compile(keras.optimizers.Adam(0.005, epsilon=1e-10), "sparse_categorical_crossentropy")
    x, y = problem.dataset.x[:128], problem.dataset.y[:128]
    model.train_on_batch(x, y)  # trace
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def meta_inner_step_time(trainer, problem, unroll, meta_steps=3):
    """Seconds per inner step of training unrolls (after the first, traced, one)."""
    start = time.perf_counter()
    trainer.train([problem], unroll, 0.2, epochs=1, depth=1, progress=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train([problem], unroll, 0.2, epochs=1, depth=meta_steps, progress=False)
    return (time.perf_counter() - start) / (meta_steps * unroll), first


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unroll", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problem = build_problem(CONV_TRAIN)

    trace = {}
    for unroll in (args.unroll, 100):
        trainer = make_trainer(TEACHERS)
        runs = []
        for _ in range(2):  # the first call traces, the second reuses the graph
            start = time.perf_counter()
            trainer.train([problem], unroll, 0.2, epochs=1, depth=1, progress=False)
            runs.append(time.perf_counter() - start)
        trace[unroll] = runs[0] - runs[1]

    with_teachers = make_trainer(TEACHERS)
    no_teachers = make_trainer([])
    ratios, ratios_solo, adam_ms, meta_ms = [], [], [], []
    meta_inner_step_time(with_teachers, problem, args.unroll, 1)
    meta_inner_step_time(no_teachers, problem, args.unroll, 1)
    for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
        adam = adam_step_time(problem)
        meta, _ = meta_inner_step_time(with_teachers, problem, args.unroll)
        solo, _ = meta_inner_step_time(no_teachers, problem, args.unroll)
        ratios.append(meta / adam)
        ratios_solo.append(solo / adam)
        adam_ms.append(adam * 1e3)
        meta_ms.append(meta * 1e3)
    print(f"plain Adam step (conv_train, batch 128):          {np.median(adam_ms):.1f} ms")
    print(f"meta-training inner step (unroll {args.unroll}, 2 teachers): {np.median(meta_ms):.1f} ms")
    print(f"ratio meta inner step / Adam step, min-max (2 teachers): {np.median(ratios):.2f}")
    print(f"ratio meta inner step / Adam step, no teachers:          {np.median(ratios_solo):.2f}")
    for unroll, seconds in trace.items():
        print(f"tracing time (first call - second call), unroll {unroll:>3}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
