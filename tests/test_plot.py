"""Plots of evaluation results: loading, per-run statistics, figures and the command line."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from l2o import plot
from l2o.errors import L2OError

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
R, EPOCHS, B_TR = 3, 4, 5

VAL_LOSS = np.array([[2.0, 1.0, 0.5, 1.0],
                     [1.0, 1.0, 1.0, 1.0],
                     [4.0, np.nan, 2.0, 3.0]], np.float32)
LOG_LOSS = np.array([[1.0, 0.0, -1.0, -2.0],
                     [0.0, 0.0, 0.0, 0.0],
                     [2.0, 1.0, 0.0, -1.0]])
VAL_ACC = np.array([[0.1, 0.5, 0.3, 0.2],
                    [0.9, 0.8, 0.7, 0.6],
                    [0.2, 0.2, 0.4, 0.3]], np.float32)


def eval_record(shift=0.0, runs=R):
    """A record with exactly the model-evaluator keys and shapes, float32."""
    rng = np.random.default_rng(0)
    batch_loss = np.exp(np.linspace(1.0, -1.0, EPOCHS * B_TR) + shift
                        + 0.1 * rng.standard_normal((runs, EPOCHS * B_TR)))
    record = {
        "batch_loss": batch_loss,
        "batch_time": np.tile(np.arange(1, EPOCHS * B_TR + 1) * 0.01, (runs, 1)),
        "loss": np.exp(LOG_LOSS[:runs] + shift),
        "sparse_categorical_accuracy": VAL_ACC[:runs] * 0.9,
        "val_loss": VAL_LOSS[:runs] * np.exp(shift),
        "val_sparse_categorical_accuracy": VAL_ACC[:runs],
        "epoch_time": np.tile(np.arange(1, EPOCHS + 1) * 0.05, (runs, 1)),
    }
    return {k: np.asarray(v, np.float32) for k, v in record.items()}


def save(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **record)
    return path


@pytest.fixture
def tree(tmp_path):
    """results/rnnprop/min-max/{1,2} (curriculum) and baseline/adam, in a temporary folder."""
    experiment = tmp_path / "results" / "rnnprop" / "min-max"
    first = experiment / "1"
    first.mkdir(parents=True)
    # Stage 1, period 0: repeat 1 was the lower validation; the highest repeat is 2.
    pd.DataFrame({
        "validation": [-1.0, -1.5, -2.0, -2.5, -2.2],
        "stage": [0, 0, 1, 1, 1], "period": [0, 1, 0, 0, 0], "repeat": [0, 0, 0, 1, 2],
        "meta_loss": [-0.5, -1.0, -1.2, -1.6, -1.4],
        "imitation_loss": [0.3, 0.2, 0.2, 0.1, 0.15],
    }).to_csv(first / "summary.csv", index=False)
    save(first / "eval" / "conv_train" / "stage_1.0.1.npz", eval_record())
    save(first / "eval" / "conv_train" / "stage_1.0.2.npz", eval_record(shift=5.0))
    save(experiment / "2" / "eval" / "conv_train" / "stage_1.0.0.npz", eval_record(0.1, runs=2))
    save(tmp_path / "baseline" / "adam" / "conv_train.npz", eval_record(shift=0.5))
    return tmp_path


# -- statistics ----------------------------------------------------------------------------


def gaussian_nearest(row, sigma=2.0):
    """Gaussian smoothing written out: kernel truncated at 4 sigma, edges repeated."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    padded = np.pad(row, radius, mode="edge")
    return np.array([padded[i:i + 2 * radius + 1] @ kernel for i in range(len(row))])


