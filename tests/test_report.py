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

QUICK = ["--problems=mlp_train", "--seeds=1", "--epochs=2,1", "--grid=0.003,0.03"]


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
    full = pd.read_csv(out / "report.csv")
    assert list(full["epochs"]) == [1] * 8 + [2] * 8  # one table per horizon, shortest first
    for epochs, table in full.groupby("epochs"):
        assert list(table["group"]) == ["ours"] + ["teacher"] * 6 + ["grid"]
        adam = table[table["label"] == "adam (lr 0.005)"].iloc[0]
        assert adam["vs_adam"] == pytest.approx(1.0)
        # Adam's wall-clock entry is its whole training time at this horizon
        assert adam["seconds_to_adam"] == adam["train_seconds"] > 0
        assert adam["epoch_reached"] == epochs
        grid = table[table["group"] == "grid"].iloc[0]
        assert grid["vs_tuned_adam"] == pytest.approx(1.0)
        assert np.allclose(table["final_train"] / adam["final_train"], table["vs_adam"])
    text = (out / "report.md").read_text()
    assert "### mlp_train, 1 epochs" in text and "### mlp_train, 2 epochs" in text
    assert ("mlp_train on mnist_5k, 1 epochs (the first 1 of each 2-epoch fit), batch 128, "
            "seeds 0-0") in text
    assert "mlp_train on mnist_5k, 2 epochs, batch 128, seeds 0-0" in text
    assert "| min-max/1 | ours |" in text
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_reuses_its_cache_and_records_settings(reported):
    root, out, argv = reported
    cached = sorted((out / "runs").rglob("*.npz"))
    assert len(cached) == 9  # 1 ours + 6 teachers + 2 grid points: one fit for both horizons
    settings = read_evaluation_settings(out / "runs" / "mlp_train" / "ours-min-max_1.npz")
    assert (settings["epochs"], settings["warmup"], settings["seed"]) == (2, 0, 0)
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
        return report.run_entry(entry, "mlp_train", spec, 1, 0, str(cache))[0]

    fit()
    assert len(fits) == 1
    again = fit()  # same folder, same weights: the cached fit
    assert len(fits) == 1 and float(again["loss"][0, 0]) == 1.0
    # retrained into the same folder: fitted again, the cache replaced
    (folder / "weights.data-00000-of-00001").write_bytes(b"weights, second training")
    retrained = fit()
    assert len(fits) == 2 and float(retrained["loss"][0, 0]) == 2.0
    (folder / "config.json").write_text('{"settings": {"warmup": 100}}')
    fit()
    assert len(fits) == 3
    first = cache / "mlp_train" / "ours-min-max_1.npz"
    assert read_evaluation_settings(first)["sha256"] == report.folder_fingerprint(str(folder))
    # renumbered (shipped best first): its weights' fit is reused under the new name
    folder = folder.rename(folder.parent / "2")
    renumbered = fit()
    assert len(fits) == 3 and float(renumbered["loss"][0, 0]) == 3.0
    second = read_evaluation_settings(cache / "mlp_train" / "ours-min-max_2.npz")
    assert second["source"] == str(folder)
    assert {k: v for k, v in second.items() if k != "source"} == \
        {k: v for k, v in read_evaluation_settings(first).items() if k != "source"}
    # other weights where the old ones were: a fit of their own
    (folder / "weights.data-00000-of-00001").write_bytes(b"weights, third training")
    assert float(fit()["loss"][0, 0]) == 4.0 and len(fits) == 4
    # rules have no weights to recognise: two with the same protocol are two fits
    for key in ("adam", "rmsprop"):
        rule = report.Entry(key, "teacher", object, f"baseline.py --optimizer={key}")
        report.run_entry(rule, "mlp_train", spec, 1, 0, str(cache))
    assert len(fits) == 6


@pytest.mark.parametrize("argument", ["--ours-replicates=one", "--seeds=0", "--grid=fast",
                                      "--epochs=0,10", "--epochs=ten"])
def test_bad_argument_values_are_one_line_and_exit_2(argument, capfd):
    with pytest.raises(SystemExit) as done:
        report.main([argument])
    assert done.value.code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: argument {argument.split('=')[0]}")


def test_short_horizon_figures_equal_a_direct_short_fit(reported):
    """The 1-epoch table is read from the report's 2-epoch fits: it must be what a 1-epoch
    fit gives (same seed, same data order, nothing depends on the number of epochs)."""
    from l2o.evaluate import get_eval_problem, make_baseline, run_repeats
    from l2o.plot.results import load_npz

    _, out, _ = reported
    [path] = (out / "runs" / "mlp_train").glob("teacher-adam_*.npz")
    longer = load_npz(path)
    spec = dict(get_eval_problem("mlp_train", dataset="mnist_5k"), epochs=1)
    direct = run_repeats(lambda: make_baseline("adam"), spec, 1, seed=0, progress=False)
    cut = report.at_horizon(longer, 1)
    for key in ("loss", "val_loss", "batch_loss", "sparse_categorical_accuracy"):
        np.testing.assert_array_equal(cut[key], direct[key], err_msg=key)
    assert cut["batch_time"].shape == direct["batch_time"].shape
    table = pd.read_csv(out / "report.csv")
    adam = table[(table["label"] == "adam (lr 0.005)") & (table["epochs"] == 1)].iloc[0]
    assert adam["final_train"] == pytest.approx(float(direct["loss"][0, -1]), rel=1e-6)
    assert adam["best_val"] == pytest.approx(float(direct["val_loss"][0, 0]), rel=1e-6)


