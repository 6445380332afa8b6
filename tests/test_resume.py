"""A seeded training process killed at any moment resumes to exactly the uninterrupted run,
also when the policy draws random numbers (Gaussian weight noise and input noise)."""

import os
import signal
import subprocess
import sys
import time

import shutil

import numpy as np
import pandas as pd
import pytest

from l2o.saving import read_network_weights
from l2o.results import base_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


PERIODS = 6  # a few seconds each: enough that a kill after the first lands mid-run


#: The plain recipe draws no random numbers in its steps; the noisy one draws at every
#: weight read (gaussian) and every input (inoise_1e-2), in training and in validation.
RECIPES = {"plain": "conv_train,adam,rmsprop,offline,debug_tiny",
           "noisy": "conv_train,adam,rmsprop,offline,debug_tiny,gaussian,inoise_1e-2"}


def _command(directory, recipe="plain"):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--strategy=repeat",
            "--policy=rnnprop", f"--presets={RECIPES[recipe]}",
            f"--strategy/num_periods={PERIODS}", "--strategy/epochs=2", "--seed=7",
            f"--directory={directory}"]


ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run of each recipe, run once: ``uninterrupted(recipe)``."""
    runs = {}

    def run(recipe="plain"):
        if recipe not in runs:
            directory = str(tmp_path_factory.mktemp("resume") / recipe)
            done = subprocess.run(_command(directory, recipe), env=ENV, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
            runs[recipe] = directory
        return runs[recipe]
    return run


def assert_same_run(directory, reference):
    """Exactly the summary rows and values and the checkpoints of ``reference``."""
    got, want = (pd.read_csv(os.path.join(d, "summary.csv")) for d in (directory, reference))
    wall_clock = ("time", "duration", "step_ms", "validation_step_ms", "validation_duration")
    columns = [c for c in want.columns if c not in wall_clock]
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    np.testing.assert_array_equal(got[columns].to_numpy(float), want[columns].to_numpy(float))
    for _, row in want.iterrows():
        base = base_name({"period": row["period"], "repeat": row["repeat"]})
        a, b = (read_network_weights(os.path.join(d, "checkpoint", base))
                for d in (directory, reference))
        assert all(np.array_equal(a[k], b[k]) for k in b), base


def _rows(directory):
    path = os.path.join(directory, "summary.csv")
    return len(pd.read_csv(path)) if os.path.exists(path) else 0


@pytest.mark.parametrize("recipe", ["plain"])  # the noisy recipe: the truncation test below
def test_sigkill_mid_period_then_resume(tmp_path, uninterrupted, recipe):
    directory = str(tmp_path / "results" / "rnnprop" / "resume" / "1")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(_command(directory, recipe), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while _rows(directory) < 1 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert _rows(directory) >= 1, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.5)  # into the next period
        assert proc.poll() is None, "training finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = _rows(directory)
    assert 1 <= done_before < PERIODS

    rerun = subprocess.run(_command(directory, recipe), env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Resuming" in rerun.stdout

    summary = pd.read_csv(os.path.join(directory, "summary.csv"))
    # one row per completed (period, repeat), nothing duplicated, every period done
    assert not summary.duplicated(["period", "repeat"]).any()
    assert sorted(set(summary["period"].astype(int))) == list(range(PERIODS))
    assert len(summary) >= done_before + (PERIODS - summary.loc[:done_before - 1, "period"].nunique())
    for _, row in summary.iterrows():
        prefix = os.path.join(directory, "checkpoint",
                              base_name({"period": row["period"], "repeat": row["repeat"]}))
        weights = read_network_weights(prefix)
        assert "recurrent/0/kernel" in weights
        assert all(np.all(np.isfinite(w)) for w in weights.values()), prefix
    # the rerun finished every write it started: no temporary file is left anywhere
    leftovers = [os.path.join(root, f) for root, _, files in os.walk(directory)
                 for f in files if ".tmp" in f]
    assert leftovers == []
    assert_same_run(directory, uninterrupted(recipe))


# After the first period the SIGKILL test above resumes; these resume later, mid-run.
@pytest.mark.parametrize("recipe, rows", [("plain", 3), ("noisy", 3)])
def test_resume_after_any_committed_period_matches_the_uninterrupted_run(tmp_path,
                                                                          uninterrupted,
                                                                          recipe, rows):
    """A kill between two commit points leaves the folder as it was at the first of them."""
    directory = str(tmp_path / "killed")
    shutil.copytree(uninterrupted(recipe), directory)
    summary = pd.read_csv(os.path.join(directory, "summary.csv"))
    for _, row in summary.iloc[rows:].iterrows():
        base = base_name({"period": row["period"], "repeat": row["repeat"]})
        for folder, suffixes in (("checkpoint", (".index", ".data-00000-of-00001")),
                                 ("log", (".npz",))):
            for suffix in suffixes:
                os.remove(os.path.join(directory, folder, base + suffix))
    summary.iloc[:rows].to_csv(os.path.join(directory, "summary.csv"), index=False)
    rerun = subprocess.run(_command(directory, recipe), env=ENV, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_same_run(directory, uninterrupted(recipe))
