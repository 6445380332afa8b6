"""Evaluation: the problem table, model fits (plain, DP, distributed), functions, baselines."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from l2o.errors import L2OError
from l2o.evaluate import (BASELINES, EVAL_PROBLEMS, Quadratic, Rastrigin,
                          clip_per_example_gradients, evaluate_function, evaluate_model,
                          get_eval_problem, make_baseline, run_repeats)

TINY = dict(target="mlp_classifier", dataset="mnist_5k", epochs=1, batch_size=500,
            config={"layers": [8]}, progress=False)
PER_BATCH = ("batch_loss", "batch_time")
PER_EPOCH = ("loss", "sparse_categorical_accuracy", "val_loss",
             "val_sparse_categorical_accuracy", "epoch_time")


def _check_shapes(result, epochs=1, batches=8):
    assert set(result) == set(PER_BATCH + PER_EPOCH)
    for key in PER_BATCH:
        assert result[key].shape == (epochs * batches,), key
    for key in PER_EPOCH:
        assert result[key].shape == (epochs,), key
    for key, value in result.items():
        assert value.dtype == np.float32, key
        assert np.all(np.isfinite(value)), key


# --------------------------------------------------------------------------- problem table

def test_table_has_every_problem_with_kmnist_fixed():
    assert len(EVAL_PROBLEMS) == 29
    assert sum("steps" in p for p in EVAL_PROBLEMS.values()) == 6
    assert get_eval_problem("conv_kmnist")["dataset"] == "kmnist"
    assert get_eval_problem("conv_smallbatch")["batch_size"] == 32
    assert get_eval_problem("conv_train_dp")["dp_args"] == {"clip_norm": 1.0,
                                                            "noise_multiplier": 1.1}


def test_get_eval_problem_copies_passes_dicts_and_overrides_dataset():
    problem = get_eval_problem("conv_train", dataset="mnist_5k")
    assert problem["dataset"] == "mnist_5k"
    problem["config"]["layers"].append(2)
    assert EVAL_PROBLEMS["conv_train"]["config"]["layers"] == [[16, 3, 1], 2, [32, 5, 1], 2]
    custom = {"target": "Quadratic", "config": {"n": 3}, "steps": 5}
    assert get_eval_problem(custom) is custom
    assert get_eval_problem("quadratic10", dataset="mnist_5k") == EVAL_PROBLEMS["quadratic10"]


def test_unknown_problem_names_valid_keys():
    with pytest.raises(L2OError, match="conv_trian.*valid:.*conv_train"):
        get_eval_problem("conv_trian")


# --------------------------------------------------------------------------- model fits

class DebugSGD(keras.optimizers.SGD):
    """SGD with a debug hook; counts how often the hook is traced."""

    traces = 0

    def debug_summary(self, variables):
        DebugSGD.traces += 1
        return {"_norms": tf.stack([tf.norm(v) for v in variables])}


def test_evaluate_model_shapes_debug_keys_and_single_trace():
    DebugSGD.traces = 0
    result = evaluate_model(DebugSGD(0.5), debug=True, seed=1, **TINY)
    norms = result.pop("_norms")
    _check_shapes(result)
    assert norms.shape == (8, 4) and norms.dtype == np.float32
    assert DebugSGD.traces == 1  # the train step is traced once, not once per batch
    assert result["val_loss"][0] < result["batch_loss"][0]  # it learned something
    assert np.all(np.diff(result["batch_time"]) >= 0)
    assert result["epoch_time"][0] >= result["batch_time"][-1]


def test_evaluate_model_dp_shapes_and_equivalence_without_clip_or_noise():
    _check_shapes(evaluate_model(keras.optimizers.SGD(0.5), seed=3, **TINY,
                                 dp_args={"clip_norm": 1.0, "noise_multiplier": 1.1}))
    # Clipping that never bites and zero noise must reproduce plain mean-gradient training.
    plain = evaluate_model(keras.optimizers.SGD(0.5), seed=3, **TINY)
    dp = evaluate_model(keras.optimizers.SGD(0.5), seed=3, **TINY,
                        dp_args={"clip_norm": 1e6, "noise_multiplier": 0.0})
    np.testing.assert_allclose(dp["batch_loss"], plain["batch_loss"], rtol=1e-4)


def test_evaluate_model_under_two_replica_strategy_matches_one_device(two_cpus):
    single = evaluate_model(keras.optimizers.SGD(0.5), seed=5, **TINY)
    with two_cpus.scope():
        mirrored = evaluate_model(keras.optimizers.SGD(0.5), seed=5, **TINY)
    _check_shapes(mirrored)
    np.testing.assert_allclose(mirrored["batch_loss"], single["batch_loss"], rtol=1e-4)


def test_clipping_bounds_each_example_global_norm():
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=(3, 4, 2)), tf.float32),
             tf.constant(rng.normal(size=(3, 5)), tf.float32)]
    grads = [tf.concat([g[:2] * 10.0, g[2:] * 1e-3], axis=0) for g in grads]  # last is small
    clipped = clip_per_example_gradients(grads, clip_norm=1.0)

    def norms(gs):
        return np.sqrt(sum(np.sum(np.reshape(g, (3, -1)) ** 2, axis=1) for g in gs))

    np.testing.assert_allclose(norms(clipped)[:2], 1.0, rtol=1e-5)
    np.testing.assert_allclose(clipped[0][2], grads[0][2])  # inside the ball: untouched
    # Clipping rescales the whole example jointly, so directions are kept.
    np.testing.assert_allclose(clipped[1][0] / clipped[0][0, 0, 0],
                               grads[1][0] / grads[0][0, 0, 0], rtol=1e-4)


def test_evaluate_model_rejects_bad_arguments():
    with pytest.raises(L2OError, match="batch_size"):
        evaluate_model(keras.optimizers.SGD(), **dict(TINY, batch_size=5000))
    with pytest.raises(L2OError, match="dp_args"):
        evaluate_model(keras.optimizers.SGD(), dp_args={"clip": 1.0}, **TINY)


# --------------------------------------------------------------------------- functions

def test_quadratic_loss_decreases_with_sgd():
    result = evaluate_function(keras.optimizers.SGD(0.005), "Quadratic", {"n": 10}, 50, seed=0)
    assert set(result) == {"loss"}
    assert result["loss"].shape == (50,) and result["loss"].dtype == np.float32
    assert result["loss"][-1] < 0.5 * result["loss"][0]


def test_functions_start_at_zero_and_are_seeded():
    quadratic = Quadratic(4, seed=0)
    assert float(quadratic(tf.zeros(4))) == pytest.approx(float(np.sum(quadratic.b.numpy() ** 2)))
    rastrigin = Rastrigin(4, alpha=10, seed=0)
    expected = np.sum(rastrigin.b.numpy() ** 2) - 10 * np.sum(rastrigin.c.numpy()) + 40
    assert float(rastrigin(tf.zeros(4))) == pytest.approx(float(expected), rel=1e-5)
    np.testing.assert_array_equal(Rastrigin(4, seed=0).c, rastrigin.c)
    with pytest.raises(L2OError, match="valid: Quadratic, Rastrigin"):
        evaluate_function(keras.optimizers.SGD(), "Quadratc", {"n": 2}, 3)


# --------------------------------------------------------------------------- baselines

def test_run_repeats_stacks_runs_on_axis_zero():
    result = run_repeats(lambda: make_baseline("sgd"),
                         {"target": "Quadratic", "config": {"n": 3}, "steps": 7}, repeat=3, seed=0)
    assert result["loss"].shape == (3, 7)
    assert not np.allclose(result["loss"][0], result["loss"][1])  # a fresh function per run
    short = dict(get_eval_problem("mlp_train"), epochs=2, batch_size=500)
    model = run_repeats(lambda: keras.optimizers.SGD(0.5), short, repeat=2,
                        dataset="mnist_5k", progress=False, seed=0)
    assert model["batch_loss"].shape == (2, 2 * 8)
    assert model["val_loss"].shape == (2, 2)
    with pytest.raises(L2OError, match="repeat"):
        run_repeats(lambda: make_baseline("sgd"), "quadratic10", repeat=0)


def test_keras_baselines_follow_the_table():
    adam = make_baseline("adam")
    assert isinstance(adam, keras.optimizers.Adam)
    assert float(adam.learning_rate) == pytest.approx(0.005)
    assert isinstance(make_baseline("rmsprop_deep"), keras.optimizers.RMSprop)
    momentum = make_baseline("momentum")
    assert isinstance(momentum, keras.optimizers.SGD) and momentum.momentum == 0.9
    with pytest.raises(L2OError, match="valid:.*addsign"):
        make_baseline("adamw")
    with pytest.raises(L2OError, match="Keras"):
        make_baseline("momentum", use_keras=False)


@pytest.mark.parametrize("key", [k for k, v in BASELINES.items()
                                 if v["class_name"] in ("Momentum", "AddSign", "PowerSign")])
def test_l2o_only_baselines_build_and_run(key):
    optimizer = make_baseline(key)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    result = evaluate_function(optimizer, "Quadratic", {"n": 3}, 5, seed=0)
    assert np.all(np.isfinite(result["loss"]))


# --------------------------------------------------------------------------- several devices

TINY_PROBLEM = {key: TINY[key] for key in ("target", "dataset", "epochs", "batch_size", "config")}
CURVES = ("batch_loss", "loss", "sparse_categorical_accuracy", "val_loss",
          "val_sparse_categorical_accuracy")


def _placement(optimizer):
    """``"CPU:1"``: the one device that holds all of an optimizer's variables."""
    specs = {tf.DeviceSpec.from_string(v.value.device) for v in optimizer.variables}
    assert len(specs) == 1, specs
    spec = specs.pop()
    return f"{spec.device_type}:{spec.device_index}"