def test_at_horizon_keeps_the_first_epochs_of_each_array():
    steps = 3  # per epoch
    results = {"loss": np.arange(8.0).reshape(2, 4),
               "batch_loss": np.arange(24.0).reshape(2, 12),
               "_choices_kernel": np.arange(48.0).reshape(2, 12, 2)}
    cut = report.at_horizon(results, 2)
    np.testing.assert_array_equal(cut["loss"], [[0, 1], [4, 5]])
    np.testing.assert_array_equal(cut["batch_loss"], results["batch_loss"][:, :2 * steps])
    np.testing.assert_array_equal(cut["_choices_kernel"],
                                  results["_choices_kernel"][:, :2 * steps])
    assert report.at_horizon(results, None) is results
    with pytest.raises(l2o.L2OError):
        report.at_horizon(results, 5)


def _timed(losses, step_seconds, steps=3, validation=10.0):
    """Hand-made fits: ``losses[seed]`` per epoch, every step of a seed lasting
    ``step_seconds[seed]``, each epoch followed by ``validation`` seconds of validation."""
    stamps = []
    for curve, step in zip(losses, step_seconds):
        clock, row = 0.0, []
        for _ in curve:
            for _ in range(steps):
                clock += step
                row.append(clock)
            clock += validation
        stamps.append(row)
    return {"loss": np.array(losses), "batch_time": np.array(stamps)}


# Mean over the two seeds per epoch: 1.25, 0.25, 0.625, 0.125 (exact in binary); training
# seconds to the end of epoch 1..4: seed 0 3, 6, 9, 12, seed 1 6, 12, 18, 24, mean 4.5 ... 18.
TIMED = _timed([[1.0, 0.25, 0.5, 0.125], [1.5, 0.25, 0.75, 0.125]], [1.0, 2.0])


def test_training_seconds_leave_out_validation():
    np.testing.assert_allclose(report.training_seconds(TIMED), [[3, 6, 9, 12], [6, 12, 18, 24]])


@pytest.mark.parametrize("target, seconds, epoch", [
    (0.25, 9.0, 2),    # reached (at, not below) at epoch 2, though epoch 3 is above again
    (0.2, 18.0, 4),    # only the last epoch
    (2.0, 4.5, 1),     # already the first epoch
    (0.1, None, None),  # never
])
def test_seconds_to_reach_is_the_first_epoch_at_or_below(target, seconds, epoch):
    got_seconds, got_epoch = report.seconds_to_reach(TIMED, target)
    assert got_epoch == epoch
    if seconds is None:
        assert np.isnan(got_seconds)
    else:
        assert got_seconds == pytest.approx(seconds)


def test_grid_best_and_ratios_are_per_horizon():
    def fit(curve):
        return _timed([curve], [1.0], steps=1, validation=0.0)

    grid = {0.001: fit([1.0, 0.5, 0.125]), 0.01: fit([0.75, 0.375, 0.25])}
    fits = [("adam (lr 0.005)", "teacher", 0, fit([0.875, 0.625, 0.25])),
            ("x/1", "ours", 0, fit([0.75, 0.125, 0.0625])),
            ("slow/1", "ours", 0, fit([1.0, 0.75, 0.5]))]
    expected = {2: (0.01, 0.375, 0.625, 2), 3: (0.001, 0.125, 0.25, 2)}
    for epochs, (best, tuned, adam, x_epoch) in expected.items():
        rows, best_lr = report.horizon_rows(fits, grid, epochs)
        assert best_lr == best
        by_label = {row["label"]: row for row in rows}
        assert f"Adam, grid-best lr {best:g}" in by_label
        x = by_label["x/1"]
        assert x["final_train"] == fits[1][3]["loss"][0, epochs - 1]
        assert x["vs_adam"] == pytest.approx(x["final_train"] / adam)
        assert x["vs_tuned_adam"] == pytest.approx(x["final_train"] / tuned)
        assert (x["epoch_reached"], x["seconds_to_adam"]) == (x_epoch, float(x_epoch))
        assert by_label["slow/1"]["epoch_reached"] is None
        assert by_label["adam (lr 0.005)"]["seconds_to_adam"] == float(epochs)
        assert all(row["epochs"] == epochs for row in rows)
        table = report.problem_table("p", rows, "protocol", epochs)
        assert "| x/1 | ours |" in table and "2.0 (epoch 2) |" in table
        assert "| slow/1 | ours |" in table and "not reached |" in table


def test_a_cache_of_another_length_is_fitted_again(tmp_path, monkeypatch):
    fits = []

    def fake_run_repeats(make, spec, repeat, seed=None, progress=True):
        fits.append(spec["epochs"])
        return {"loss": np.ones((repeat, spec["epochs"]), np.float32)}

    monkeypatch.setattr("l2o.evaluate.run_repeats", fake_run_repeats)
    [adam] = [e for e in report.teacher_entries() if e.label.startswith("adam")]
    for epochs in (10, 25, 25, 10):
        spec = {"dataset": "mnist_5k", "epochs": epochs, "batch_size": 128}
        results, _ = report.run_entry(adam, "mlp_train", spec, 1, 0, str(tmp_path))
        assert results["loss"].shape == (1, epochs)
    assert fits == [10, 25, 10]


def test_table_cells_keep_small_losses_apart():
    """At 25 epochs good optimizers end conv_train near 1e-4: the cells must still rank them
    (four fixed decimals showed 1.2e-4 and 1.4e-4 both as 0.0001)."""
    small = [report._cell(m, m / 4) for m in (1.2e-4, 1.4e-4, 3.05e-4)]
    assert len(set(small)) == 3
    assert [float(c.split(" ± ")[0]) for c in small] == pytest.approx([1.2e-4, 1.4e-4, 3.05e-4])
    assert report._cell(0.0165, 0.0032) == "0.0165 ± 0.0032"
    assert report._cell(float("nan"), 0.0) == "diverged"
