"""Meta-training throughput: one process against two workers on 127.0.0.1, in one run.

Runs the same train.py recipe (RNNProp on conv_train with an Adam teacher, offline sample)
once as a single process and once as two MultiWorkerMirroredStrategy workers joined by
TF_CONFIG on loopback, and prints inner optimizee steps per second (all replicas together,
training and validation included) from summary.csv, the first period (tracing) left out.

On one machine both workers share its cores, so this measures the cost of the collective
machinery, not a speed-up; on separate machines each worker brings its own cores.

    python benchmarks/multiworker.py [--periods=4] [--unroll=20]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from l2o.devices import loopback_tf_configs

ROOT = Path(__file__).resolve().parents[1]


def run(directory, workers, periods, unroll):
    command = [sys.executable, str(ROOT / "train.py"), "--strategy=simple", "--policy=rnnprop",
               "--presets=conv_train,adam,offline", f"--strategy/num_periods={periods}",
               f"--strategy/unroll_len={unroll}", "--strategy/depth=1", "--strategy/epochs=2",
               f"--strategy/validation_unroll={unroll}", "--strategy/validation_depth=1",
               "--strategy/validation_epochs=1", "--seed=0", f"--directory={directory}"]
    configs = loopback_tf_configs(workers) if workers > 1 else [None]
    processes = []
    for tf_config in configs:
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        if tf_config:
            env["TF_CONFIG"] = tf_config
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            sys.exit(f"train.py failed: {err.strip().splitlines()[-1:]}")
    rows = pd.read_csv(Path(directory) / "summary.csv").iloc[1:]
    # inner steps of one period: training (epochs x depth x unroll) + validation, per replica
    steps = (rows["epochs"] * rows["depth"] * rows["unroll_len"] + unroll) * workers
    return float(steps.sum() / rows["duration"].sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=4)
    parser.add_argument("--unroll", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(os.path.join(tmp, "one"), 1, args.periods, args.unroll)
        two = run(os.path.join(tmp, "two"), 2, args.periods, args.unroll)
    print(f"cores: {os.cpu_count()}, unroll {args.unroll}, {args.periods - 1} timed periods")
    print(f"1 process : {one:8.1f} inner steps/s")
    print(f"2 workers : {two:8.1f} inner steps/s (both on 127.0.0.1)  ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
