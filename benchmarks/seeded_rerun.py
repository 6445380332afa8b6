"""Does a seeded train.py command give the same run twice, and the same run when it is killed
and resumed? At the CPU recipe's scale (100-step unrolls), not the tests' 5-step ones.

Runs one seeded command in two folders side by side (one intra-op thread each): ``A`` trains
its first ``--periods`` periods uninterrupted; ``B`` is killed as soon as its first period
is written, run again (it resumes from that period) and stopped after ``--periods``. Then
it compares the two folders: every summary.csv value but the wall-clock columns, and every
written checkpoint's policy weights, exactly. The default command is the stability
experiment's Gaussian arm (experiments/stability/run.sh), which draws weight noise in every
step:

    python benchmarks/seeded_rerun.py [--presets=...] [--seed=5] [--periods=2]

Prints each row's verdict and the largest weight difference; exits 1 if anything differs.
Measured 2026-12-02 (benchmarks/README.md): the same run, bit for bit, in 6 minutes beside
one other meta-training.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = "conv_train,adam,rmsprop,il_more,offline,cpu,gaussian"
WALL_CLOCK = ("time", "duration", "step_ms", "validation_step_ms", "validation_duration")


def rows(directory):
    path = os.path.join(directory, "summary.csv")
    return len(pd.read_csv(path)) if os.path.exists(path) else 0


def start(args, directory):
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--strategy=curriculum",
               "--policy=rnnprop", f"--presets={args.presets}", f"--seed={args.seed}",
               f"--directory={directory}"]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def run_until(args, targets):
    """Run every folder's command until the folder has its first target number of rows, then
    kill it; with further targets, start it again (it resumes) for the next, side by side."""
    began = time.perf_counter()
    processes = {directory: start(args, directory) for directory in targets}
    while processes:
        for directory, process in list(processes.items()):
            if rows(directory) >= targets[directory][0]:
                process.kill()
                process.wait()
                reached = targets[directory].pop(0)
                del processes[directory]
                if targets[directory]:
                    print(f"{directory}: killed after {reached} period(s), resuming "
                          f"({time.perf_counter() - began:.0f} s)", flush=True)
                    processes[directory] = start(args, directory)
            elif process.poll() is not None:
                raise SystemExit(f"{directory}: train.py exited ({process.returncode}) "
                                 f"before {targets[directory][0]} rows")
        time.sleep(2)


def compare(a, b, periods):
    from l2o.results import base_name
    from l2o.saving import read_network_weights

    got, want = (pd.read_csv(os.path.join(d, "summary.csv")).iloc[:periods] for d in (b, a))
    columns = [c for c in want.columns if c not in WALL_CLOCK]
    same = True
    for index, row in want.iterrows():
        values = np.array_equal(got.loc[index, columns].to_numpy(float),
                                row[columns].to_numpy(float), equal_nan=True)
        metadata = {k: int(row[k]) for k in ("stage", "period", "repeat")}
        base = base_name(metadata)
        wa, wb = (read_network_weights(os.path.join(d, "checkpoint", base)) for d in (a, b))
        diff = max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wa)
        print(f"{base}: summary values {'equal' if values else 'DIFFER'}, largest weight "
              f"difference {diff:.3g} (validation {float(row['validation'])!r} vs "
              f"{float(got.loc[index, 'validation'])!r})", flush=True)
        same = same and values and diff == 0
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=RECIPE)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--periods", type=int, default=2)
    parser.add_argument("--directory", default=None, help="where A and B go (a temp folder)")
    args = parser.parse_args()
    root = args.directory or tempfile.mkdtemp(prefix="seeded_rerun_")
    a, b = os.path.join(root, "A"), os.path.join(root, "B")
    began = time.perf_counter()
    run_until(args, {a: [args.periods], b: [1, args.periods]})
    print(f"{args.periods} periods each in {time.perf_counter() - began:.0f} s; comparing "
          f"{a} (uninterrupted) with {b} (killed and resumed)", flush=True)
    same = compare(a, b, args.periods)
    print("the same run, bit for bit" if same else "the runs differ")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
