"""Multi-worker meta-training: two train.py processes on 127.0.0.1 joined by TF_CONFIG.

Each worker is started with the same command (``--directory`` included), as on a cluster
with a shared filesystem; tf.distribute's MultiWorkerMirroredStrategy all-reduces the
meta-gradients, and only the chief (worker 0) writes the experiment folder.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import tensorflow as tf

from l2o.devices import loopback_tf_configs
from test_cli import REPO, load_script

RECIPE = ("--strategy=simple", "--policy=rnnprop", "--presets=conv_train,adam,offline,debug_tiny",
          "--seed=3")


def start_workers(directory, *args, cwd):
    """Two workers of one cluster running the same train.py command; their Popen objects."""
    workers = []
    for tf_config in loopback_tf_configs(2):
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config)
        env.pop("L2O_VERBOSE", None)
        workers.append(subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *RECIPE, *args, f"--directory={directory}"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return workers


def finish(workers, timeout=600):
    outputs = [w.communicate(timeout=timeout)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    return outputs


def test_two_workers_train_one_synchronised_run_written_by_the_chief(tmp_path):
    # one meta-step with SGD(1) and no clipping: the weight change is minus the meta-gradient
    directory = tmp_path / "run"
    chief, other = finish(start_workers(
        directory, "--strategy/num_periods=1",
        "--optimizer={'class_name': 'SGD', 'config': {'learning_rate': 1.0}}",
        "--training/gradient_clipping={'class_name': 'SimpleGC', 'config': {'clip_value': -1}}",
        cwd=tmp_path))

    # the workers agree to the last bit the chief reports, and only the chief wrote
    assert "All 2 workers hold the same policy weights" in chief
    difference = float(chief.split("largest difference ")[1].split(")")[0])
    assert difference < 1e-6
    copy = other.split("this worker's copy: ")[1].split(")")[0]
    assert str(directory) not in copy and not os.path.exists(copy)
    assert sorted(os.listdir(directory)) == ["checkpoint", "config.json", "log", "summary.csv"]
    assert len(pd.read_csv(directory / "summary.csv")) == 1

    from l2o.strategy import build, build_from_config
    from l2o.saving import restore_policy

    trained = build_from_config(str(directory), info=False, for_evaluation=True)
    restore_policy(trained.policy, str(directory / "checkpoint" / "period_0"))
    after = trained.policy.get_weights()

    # the same meta-step in this process, once on each worker's draws (worker r = replica r)
    config = json.loads((directory / "config.json").read_text())
    single = build(config, (), directory=str(tmp_path / "single"), info=False)
    metadata = single._next()
    period_seed = single._period_seed()
    start = single.policy.get_weights()
    grads = []
    for seed in (period_seed, (period_seed, 1)):
        single.policy.set_weights(start)
        single.trainer.train(single.problems, validation=False, seed=seed, progress=False,
                             **single.train_args(metadata))
        now = single.policy.get_weights()
        grads.append(np.concatenate([np.ravel(start[k] - now[k]) for k in sorted(start)]))
    together = np.concatenate([np.ravel(start[k] - after[k]) for k in sorted(start)])
    expected = grads[0] + grads[1]
    assert np.linalg.norm(together - expected) <= 1e-5 * np.linalg.norm(expected)
    assert np.linalg.norm(grads[0] - grads[1]) > 1e-3 * np.linalg.norm(expected)  # two draws


def test_a_lost_worker_stops_the_other_and_a_rerun_resumes(tmp_path):
    directory = tmp_path / "run"
    summary = directory / "summary.csv"
    workers = start_workers(directory, "--strategy/num_periods=6", cwd=tmp_path)
    deadline = time.time() + 400
    while not (summary.exists() and len(pd.read_csv(summary)) >= 1):
        assert time.time() < deadline and workers[0].poll() is None, "no period finished"
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGKILL)
    killed = time.time()
    out = workers[0].communicate(timeout=150)[0]
    assert time.time() - killed < 120
    assert workers[0].returncode != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: a worker of the cluster stopped") and "Traceback" not in out
    done = len(pd.read_csv(summary))
    assert 1 <= done < 6

    finish(start_workers(directory, "--strategy/num_periods=6", cwd=tmp_path))
    rows = pd.read_csv(summary)
    assert list(rows["period"]) == list(range(6))  # each period once, resumed after `done`
    for period in range(6):
        reader = tf.train.load_checkpoint(str(directory / "checkpoint" / f"period_{period}"))
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.all(np.isfinite(value)), name


def test_resume_py_takes_train_py_s_multi_worker_path(tmp_path, monkeypatch, capsys):
    # resume.py as a worker that is not the chief, in this process (the cluster is faked):
    # it trains in a private copy, leaves the shared folder to the chief, and makes the
    # agreement check, as train.py does (cli.train_on_workers)
    from l2o import devices
    from l2o.results import Experiment

    directory = tmp_path / "run"
    train = load_script("train.py")
    args, _, overrides = train.SCRIPT.parse([
        "--strategy=simple", "--presets=adam,offline,debug_tiny,lean_validation",
        "--strategy/num_periods=1"])
    Experiment(directory).write_or_check_config(train.resolve_config(args, overrides))
    agreed = []
    monkeypatch.setattr(devices, "is_chief", lambda strategy: False)
    monkeypatch.setattr(devices, "check_workers_agree",
                        lambda strategy, value, what: agreed.append((value, what)))

    assert load_script("resume.py").main([str(directory)]) == 0
    out = capsys.readouterr().out
    assert "this worker's copy: " in out, out
    copy = out.split("this worker's copy: ")[1].split(")")[0]
    assert str(directory) not in copy and not os.path.exists(copy)
    assert f"Saved training state: {copy}/checkpoint/period_0" in out  # it trained there
    assert os.listdir(directory) == ["config.json"]
    assert agreed == [(0, "the number of finished periods in summary.csv")]
