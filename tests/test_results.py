"""The experiment folder (paths, atomic writes, config.json, summary.csv, logs) and devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from l2o import results
from l2o.config import default_config
from l2o.errors import L2OError
from l2o.results import Experiment, atomic_savez, atomic_write_json, base_name

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder):
    """Every file under folder with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# -- names and paths -----------------------------------------------------------------------


@pytest.mark.parametrize("metadata,name", [
    ({"period": 4}, "period_4"),
    ({"period": 4.0, "repeat": 0.0}, "period_4.0"),
    ({"stage": 3.0, "period": 7.0, "repeat": 0.0}, "stage_3.7.0"),
    ({"stage": np.int64(1), "period": np.float64(2), "repeat": 1}, "stage_1.2.1"),
])
def test_base_names(metadata, name):
    assert base_name(metadata) == name


def test_base_name_rejects_incomplete_metadata():
    with pytest.raises(L2OError) as err:
        base_name({"stage": 1})
    assert "{stage, period, repeat}" in str(err.value)


def test_experiment_paths(tmp_path):
    exp = Experiment(tmp_path / "x")
    meta = {"stage": 1, "period": 2, "repeat": 0}
    assert exp.config_path == tmp_path / "x" / "config.json"
    assert exp.summary_path == tmp_path / "x" / "summary.csv"
    assert exp.checkpoint_prefix(meta) == str(tmp_path / "x" / "checkpoint" / "stage_1.2.0")
    assert exp.log_path({"period": 3}) == tmp_path / "x" / "log" / "period_3.npz"
    assert exp.eval_path("conv_train", meta) == (
        tmp_path / "x" / "eval" / "conv_train" / "stage_1.2.0.npz")
    assert exp.eval_path("conv_train", meta, suffix="lr", debug=True).parent.name == (
        "conv_train_lr_dbg")
    assert not exp.has_checkpoint(meta)


# -- atomic writes -------------------------------------------------------------------------


