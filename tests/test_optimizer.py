"""The Keras optimizer adapter: fit, warmup, .keras round trip, tf.distribute, load errors."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import l2o
from l2o.policies import build_policy


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])


def _train(model, opt, x, y, steps):
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    for i in range(steps):
        model.train_on_batch(x[16 * i % 64:16 * i % 64 + 16], y[16 * i % 64:16 * i % 64 + 16])
    return [w.numpy() for w in model.weights]


def test_load_pretrained_is_keras_optimizer_and_fits(pretrained):
    opt = l2o.load(f"{pretrained}/choice-large/7")
    assert isinstance(opt, tf.keras.optimizers.Optimizer)
    x, y = _data()
    model = _model()
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_warmup_uses_sgd_for_first_applications():
    policy = build_policy("AdamOptimizer", {"learning_rate": 0.1})
    var = tf.Variable([1.0, -2.0])
    opt = l2o.LearnedOptimizer(policy, warmup=2, warmup_rate=0.5)
    grad = tf.constant([0.2, 0.4])
    for _ in range(2):
        opt.apply_gradients([(grad, var)])
    np.testing.assert_allclose(var.numpy(), [1.0 - 0.2, -2.0 - 0.4], rtol=1e-6)
    before = var.numpy()
    opt.apply_gradients([(grad, var)])
    # third application: Adam from the state built up during warmup (m, v saw 3 gradients)
    b1, b2 = 0.9, 0.999
    m = sum((1 - b1) * b1 ** k for k in range(3)) * grad.numpy()
    v = sum((1 - b2) * b2 ** k for k in range(3)) * grad.numpy() ** 2
    expected = before - 0.1 * (m / (1 - b1)) / np.sqrt(v / (1 - b2) + 1e-7)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5)


def test_keras_file_round_trip(tmp_path):
    x, y = _data()
    policy = build_policy("RNNPropOptimizer", {"warmup_lstm_update": False})
    make = lambda: l2o.LearnedOptimizer(  # noqa: E731
        l2o.optimizer._policy_from_config(l2o.optimizer.policy_to_config(policy)),
        warmup=4, warmup_rate=0.05)
    straight = _train(_model(), make(), x, y, 6)

    model = _model()
    _train(model, make(), x, y, 3)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, l2o.LearnedOptimizer)
    assert restored.optimizer.warmup == 4
    for i in range(3, 6):
        restored.train_on_batch(x[16 * i % 64:16 * i % 64 + 16], y[16 * i % 64:16 * i % 64 + 16])
    for a, b in zip(straight, [w.numpy() for w in restored.weights]):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_config_round_trip_keeps_policy_weights():
    policy = build_policy("RNNPropOptimizer")
    opt = l2o.LearnedOptimizer(policy, warmup=3)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone, l2o.LearnedOptimizer) and clone.warmup == 3
    for k, v in policy.get_weights().items():
        np.testing.assert_array_equal(v, clone.policy.get_weights()[k])


def test_mirrored_strategy_matches_single_device(pretrained, two_cpus):
    x, y = _data()
    single = _train(_model(), l2o.load(f"{pretrained}/choice-large/7"), x, y, 4)
    strategy = two_cpus
    with strategy.scope():
        model = _model()
        opt = l2o.load(f"{pretrained}/choice-large/7")
        mirrored = _train(model, opt, x, y, 4)
    assert strategy.num_replicas_in_sync == 2
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_load_errors(tmp_path, pretrained):
    with pytest.raises(l2o.L2OError, match="does not exist"):
        l2o.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(l2o.L2OError, match="expected config.json"):
        l2o.load(str(tmp_path / "empty"))
    # truncated data file
    broken = tmp_path / "broken"
    shutil.copytree(f"{pretrained}/choice-large/7", broken)
    data = broken / "weights.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(l2o.L2OError, match="corrupt or truncated"):
        l2o.load(str(broken))
    # corrupt index
    garbled = tmp_path / "garbled"
    shutil.copytree(f"{pretrained}/choice-large/7", garbled)
    (garbled / "weights.index").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(l2o.L2OError, match="corrupt or truncated"):
        l2o.load(str(garbled))
    # weights that do not fit the config: other sizes, or fewer layers
    for layers, message in (([20, 16], "has shape"), ([20], "holds weights")):
        wrong = str(tmp_path / f"wrong{len(layers)}")
        l2o.export(build_policy("RNNPropOptimizer", {"layers": layers}), wrong)
        for name in ("weights.index", "weights.data-00000-of-00001"):
            shutil.copy(f"{pretrained}/choice-large/7/{name}", os.path.join(wrong, name))
        with pytest.raises(l2o.L2OError, match=message):
            l2o.load(wrong)


def test_export_then_load_round_trip(tmp_path):
    policy = build_policy("RNNPropOptimizer", {"layers": [8]})
    dst = str(tmp_path / "opt")
    l2o.export(policy, dst, warmup=100, warmup_rate=0.05)
    opt = l2o.load(dst)
    assert opt.warmup == 100 and opt.warmup_rate == 0.05
    for k, v in policy.get_weights().items():
        np.testing.assert_array_equal(v, opt.policy.get_weights()[k])
    with pytest.raises(l2o.L2OError, match="already exists"):
        l2o.export(policy, dst)
