"""LearnedOptimizer on every float dtype: float64, bfloat16 and float16 variables, mixed precision."""

import contextlib
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import l2o
from l2o.policies import build_policy, layers
from l2o.problems.models import conv_classifier
from test_policies import np_rnnprop

MIN_MAX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "pre-trained", "min-max", "1")
CONV_TRAIN = [[16, 3, 1], 2, [32, 5, 1], 2]


@contextlib.contextmanager
def keras_dtype(setting):
    """Keras's floatx (``"float64"``, ``"bfloat16"``) or a mixed policy, restored afterwards.

    The global dtype policy is set along with floatx: it is fixed the first time a layer is
    built, so floatx alone does not reach layers built later in the same process.
    """
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    try:
        if not setting.startswith("mixed_"):
            keras.config.set_floatx(setting)
        keras.config.set_dtype_policy(setting)
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def _state_dtypes(opt):
    """The dtypes of the optimizer's per-variable state (its float ones)."""
    return {v.dtype for v in opt.variables
            if v.dtype.startswith(("float", "bfloat")) and "_state" in v.path}


@pytest.mark.parametrize("setting,state_dtype", [("float64", "float64"), ("bfloat16", "float32")])
def test_conv_train_fits_in_dtype(setting, state_dtype, mnist_small):
    """The issue's acceptance: conv_train in model.fit under floatx float64 or bfloat16 (raw
    bfloat16 variables), finite loss that decreases."""
    x, y = mnist_small
    with keras_dtype(setting):
        keras.utils.set_random_seed(0)
        model = conv_classifier(x.shape[1:], 10, layers=CONV_TRAIN)
        opt = l2o.load(MIN_MAX)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        before = float(model.evaluate(x, y, verbose=0))
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        after = float(model.evaluate(x, y, verbose=0))
    assert {w.dtype for w in model.trainable_variables} == {setting}
    assert _state_dtypes(opt) == {state_dtype}
    weights = np.concatenate([np.asarray(w.numpy(), np.float64).ravel()
                              for w in model.trainable_variables])
    assert np.all(np.isfinite(weights)) and np.isfinite(after)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("setting", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_fits(setting):
    """Mixed precision keeps float32 variables, so the policy and its state stay float32;
    under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64)
    with keras_dtype(setting):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"),
                                  keras.layers.Dense(3, activation="softmax")])
        opt = l2o.load(MIN_MAX)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        loss = model.fit(x, y, batch_size=16, epochs=3, verbose=0).history["loss"]
    wrapped = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (setting == "mixed_float16")
    assert {w.dtype for w in model.trainable_variables} == {"float32"}
    assert _state_dtypes(opt) == {"float32"}
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0], loss


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_float64_variable_gets_the_float64_rnnprop_update(fused, monkeypatch):
    """On float64 variables the policy computes in float64: the variable follows the
    independent float64 numpy RNNProp to 1e-12 (float32 arithmetic is off by ~1e-7),
    whichever LSTM path is switched on."""
    monkeypatch.setattr(layers, "FUSED_LSTM", fused)
    opt = l2o.load(MIN_MAX)
    rng = np.random.default_rng(0)
    grads = [rng.normal(scale=10.0 ** rng.uniform(-4, 0), size=(3, 4)) for _ in range(5)]
    var = tf.Variable(tf.zeros([3, 4], tf.float64))
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
    weights = {k: v.astype(np.float64) for k, v in opt.policy.get_weights().items()}
    expected = -np.sum(np_rnnprop(weights, grads), axis=0).reshape(3, 4)
    np.testing.assert_allclose(var.numpy(), expected, rtol=0, atol=1e-12)
    assert np.abs(expected).max() > 1e-2  # the comparison is not vacuous
    assert var.dtype == "float64" and _state_dtypes(opt) == {"float64"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_variable_trains_with_float32_state(dtype):
    """Raw 16-bit variables: state and arithmetic in float32, the update cast to the variable.

    One coordinate starts at its optimum, so its first gradient is exactly 0: in 16-bit
    arithmetic RNNProp's ``epsilon = 1e-10`` is 0 in float16 and that step would be 0/0.
    """
    opt = l2o.load(MIN_MAX)
    target = tf.constant([[0.5, -0.5, 0.25], [1.0, 0.5, 0.75]], dtype)
    var = tf.Variable(tf.constant([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype))

    def loss():
        return tf.reduce_sum(tf.cast(var - target, tf.float32) ** 2)

    losses = []
    for _ in range(20):
        with tf.GradientTape() as tape:
            value = loss()
        losses.append(float(value))
        opt.apply_gradients([(tape.gradient(value, var), var)])
    losses.append(float(loss()))
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(np.asarray(var.numpy(), np.float32)))
    assert losses[-1] < 0.2 * losses[0], losses
    assert var.dtype == dtype and _state_dtypes(opt) == {"float32"}


POLICIES = [
    ("AdamOptimizer", {"trainable": True}),
    ("AbstractChoiceOptimizer", {"debug": True, "lr_multiplier_scale": 1.0}),
    ("ChoiceOptimizer", {"debug": True}),
    ("ChoiceLargeOptimizer", {"debug": True}),
    ("DMOptimizer", {}),
]


@pytest.mark.parametrize("name,config", POLICIES, ids=[p[0] for p in POLICIES])
def test_other_policies_on_float64_variables(name, config):
    """Analytical and choice policies run in float64 on float64 variables and give the
    update they give in float32, up to float32 rounding; the choice debug sums too."""
    keras.utils.set_random_seed(1)
    policy = build_policy(name, config)
    g = np.random.default_rng(1).normal(size=(2, 3))
    values = {}
    for dtype in ("float32", "float64"):
        opt = policy.as_optimizer()
        var = tf.Variable(tf.zeros([2, 3], dtype))
        for _ in range(3):
            opt.apply_gradients([(tf.constant(g, dtype), var)])
        assert _state_dtypes(opt) == {dtype}
        values[dtype] = var.numpy()
        if policy.debug:
            assert all(np.asarray(v).dtype == dtype for v in opt.debug_summary([var]).values())
    assert np.all(np.isfinite(values["float64"])) and np.abs(values["float64"]).max() > 1e-4
    np.testing.assert_allclose(values["float64"], values["float32"], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name,config", POLICIES[:4] + [("RNNPropOptimizer", {})],
                         ids=[p[0] for p in POLICIES[:4]] + ["RNNPropOptimizer"])
def test_init_state_is_in_the_parameters_dtype(name, config):
    """A policy used on its own (no Keras adapter) keeps its float state in the parameter's
    dtype, so its step concatenates state and features of one dtype."""
    state = build_policy(name, config).init_state(tf.zeros([2, 3], tf.float64))
    floats = [leaf.dtype for leaf in tf.nest.flatten(state) if leaf.dtype.is_floating]
    assert floats and set(floats) == {tf.float64}


def test_sgd_on_float64_is_exact():
    """An analytical rule on float64 keeps float64 precision (float32 would round g)."""
    opt = l2o.build_analytical_optimizer("SGD", {"learning_rate": 0.1})
    var = tf.Variable(tf.zeros([2], tf.float64))
    g = np.array([np.pi * 1e-9, -np.e * 1e-40])
    opt.apply_gradients([(tf.constant(g), var)])
    np.testing.assert_array_equal(var.numpy(), -0.1 * g)


def test_non_float_variable_is_one_clear_error():
    opt = l2o.build_analytical_optimizer("Adam")
    with pytest.raises(l2o.L2OError, match="trains float variables .* not int32"):
        opt.apply_gradients([(tf.constant([1, 1]), tf.Variable([1, 2]))])