def test_atomic_writes_leave_only_the_target(tmp_path):
    atomic_write_json(tmp_path / "a" / "c.json", {"x": [1, 2]})
    atomic_savez(tmp_path / "a" / "l.npz", meta_loss=np.zeros((1, 3), np.float32))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["c.json", "l.npz"]
    assert json.loads((tmp_path / "a" / "c.json").read_text()) == {"x": [1, 2]}
    assert np.load(tmp_path / "a" / "l.npz")["meta_loss"].shape == (1, 3)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.csv"
    results.atomic_write_text(target, "old\n")

    def half_then_crash(file):
        file.write(b"new partial")
        raise KeyboardInterrupt  # killed mid-way

    with pytest.raises(KeyboardInterrupt):
        results._atomic_write(target, half_then_crash)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]

    def no_rename(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(results.os, "replace", no_rename)
    with pytest.raises(OSError):
        results.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


# -- config.json ---------------------------------------------------------------------------


def test_config_written_once_then_checked(tmp_path):
    exp = Experiment(tmp_path / "run")
    config = default_config("curriculum")
    assert exp.write_or_check_config(config) == []
    text = exp.config_path.read_text()
    assert text.startswith('{\n    "training": {')
    same = json.loads(text)
    same["strategy"]["warmup_rate"] = 0.05  # same value, float
    same["strategy"]["epochs"] = 10.0        # int vs float of equal value: still the same
    assert exp.write_or_check_config(same) == []
    assert exp.config_path.read_text() == text


def test_config_mismatch_raises_and_leaves_the_folder_untouched(tmp_path):
    exp = Experiment(tmp_path / "run")
    config = default_config()
    exp.write_or_check_config(config)
    exp.append_summary(summary_row(0), ["period", "repeat"], ["meta_loss"])
    before = snapshot(exp.directory)
    changed = default_config()
    changed["training"]["loss_reduce"] = "reduce_mean"
    changed["strategy"]["epochs"] = 3
    del changed["policy"]["alpha"]
    with pytest.raises(L2OError) as err:
        exp.write_or_check_config(changed)
    text = str(err.value)
    assert "\n" not in text
    assert "holds a different config.json" in text and "use another --directory" in text
    assert "training/loss_reduce (saved 'reduce_max', now 'reduce_mean')" in text
    assert "strategy/epochs" in text and "policy/alpha" in text
    assert snapshot(exp.directory) == before
    # Without strict the differences are only reported.
    assert len(exp.write_or_check_config(changed, strict=False)) == 3
    assert snapshot(exp.directory) == before


def test_unsaveable_config_creates_nothing(tmp_path):
    exp = Experiment(tmp_path / "run")
    with pytest.raises(L2OError) as err:
        exp.write_or_check_config({"training": {"fn": object()}})
    assert "JSON" in str(err.value)
    assert not exp.directory.exists()


# -- summary.csv and logs ------------------------------------------------------------------


def summary_row(period, validation=-1.5):
    return {"meta_loss": np.float32(-1.0), "depth": 2, "validation": validation,
            "time": 1.7e9, "duration": 3.5, "period": period, "repeat": 0, "warmup": 1,
            "warmup_rate": 0.05, "p_teacher": 0.2, "unroll_len": 100, "epochs": 10,
            "imitation_loss": 0.5}


def test_summary_columns_types_and_order(tmp_path):
    exp = Experiment(tmp_path / "run", ["period", "repeat"], ["meta_loss", "imitation_loss"])
    empty = exp.read_summary()
    expected = ["validation", "time", "duration", "period", "repeat", "warmup",
                "warmup_rate", "p_teacher", "depth", "unroll_len", "epochs", "meta_loss",
                "imitation_loss"]
    assert list(empty.columns) == expected and len(empty) == 0
    assert str(empty["period"].dtype) == "int64"
    exp.append_summary(summary_row(0))
    frame = exp.append_summary(summary_row(1, validation=float("nan")))
    assert list(frame.columns) == expected
    header = exp.summary_path.read_text().splitlines()[0]
    assert header == ",".join(expected)
    again = exp.read_summary()
    assert len(again) == 2 and again["period"].tolist() == [0, 1]
    assert str(again["depth"].dtype) == "int64" and str(again["meta_loss"].dtype) == "float64"
    assert np.isnan(again["validation"].iloc[1])
    assert [p.name for p in exp.directory.iterdir()] == ["summary.csv"]


def test_summary_row_missing_a_column(tmp_path):
    exp = Experiment(tmp_path / "run", ["stage", "period", "repeat"], ["meta_loss"])
    with pytest.raises(L2OError) as err:
        exp.append_summary(summary_row(0))
    assert "stage" in str(err.value)
    assert not exp.summary_path.exists()


def test_write_log(tmp_path):
    exp = Experiment(tmp_path / "run")
    meta = {"period": 2, "repeat": 1}
    path = exp.write_log(meta, {"meta_loss": np.ones((1, 4), np.float32),
                                "teacher_counts": np.zeros((1, 4, 2), np.int32)})
    assert path == tmp_path / "run" / "log" / "period_2.1.npz"
    with np.load(path) as data:
        assert data["meta_loss"].dtype == np.float32 and data["teacher_counts"].shape == (1, 4, 2)
    assert exp.write_log({"period": 3, "repeat": 0}, {}) is None


# -- devices -------------------------------------------------------------------------------


def run_python(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_missing_gpu_index_is_one_clear_error():
    done = run_python(
        "from l2o.devices import create_strategy\n"
        "from l2o.errors import L2OError\n"
        "try:\n    create_strategy(gpus='3')\n"
        "except L2OError as e:\n    print('ERR', e)\n"
        "s = create_strategy(cpu=True)\n"
        "print('OK', type(s).__name__, s.num_replicas_in_sync)\n"
        "from l2o.devices import list_gpus\nprint('GPUS', list_gpus())\n"
        "import tensorflow as tf\ntf.constant(1.0) + 1.0\n"  # the runtime is now initialised
        "try:\n    create_strategy(vgpu=3)\n"
        "except L2OError as e:\n    print('LATE', e)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "ERR --gpus=3: no GPU with index 3; valid: none: no GPU visible" in lines
    assert "OK OneDeviceStrategy 1" in lines and "GPUS []" in lines
    assert any(line.startswith("LATE devices must be configured before TensorFlow runs")
               for line in lines), done.stdout


def test_virtual_cpus_give_a_mirrored_strategy():
    done = run_python(
        "from l2o.devices import create_strategy\n"
        "s = create_strategy(vgpu=2)\n"
        "print('OK', type(s).__name__, s.num_replicas_in_sync)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK MirroredStrategy 2" in done.stdout.splitlines()
