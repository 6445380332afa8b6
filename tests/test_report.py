"""python -m l2o.report and the grid search: one table of ours, teachers and tuned Adam."""

import os

import numpy as np
import pandas as pd
import pytest

import l2o
from l2o import report
from l2o.evaluate.gridsearch import grid_path, grid_search
from l2o.policies import build_policy
from l2o.results import read_evaluation_settings

QUICK = ["--problems=mlp_train", "--seeds=1", "--epochs=1", "--grid=0.003,0.03"]


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    # an "ours" folder in the shipped layout: an exported Adam rule is enough to be loaded
    l2o.export(build_policy("AdamOptimizer", {"learning_rate": 0.01, "trainable": True}),
               str(root / "ours" / "min-max" / "1"))
    out = root / "out"
    argv = QUICK + [f"--ours={root / 'ours'}", f"--paper={root / 'absent'}", f"--out={out}"]
    with pytest.raises(SystemExit) as done:
        report.main(argv)
    assert done.value.code == 0
    return root, out, argv


def test_report_writes_the_table_csv_and_figure(reported):
    _, out, _ = reported
    table = pd.read_csv(out / "report.csv")
    assert list(table["group"]) == ["ours"] + ["teacher"] * 6 + ["grid"]
    adam = table[table["label"] == "adam (lr 0.005)"].iloc[0]
    assert adam["vs_adam"] == pytest.approx(1.0)
    grid = table[table["group"] == "grid"].iloc[0]
    assert grid["vs_tuned_adam"] == pytest.approx(1.0)
    assert np.allclose(table["final_train"] / adam["final_train"], table["vs_adam"])
    text = (out / "report.md").read_text()
    assert "mlp_train on mnist_5k, 1 epochs, batch 128, seeds 0-0" in text
    assert "| min-max/1 | ours |" in text
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_reuses_its_cache_and_records_settings(reported):
    root, out, argv = reported
    cached = sorted((out / "runs").rglob("*.npz"))
    assert len(cached) == 9  # 1 ours + 6 teachers + 2 grid points
    settings = read_evaluation_settings(out / "runs" / "mlp_train" / "ours-min-max_1.npz")
    assert (settings["epochs"], settings["warmup"], settings["seed"]) == (1, 0, 0)
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    with pytest.raises(SystemExit):
        report.main(argv)
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps


def test_grid_search_layout_is_what_the_plot_loader_reads(reported, tmp_path):
    from l2o.plot import load_gridsearch

    best, table = grid_search(tmp_path, "sgd", "quadratic10", grid=(0.001, 0.1), repeat=1,
                              seed=0, log=None)
    assert set(table) == {0.001, 0.1}
    assert os.path.exists(grid_path(tmp_path, "sgd", "quadratic10", 0.1))
    loaded = load_gridsearch(tmp_path, "sgd", "quadratic10", 0.1)
    np.testing.assert_allclose(loaded["loss"], table[0.1]["loss"])
    finals = {lr: float(np.mean(r["loss"][:, -1])) for lr, r in table.items()}
    finals = {lr: v for lr, v in finals.items() if np.isfinite(v)}
    assert best == min(finals, key=finals.get)


def test_cache_is_keyed_by_the_weights_not_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ours" / "min-max" / "1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"settings": {"warmup": 0}}')
    (folder / "weights.index").write_bytes(b"index")
    (folder / "weights.data-00000-of-00001").write_bytes(b"weights, first training")
    fits = []

    def fake_run_repeats(make, spec, repeat, seed=None, progress=True):
        fits.append(make())
        return {"loss": np.full((repeat, 2), float(len(fits)), np.float32)}

    monkeypatch.setattr("l2o.evaluate.run_repeats", fake_run_repeats)
    monkeypatch.setattr(l2o, "load", lambda path: object())  # no warmup attribute: 0
    spec = {"dataset": "mnist_5k", "epochs": 1, "batch_size": 128}
    cache = tmp_path / "runs"

    def fit():
        [entry] = report.learned_entries(str(tmp_path / "ours"), "ours")
        return report.run_entry(entry, "mlp_train", spec, 1, 0, str(cache))

    fit()
    assert len(fits) == 1
    again, _ = fit()  # same folder, same weights: the cached fit
    assert len(fits) == 1 and float(again["loss"][0, 0]) == 1.0
    # retrained (or renumbered) into the same folder: fitted again, the cache replaced
    (folder / "weights.data-00000-of-00001").write_bytes(b"weights, second training")
    retrained, _ = fit()
    assert len(fits) == 2 and float(retrained["loss"][0, 0]) == 2.0
    (folder / "config.json").write_text('{"settings": {"warmup": 100}}')
    fit()
    assert len(fits) == 3
    assert read_evaluation_settings(cache / "mlp_train" / "ours-min-max_1.npz")["sha256"] == \
        report.folder_fingerprint(str(folder))


@pytest.mark.parametrize("argument", ["--ours-replicates=one", "--seeds=0", "--grid=fast"])
def test_bad_argument_values_are_one_line_and_exit_2(argument, capfd):
    with pytest.raises(SystemExit) as done:
        report.main([argument])
    assert done.value.code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: argument {argument.split('=')[0]}")