def test_spread_runs_match_one_device_in_order_one_run_per_device(two_cpus, capsys):
    from l2o import cli

    made = []

    def make():
        made.append(keras.optimizers.SGD(0.5, momentum=0.5))
        return made[-1]

    single = run_repeats(lambda: keras.optimizers.SGD(0.5, momentum=0.5), TINY_PROBLEM,
                         repeat=3, seed=7, progress=False)
    # What evaluate.py / baseline.py do with --vgpu=2 (or --gpus=0,1).
    with cli.problem_scope(two_cpus, "mlp_train") as devices:
        spread = run_repeats(make, TINY_PROBLEM, repeat=3, seed=7)
    assert len(devices) == 2
    assert set(spread) == set(single)
    for key in single:
        assert spread[key].shape == single[key].shape and spread[key].dtype == np.float32, key
    assert not np.allclose(single["batch_loss"][0], single["batch_loss"][1])  # order matters
    for key in CURVES:
        np.testing.assert_allclose(spread[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # Run i on device i mod 2: runs 0 and 2 on CPU:0, run 1 on CPU:1, each a whole fit.
    assert sorted(_placement(o) for o in made) == ["CPU:0", "CPU:0", "CPU:1"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Spreading 3 runs over 2 devices: CPU:0, CPU:1"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == [
        "run 1/3 (seed 7) on CPU", "run 2/3 (seed 8) on CPU", "run 3/3 (seed 9) on CPU"]
    assert "run 2/3 (seed 8) on CPU:1" in "\n".join(lines)


def test_spread_learned_optimizer_reads_the_policy_without_changing_it(two_cpus):
    from l2o import LearnedOptimizer, cli
    from l2o.policies import build_policy

    with cli.experiment_scope(two_cpus):  # as evaluate.py builds it for spread runs
        policy = build_policy("RNNPropOptimizer", {"layers": [4]})
    before = [v.numpy() for v in policy.trainable_variables]
    assert before and not any(isinstance(v, tf.distribute.DistributedValues)
                              for v in policy.variables)

    def make():
        return LearnedOptimizer(policy, warmup=2, warmup_rate=0.1)

    single = run_repeats(make, TINY_PROBLEM, repeat=2, seed=3, progress=False)
    with cli.problem_scope(two_cpus, "mlp_train"):
        spread = run_repeats(make, TINY_PROBLEM, repeat=2, seed=3, progress=False)
    for key in CURVES:
        np.testing.assert_allclose(spread[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for old, new in zip(before, policy.trainable_variables):
        np.testing.assert_array_equal(new.numpy(), old)

    # A policy mirrored by the strategy cannot be read outside it: a clear error, not TF's.
    with two_cpus.scope():
        mirrored = build_policy("RNNPropOptimizer", {"layers": [4]})
    with cli.problem_scope(two_cpus, "mlp_train"), pytest.raises(L2OError, match="scope"):
        run_repeats(lambda: LearnedOptimizer(mirrored), TINY_PROBLEM, repeat=2, progress=False)


def test_spread_function_problems_and_the_first_failure(two_cpus):
    from l2o.evaluate import spread_repeats

    devices = two_cpus.extended.worker_devices
    quadratic = {"target": "Quadratic", "config": {"n": 3}, "steps": 5}
    single = run_repeats(lambda: make_baseline("sgd"), quadratic, repeat=3, seed=0)
    with spread_repeats(devices):
        spread = run_repeats(lambda: make_baseline("sgd"), quadratic, repeat=3, seed=0,
                             progress=False)
    np.testing.assert_allclose(spread["loss"], single["loss"], rtol=1e-6)
    calls = []

    def fails_second():
        calls.append(None)
        if len(calls) == 2:
            raise L2OError("no optimizer for this run")
        return make_baseline("sgd")

    with spread_repeats(devices), pytest.raises(L2OError, match="no optimizer"):
        run_repeats(fails_second, quadratic, repeat=4, seed=0, progress=False)


# --------------------------------------------------------------------------- the scripts' files

def _script(name, argv, monkeypatch, capsys):
    """A script run in-process through its wrapper: ``(exit status, stderr lines)``."""
    from l2o import cli
    from test_cli import load_script

    monkeypatch.setenv(cli.VERBOSE_ENV, "1")  # leave file descriptor 2 to pytest's capture
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        cli.main_wrapper(load_script(name).main, argv)
    return done.value.code, [line for line in capsys.readouterr().err.splitlines() if line]


@pytest.mark.parametrize("script,argv,relative", [
    ("baseline.py", ["--optimizer=sgd"], "sgd/quadratic10.npz"),
    ("gridsearch.py", ["--policy=sgd", "--grid=0.001"], "sgd/quadratic10/0.001.npz"),
])
def test_scripts_never_silently_replace_an_evaluation_file(tmp_path, monkeypatch, capsys,
                                                           script, argv, relative):
    from l2o.results import read_evaluation_settings

    def run(*extra):
        return _script(script, ["--problem=quadratic10", "--repeat=1", f"--directory={tmp_path}",
                                *argv, *extra], monkeypatch, capsys)

    assert run("--seed=0")[0] == 0
    path = tmp_path / relative
    before = path.read_bytes()
    status, lines = run("--seed=1")
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path} holds an evaluation with other settings "
                               "(seed=0 there, 1 now); pass --overwrite"), lines[0]
    assert path.read_bytes() == before
    assert run("--seed=1", "--overwrite")[0] == 0
    assert read_evaluation_settings(path)["seed"] == 1