def test_eval_stats_match_hand_computed_values():
    stats = plot.eval_stats(eval_record())
    log = np.log
    np.testing.assert_array_equal(stats["val_best_index"], [2, 0, 2])
    np.testing.assert_allclose(stats["val_best"], [log(0.5), 0.0, log(2.0)], atol=1e-6)
    np.testing.assert_allclose(stats["val_last"], [0.0, 0.0, log(3.0)], atol=1e-6)
    np.testing.assert_allclose(stats["val_meta"][:2], [0.0, 0.0], atol=1e-6)
    assert np.isnan(stats["val_meta"][2])  # a NaN epoch makes the mean log loss NaN
    # train_meta is the mean log *training* loss (the reference used the validation loss).
    np.testing.assert_allclose(stats["train_meta"], [-0.5, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(stats["train_best"], [-2.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(stats["train_last"], [-2.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_array_equal(stats["train_best_index"], [3, 0, 3])
    assert "train_10" not in stats  # only 4 epochs
    # acc_best is each run's own best (the reference gave every run the global 0.9).
    np.testing.assert_allclose(stats["acc_best"], [0.5, 0.9, 0.4], atol=1e-6)
    expected = np.std(np.log(gaussian_nearest(VAL_LOSS[0].astype(float))) - np.log(VAL_LOSS[0]))
    np.testing.assert_allclose(stats["val_stability"][:2], [expected, 0.0], atol=1e-6)
    assert expected > 0.1


def test_function_records_get_training_stats_only():
    loss = np.exp(-np.arange(12, dtype=np.float32) / 4)[None].repeat(2, axis=0)
    stats = plot.eval_stats({"loss": loss})
    assert not any(key.startswith("val_") or key == "acc_best" for key in stats)
    np.testing.assert_allclose(stats["train_10"], [-9 / 4] * 2, atol=1e-6)
    np.testing.assert_allclose(stats["train_best"], [-11 / 4] * 2, atol=1e-6)
    table = plot.stats_table({"quad": {"loss": loss}})
    assert "train_best" in table and "| quad | 2 |" in table


def test_stats_table_reports_mean_and_std_per_entry():
    table = plot.stats_table({"a": eval_record(), "b": eval_record(shift=1.0)})
    lines = table.splitlines()
    assert lines[0] == "| entry | runs | val_best | train_last | val_stability |"
    mean = np.mean([np.log(0.5), 0.0, np.log(2.0)])
    assert lines[2].startswith(f"| a | 3 | {mean:.4g} ± ")


# -- loading -------------------------------------------------------------------------------


def test_default_checkpoint_is_the_library_best_not_the_highest_repeat(tree):
    first = tree / "results" / "rnnprop" / "min-max" / "1"
    assert plot.resolve_eval_path(first, "conv_train").name == "stage_1.0.1.npz"
    np.testing.assert_allclose(plot.load_eval(first, "conv_train")["loss"],
                               eval_record()["loss"])
    chosen = plot.load_eval(first, "conv_train", checkpoint="stage_1.0.2")
    np.testing.assert_allclose(chosen["loss"], eval_record(shift=5.0)["loss"])
    assert plot.resolve_eval_path(first, "conv_train", "1.0.2").name == "stage_1.0.2.npz"


def test_replicates_are_pooled_with_their_index(tree):
    record = plot.load_replicates(tree / "results" / "rnnprop" / "min-max", "conv_train")
    assert record["val_loss"].shape == (R + 2, EPOCHS)
    assert record["batch_loss"].shape == (R + 2, EPOCHS * B_TR)
    np.testing.assert_array_equal(record["replicate"], [0, 0, 0, 1, 1])
    assert plot.load_entry(tree / "results" / "rnnprop" / "min-max", "conv_train").keys() \
        == record.keys()


def test_missing_files_name_what_exists(tree):
    first = tree / "results" / "rnnprop" / "min-max" / "1"
    with pytest.raises(L2OError, match="evaluated problems: conv_train"):
        plot.load_eval(first, "mlp_train")
    with pytest.raises(L2OError, match="present: stage_1.0.1, stage_1.0.2"):
        plot.load_eval(first, "conv_train", checkpoint="stage_3.7.0")
    with pytest.raises(L2OError, match="present: adam"):
        plot.load_baseline(tree / "baseline", "rmsprop", "conv_train")
    with pytest.raises(L2OError, match="its problems: conv_train"):
        plot.load_baseline(tree / "baseline", "adam", "mlp_train")


def test_gridsearch_reads_policy_then_problem(tmp_path):
    save(tmp_path / "adam" / "conv_train" / "0.01.npz", eval_record())
    assert plot.load_gridsearch(tmp_path, "adam", "conv_train", 0.01)["loss"].shape == (R, 4)
    with pytest.raises(L2OError, match="present: 0.01"):
        plot.load_gridsearch(tmp_path, "adam", "conv_train", 0.1)


# -- figures and the command ---------------------------------------------------------------


def test_compare_writes_a_png(tree, tmp_path):
    out = tmp_path / "figures" / "conv_train.png"
    written = plot.compare("conv_train", {
        "min-max": tree / "results" / "rnnprop" / "min-max" / "1",
        "adam": tree / "baseline" / "adam" / "conv_train.npz"}, out, window=3)
    assert written == out
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 20_000


def test_training_figure_of_a_curriculum(tree, tmp_path):
    summary = plot.load_training(tree / "results" / "rnnprop" / "min-max" / "1")
    kept = plot.accepted_rows(summary)
    assert list(kept["repeat"]) == [0, 0, 1]  # stage 1 period 0 keeps the best repeat
    out = plot.training_figure(summary, tmp_path / "training.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


# TensorFlow 2.21 logs a few lines while it is imported, before any log level applies; the
# command sends them away (l2o.cli.quiet_native_logs), and they are not its output anyway.
TF_STARTUP = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} [\d:.]+ +\d+ \S+\])")


def run_command(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "l2o.plot", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)


def test_command_draws_the_comparison(tree, tmp_path):
    out = tmp_path / "cmd.png"
    done = run_command("--problem=conv_train",
                       f"--results={tree / 'results' / 'rnnprop' / 'min-max'}",
                       "--baselines=adam", f"--baseline-root={tree / 'baseline'}",
                       "--window=3", f"--out={out}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert "| rnnprop/min-max | 5 |" in done.stdout and "| adam | 3 |" in done.stdout
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_command_reports_a_missing_file_in_one_line(tree, tmp_path):
    done = run_command("--problem=conv_train", "--baselines=rmsprop",
                       f"--baseline-root={tree / 'baseline'}", f"--out={tmp_path / 'x.png'}")
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if not TF_STARTUP.match(line)]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "rmsprop" in lines[0] and "present: adam" in lines[0]
    assert not (tmp_path / "x.png").exists()
    # --grid imports TensorFlow (l2o.evaluate): its start-up lines stay off stderr too
    done = run_command("--problem=conv_train", "--baselines=adam", "--grid=adam",
                       f"--baseline-root={tree / 'baseline'}", f"--grid-root={tmp_path / 'none'}",
                       f"--out={tmp_path / 'x.png'}")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "grid" in done.stderr and not (tmp_path / "x.png").exists()


def _replicate(final, best_val, runs=2):
    """An evaluation record whose runs end at ``final`` (training) and bottom out at
    ``best_val`` (validation), with a little run-to-run spread that averages out."""
    spread = np.linspace(-0.1, 0.1, runs)[:, None]
    loss = np.array([[1.0, 0.5, final]]) * (1 + spread)
    val = np.array([[1.0, best_val, 2 * best_val]]) * (1 + spread)
    return {"loss": loss, "val_loss": val}


def test_meta_stability_by_hand():
    recipes = {"none": [_replicate(0.1, 0.3), _replicate(0.6, 0.2), _replicate(0.2, 0.4)],
               "gaussian": [_replicate(0.2, 0.3), _replicate(0.3, 0.3),
                            _replicate(np.nan, 0.3)]}
    rows = plot.meta_stability(recipes, reference="none")
    none, gaussian = rows["none"], rows["gaussian"]
    assert none["replicates"] == 3
    finals = np.array([0.1, 0.6, 0.2])  # each replicate's mean over its runs
    assert none["final_loss"]["mean"] == pytest.approx(finals.mean())
    assert none["final_loss"]["std"] == pytest.approx(finals.std())
    assert none["final_loss"]["worst"] == pytest.approx(0.6)  # the highest loss
    assert none["best_val_loss"]["mean"] == pytest.approx(0.3)
    assert none["best_val_loss"]["worst"] == pytest.approx(0.4)
    assert none["final_loss"]["spread_ratio"] == pytest.approx(1.0)
    # a replicate that diverged is missing, not averaged in
    assert gaussian["final_loss"]["finite"] == 2
    assert gaussian["final_loss"]["mean"] == pytest.approx(0.25)
    assert gaussian["final_loss"]["spread_ratio"] == pytest.approx(0.05 / finals.std())
    assert gaussian["best_val_loss"]["std"] == pytest.approx(0.0)
    # the log spread: sample std of ln over finite replicates, and the one-sided F test's
    # p value of a log-variance this far below none's; F(2, 1) has the closed form
    # sf(x) = (1 + 2x)^(-1/2) (sf(x) = (1 + 2x / d)^(-d / 2) on 2 and d degrees of freedom)
    log_var = np.var(np.log(finals), ddof=1)
    assert none["final_loss"]["log_std"] == pytest.approx(np.sqrt(log_var))
    gaussian_var = np.var(np.log([0.2, 0.3]), ddof=1)
    assert gaussian["final_loss"]["log_std"] == pytest.approx(np.sqrt(gaussian_var))
    assert gaussian["final_loss"]["log_p"] == pytest.approx(
        (1 + 2 * log_var / gaussian_var) ** -0.5)
    assert np.isnan(none["final_loss"]["log_p"])  # the reference is not tested against itself
    assert gaussian["best_val_loss"]["log_p"] == 0.0  # no spread at all below a spread
    assert none["val_stability"]["mean"] == pytest.approx(
        np.mean([np.mean(plot.eval_stats(r)["val_stability"]) for r in recipes["none"]]))
    table = plot.stability_table(recipes, reference="none",
                                 baselines={"Adam, lr 0.005": _replicate(0.15, 0.25, runs=5)})
    lines = table.splitlines()
    assert lines[2].startswith(
        f"| none | 3 | {finals.mean():.4g} ± {finals.std():.2g} | 0.6 | 6 | 1.00 | n/a |")
    p_value = gaussian["final_loss"]["log_p"]
    assert lines[3].startswith(f"| gaussian | 3 | 0.25 ± 0.05 | 0.3 | 1.5 | "
                               f"{0.05 / finals.std():.2f} | {p_value:.2g} |")
    assert lines[4].startswith("| Adam, lr 0.005 | (5 runs) | 0.15 ± ")
    assert none["final_loss"]["best"] == pytest.approx(0.1)
    assert none["final_loss"]["spread_factor"] == pytest.approx(6.0)  # worst / best
    assert gaussian["final_loss"]["spread_factor"] == pytest.approx(1.5)
    # a spread far below the reference's keeps a digit: not "0.00"
    tight = {"none": recipes["none"], "tight": [_replicate(0.2, 0.3), _replicate(0.2001, 0.3)]}
    row = plot.stability_table(tight, reference="none").splitlines()[3]
    assert row.startswith("| tight | 2 | 0.2001 ± 5e-05 | 0.2001 | 1 | 0.0002 |"), row
    with pytest.raises(L2OError, match="reference"):
        plot.meta_stability(recipes, reference="pgd")


def test_meta_stability_of_one_replicate_has_no_spread():
    """One replicate (or one finite one) measures no spread: n/a, not a std of 0 that would
    read as a perfectly stable recipe."""
    recipes = {"none": [_replicate(0.1, 0.3), _replicate(0.4, 0.2)],
               "pgd": [_replicate(0.05, 0.25)],
               "gaussian": [_replicate(0.2, 0.3), _replicate(np.nan, 0.3)]}
    rows = plot.meta_stability(recipes, reference="none")
    for label in ("pgd", "gaussian"):
        final = rows[label]["final_loss"]
        assert final["finite"] == 1 and final["worst"] == pytest.approx(final["best"])
        for key in ("std", "spread_factor", "spread_ratio"):
            assert np.isnan(final[key]), (label, key)
    assert np.isnan(rows["pgd"]["best_val_loss"]["std"])
    assert rows["gaussian"]["best_val_loss"]["std"] == pytest.approx(0.0)  # two finite, alike
    pgd = plot.stability_table(recipes, reference="none").splitlines()[3]
    assert pgd.startswith(
        "| pgd | 1 | 0.05 ± n/a | 0.05 | n/a | n/a | n/a | 0.25 ± n/a | 0.25 | n/a | n/a | "
        "n/a |")
    assert np.isnan(rows["pgd"]["final_loss"]["log_p"])


def test_replicate_table_has_a_column_per_table_and_blanks_where_a_replicate_is_missing():
    early = {"none": [_replicate(0.1, 0.3), _replicate(0.6, 0.2)]}
    late = {"none": [_replicate(0.05, 0.3)]}  # replicate 2 not evaluated at this horizon
    adam = _replicate(0.15, 0.25, runs=5)
    table = plot.replicate_table([
        ("p, 10 epochs", early, {"none": ["1", "2"]}, {"adam": adam}),
        ("p, 25 epochs", late, {"none": ["1"]}, {"adam, grid-best": (adam, "lr 0.01")})])
    lines = table.splitlines()
    assert lines[0] == "| recipe | replicate | p, 10 epochs | p, 25 epochs |"
    assert lines[2:] == ["| none | 1 | 0.1 | 0.05 |", "| none | 2 | 0.6 |  |",
                         "| adam | (mean of runs) | 0.15 |  |",
                         "| adam, grid-best | (mean of runs) |  | 0.15 (lr 0.01) |"]


def test_stability_command_splits_a_recipe_into_its_replicates(tree, capsys):
    from l2o.plot.__main__ import main

    folder = tree / "results" / "rnnprop" / "min-max"
    png = tree / "stability.png"
    assert main(["--problem=conv_train", f"--stability=mm:{folder}", "--reference=mm",
                 "--baselines=adam", f"--baseline-root={tree / 'baseline'}",
                 f"--out={png}"]) == 0
    out = capsys.readouterr().out
    assert "mm: 2 replicates" in out
    assert out.rstrip().endswith(str(png)) and png.read_bytes().startswith(PNG_MAGIC)
    # replicate 1 (3 runs, its default checkpoint) and replicate 2 (2 runs) are one figure each
    first, second = (plot.replicate_figures(plot.load_eval(folder / n, "conv_train"))
                     for n in ("1", "2"))
    finals = np.array([first["final_loss"], second["final_loss"]])
    assert (f"| mm | 2 | {finals.mean():.4g} ± {finals.std():.2g} | {finals.max():.4g} | "
            f"{finals.max() / finals.min():.3g} | 1.00 |") in out
    assert "| adam | (3 runs) |" in out
    assert main(["--problem=conv_train", "--stability=mm"]) == 2


def test_each_replicate_is_one_line_ending_at_its_table_figure(tmp_path):
    from matplotlib.figure import Figure

    records = [_replicate(0.1, 0.3, runs=3), _replicate(0.6, 0.2), _replicate(0.2, 0.4)]
    records[0]["loss"][1, -1] = np.inf  # a run diverged at the last epoch: left out
    ax = Figure().subplots()
    lines = plot.plot_replicates(ax, records, "loss", names=["1", "2", "4"],
                                 baselines={"adam": _replicate(0.15, 0.25, runs=5)})
    assert [line.get_label() for line in lines] == ["replicate 1", "replicate 2", "replicate 4"]
    assert len(ax.get_lines()) == 4  # the baseline too, not counted among the replicates
    for line, record in zip(lines, records):
        x, y = line.get_data()
        np.testing.assert_array_equal(x, [1, 2, 3])
        # the mean over the replicate's runs, per epoch: its last point is the table's figure
        assert np.exp(y[-1]) == pytest.approx(plot.replicate_figures(record)["final_loss"])
        expected = np.nanmean(np.where(np.isfinite(record["loss"]), record["loss"], np.nan), 0)
        np.testing.assert_allclose(np.exp(y), expected)
    png = plot.stability_figure("conv_train", {"none": records, "pgd": records[:2]},
                                tmp_path / "stability.png", names={"none": ["1", "2", "4"]})
    assert png.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(L2OError, match="share no per-epoch loss"):
        plot.stability_figure("conv_train", {"none": [{"accuracy": np.ones((2, 3))}]},
                              tmp_path / "bad.png")


def test_a_horizon_keeps_the_first_epochs_of_every_per_epoch_and_per_batch_array():
    record = dict(eval_record(), settings=np.array('{"epochs": 4}'))
    short = plot.at_horizon(record, 2)
    for key in ("loss", "val_loss", "sparse_categorical_accuracy", "epoch_time"):
        np.testing.assert_array_equal(short[key], record[key][:, :2])
    for key in ("batch_loss", "batch_time"):  # B_TR batches per epoch
        np.testing.assert_array_equal(short[key], record[key][:, :2 * B_TR])
    assert short["settings"] is record["settings"]
    # the figures are those of the truncated runs: epoch 2's loss, the best of 2 epochs
    figures = plot.run_figures(short)
    np.testing.assert_allclose(figures["final_loss"], np.exp(LOG_LOSS[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(figures["best_val_loss"], [1.0, 1.0, 4.0])
    assert plot.at_horizon(record, EPOCHS)["loss"].shape == (R, EPOCHS)
    for epochs in (0, EPOCHS + 1):
        with pytest.raises(L2OError, match="outside the record's 1..4"):
            plot.at_horizon(record, epochs)


def test_stability_command_at_a_horizon_beside_the_grid_best_rule(tree, capsys):
    from l2o.plot.__main__ import main

    grid = tree / "gridsearch"
    # at 4 epochs lr 0.01 ends lowest; after 2 epochs lr 0.001 does; lr 0.1 diverged
    early_fast = eval_record(-1.0)
    early_fast["loss"][:, 2:] = 10.0
    save(grid / "adam" / "conv_train" / "0.001.npz", early_fast)
    save(grid / "adam" / "conv_train" / "0.01.npz", eval_record(-0.5))
    diverged = eval_record()
    diverged["loss"][:] = np.nan
    save(grid / "adam" / "conv_train" / "0.1.npz", diverged)
    folder = tree / "results" / "rnnprop" / "min-max"
    args = ["--problem=conv_train", f"--stability=mm:{folder}", "--reference=mm",
            "--grid=adam", f"--grid-root={grid}", f"--out={tree / 'stability.png'}"]
    assert main(args) == 0
    assert "| adam, grid-best lr 0.01 | (3 runs) |" in capsys.readouterr().out
    assert main(args + ["--epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "| adam, grid-best lr 0.001 | (3 runs) |" in out
    first, second = (plot.replicate_figures(plot.at_horizon(
        plot.load_eval(folder / n, "conv_train"), 2)) for n in ("1", "2"))
    finals = np.array([first["final_loss"], second["final_loss"]])
    assert (f"| mm | 2 | {finals.mean():.4g} ± {finals.std():.2g} | {finals.max():.4g} | "
            f"{finals.max() / finals.min():.3g} | 1.00 |") in out
    assert main(args + ["--epochs=9"]) == 2
    assert main(args + ["--grid=rmsprop"]) == 2


def test_plots_read_the_accepted_attempt_even_where_a_rejected_one_validates_best():
    """Period 0 of stage 1 is judged by its training loss: attempt 0 validates best but its
    meta_loss (-1.2) is above stage 0's best validation (-1.5) by more than 10%, so training
    went on from attempt 1; plots, loaders and the training figure agree with the library."""
    summary = pd.DataFrame({
        "validation": [-1.0, -1.5, -3.0, -2.5],
        "stage": [0, 0, 1, 1], "period": [0, 1, 0, 0], "repeat": [0, 0, 0, 1],
        "meta_loss": [-0.5, -1.0, -1.2, -1.6],
    })
    assert plot.default_metadata(summary) == {"stage": 1, "period": 0, "repeat": 1}
    assert list(plot.accepted_rows(summary)["repeat"]) == [0, 0, 1]
    # a looser rule (the folder's config.json) accepts attempt 0
    assert plot.default_metadata(summary, {"repeat_threshold": 0.5})["repeat"] == 0


def test_one_stability_command_gives_a_table_per_problem_and_horizon(tree, capsys):
    """--problem and --epochs as comma lists: each (problem, horizon) is the table the
    single-problem command prints, under its own heading, with its own figure."""
    from l2o.plot.__main__ import main

    folder = tree / "results" / "rnnprop" / "min-max"
    common = [f"--stability=mm:{folder}", "--reference=mm", "--baselines=adam",
              f"--baseline-root={tree / 'baseline'}"]
    single = {}
    for epochs in (2, 4):
        out = tree / f"single_{epochs}.png"
        assert main(["--problem=conv_train", f"--epochs={epochs}", f"--out={out}", *common]) == 0
        text = capsys.readouterr().out
        single[epochs] = text[text.index("| recipe"):text.rindex(str(out))].strip()
    cwd = os.getcwd()
    os.chdir(tree)  # the default figure paths land in tree/figures
    try:
        assert main(["--problem=conv_train", "--epochs=4,2", *common]) == 0
    finally:
        os.chdir(cwd)
    text = capsys.readouterr().out
    heads = [text.index("## conv_train, 2 epochs"), text.index("## conv_train, 4 epochs")]
    assert heads[0] < heads[1]
    assert single[2] in text[heads[0]:heads[1]] and single[4] in text[heads[1]:]
    for epochs in (2, 4):
        assert (tree / "figures" / f"stability_conv_train_{epochs}ep.png").is_file()
    # then the final loss of every table in one, each row the single table's cells
    summary = text[text.index("## Final training loss, every problem and horizon"):
                   text.index("## Final training loss of every replicate")]
    for epochs in (2, 4):
        row = next(line for line in single[epochs].splitlines() if line.startswith("| mm |"))
        assert (f"| conv_train, {epochs} epochs | mm | 2 | "
                + " | ".join(row.split(" | ")[2:7]) + " |") in summary
        assert f"| conv_train, {epochs} epochs | adam | (3 runs) |" in summary
    # and every replicate's figure, a column per table in the tables' order
    replicates = text[text.index("## Final training loss of every replicate"):]
    assert "| recipe | replicate | conv_train, 2 epochs | conv_train, 4 epochs |" in replicates
    for name in ("1", "2"):
        record = plot.load_eval(folder / name, "conv_train")
        cells = [f"{plot.replicate_figures(plot.at_horizon(record, e))['final_loss']:.3g}"
                 for e in (2, 4)]
        checkpoint = plot.resolve_eval_path(folder / name, "conv_train").stem
        assert f"| mm | {name} ({checkpoint}) | {cells[0]} | {cells[1]} |" in replicates
    assert "| adam | (mean of runs) |" in replicates
    # one figure name for several tables, or several horizons outside --stability: refused
    assert main(["--problem=conv_train", "--epochs=2,4", f"--out={tree / 'x.png'}",
                 *common]) == 2
    assert main(["--problem=conv_train", "--epochs=2,4", f"--results={folder / '1'}"]) == 2
    assert "one --problem and one --epochs" in capsys.readouterr().err


def test_a_replicate_still_training_stops_the_table_unless_evaluated_only(tree, capsys,
                                                                           monkeypatch):
    """Replicate 3 has a config but no evaluation yet: the strict table names it and stops;
    --evaluated-only leaves it out, says so, and the figure names replicates by folder."""
    from l2o.plot import __main__ as command

    folder = tree / "results" / "rnnprop" / "min-max"
    (folder / "3").mkdir()
    (folder / "3" / "config.json").write_text("{}")
    args = ["--problem=conv_train", f"--stability=mm:{folder}", f"--out={tree / 's.png'}"]
    try:
        assert command.main(args) == 2
        assert "min-max/3" in capsys.readouterr().err
        drawn = {}
        real = command.stability_figure
        monkeypatch.setattr(command, "stability_figure", lambda *a, **k: (
            drawn.update(k["names"]), real(*a, **k))[1])
        assert command.main(args + ["--evaluated-only"]) == 0
        out = capsys.readouterr().out
        assert f"mm: left out, no evaluation of conv_train: {folder / '3'}" in out
        assert "mm: 2 replicates" in out and drawn == {"mm": ["1", "2"]}
    finally:
        shutil.rmtree(folder / "3")
