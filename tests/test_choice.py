"""Choice policies (AbstractChoice, Choice, ChoiceLarge), DMOptimizer and RNNPropExtended."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import l2o
from l2o.config.defaults import POLICIES
from l2o.errors import L2OError
from l2o.policies import build_policy
from l2o.policies.choice import softmax

KEYS = ["dmoptimizer", "choice", "rnnprop_ext", "choice_large", "more_choice", "less_choice",
        "less_choice_sgd"]
SMALL_POOL = [
    {"class_name": "RMSProp", "config": {"learning_rate": 0.005, "rho": 0.9}},
    {"class_name": "Adam", "config": {"learning_rate": 0.02, "beta_1": 0.9, "beta_2": 0.999,
                                      "epsilon": 1e-10}},
]


def _from_key(key, **extra):
    spec = POLICIES[key]
    return build_policy(spec["policy_constructor"], spec["policy"], **extra)


def _small_choice(**config):
    config = dict({"pool": SMALL_POOL, "layers": [4]}, **config)
    return build_policy("AbstractChoiceOptimizer", config)


@pytest.mark.parametrize("key", KEYS)
def test_builds_from_spec_config_and_steps(key):
    policy = _from_key(key)
    rng = np.random.default_rng(0)
    for shape in [(5,), (3, 4), (2, 3, 2, 2)]:
        param = tf.constant(rng.normal(size=shape), tf.float32)
        state = policy.init_state(param)
        for _ in range(3):
            grad = tf.constant(rng.normal(size=shape), tf.float32)
            delta, new_state = policy.step(param, grad, state, training=True)
            tf.nest.assert_same_structure(state, new_state)
            for old, new in zip(tf.nest.flatten(state), tf.nest.flatten(new_state)):
                assert old.shape == new.shape and old.dtype == new.dtype
            assert delta.shape == param.shape
            assert np.all(np.isfinite(delta.numpy()))
            state = new_state


def test_stable_softmax():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    naive = np.exp(w) / (np.exp(w).sum(1, keepdims=True) + 1e-10)
    np.testing.assert_allclose(softmax(w).numpy(), naive, rtol=1e-6)
    big = softmax(tf.constant([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]])).numpy()
    assert np.all(np.isfinite(big))
    np.testing.assert_allclose(big, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)


def test_gumbel_softmax_training_and_argmax_otherwise():
    w = tf.constant(np.random.default_rng(2).normal(size=(50, 4)), tf.float32)
    soft = softmax(w, hardness=2.0, training=True).numpy()
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-5)
    assert np.all(soft >= 0) and np.all(np.isfinite(soft))
    hard = softmax(w, hardness=2.0, training=False).numpy()
    np.testing.assert_array_equal(hard, np.eye(4)[np.argmax(w.numpy(), 1)])


def test_forced_choice_reproduces_pool_member():
    policy = _small_choice()
    policy.choice.kernel.assign(tf.zeros_like(policy.choice.kernel))
    policy.choice.bias.assign([50.0, 0.0])
    rmsprop = build_policy("RMSPropOptimizer", SMALL_POOL[0]["config"])
    rng = np.random.default_rng(3)
    param = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    state, reference = policy.init_state(param), rmsprop.init_state(param)
    for _ in range(4):
        grad = tf.constant(rng.normal(size=(3, 4)), tf.float32)
        delta, state = policy.step(param, grad, state)
        expected, reference = rmsprop.step(param, grad, reference)
        np.testing.assert_allclose(delta.numpy(), expected.numpy(), rtol=1e-6)


def test_time_feature_and_warmup_mask():
    policy = _small_choice()
    param = tf.zeros([2, 3])
    state = policy.init_state(param)
    assert state["time"].dtype == tf.int64
    for t in range(3):
        assert int(state["time"]) == t
        new_state = policy.step(param, tf.ones([2, 3]), state)[1]
        masked = policy.warmup_mask(state, new_state)
        np.testing.assert_array_equal(masked["rnn_0"][0].numpy(), state["rnn_0"][0].numpy())
        assert not np.allclose(new_state["rnn_0"][0].numpy(), state["rnn_0"][0].numpy())
        assert int(masked["time"]) == t + 1
        np.testing.assert_array_equal(masked["choices"][0]["v"].numpy(),
                                      new_state["choices"][0]["v"].numpy())
        state = new_state
    both = _small_choice(warmup_lstm_update=True)
    s = both.init_state(param)
    s2 = both.step(param, tf.ones([2, 3]), s)[1]
    assert both.warmup_mask(s, s2) is s2


def test_lr_multiplier_starts_at_one_and_is_differentiable_in_tf_function():
    policy = _small_choice(lr_multiplier_scale=0.5, hardness=1.0, debug=True)
    assert "lr_multiplier/kernel" in policy.named_weights()
    param = tf.ones([4])

    @tf.function
    def unroll():
        with tf.GradientTape() as tape:
            state = policy.init_state(param)
            total = 0.0
            for _ in range(2):
                delta, state = policy.step(param, tf.ones([4]), state, training=True)
                total += tf.reduce_sum(delta)
        return state, tape.gradient(total, policy.choice.kernel)

    state, grad = unroll()
    np.testing.assert_allclose(state["_learning_rate"].numpy(), [4.0, 4.0], rtol=1e-6)
    assert np.all(np.isfinite(grad.numpy()))


def test_keras_fit_and_debug_summary():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    opt = l2o.LearnedOptimizer(_small_choice(debug=True), warmup=1)
    model.compile(optimizer=opt, loss="mse")
    x = np.random.default_rng(4).normal(size=(8, 3)).astype(np.float32)
    history = model.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    summary = opt.debug_summary(model.trainable_variables)
    choices = [v for k, v in summary.items() if k.startswith("_choices_")]
    assert len(choices) == len(model.trainable_variables)
    for value in choices:
        assert value.shape == (2,)
        np.testing.assert_allclose(float(tf.reduce_sum(value)), 1.0, rtol=1e-4)


def test_perturbation_rejected_and_bad_pool():
    with pytest.raises(L2OError):
        _small_choice(perturbation={"class_name": "RandomPerturbation", "config": {}})
    with pytest.raises(L2OError, match="valid: .*AddSign"):
        _small_choice(pool=[{"class_name": "Adamm"}])
    with pytest.raises(L2OError):
        _small_choice(pool=[{"class_name": "RNNProp"}])


def _force(policy, index):
    policy.choice.kernel.assign(tf.zeros_like(policy.choice.kernel))
    policy.choice.bias.assign(50.0 * tf.one_hot(index, policy.choice.bias.shape[0]))


def test_legacy_choices_forced_to_one_term():
    rng = np.random.default_rng(5)
    grads = [rng.normal(size=(6,)).astype(np.float32) for _ in range(3)]
    large, small = _from_key("choice_large"), _from_key("choice")
    _force(large, 3)  # the adam term, default rate 0.005
    _force(small, 1)  # the normalised gradient, learning_rate 0.001
    param = tf.zeros([6])
    s_large, s_small = large.init_state(param), small.init_state(param)
    m = v = 0.0
    for g in grads:
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        d = np.sqrt(v / 0.001 + 1e-10)
        d_large, s_large = large.step(param, tf.constant(g), s_large)
        d_small, s_small = small.step(param, tf.constant(g), s_small)
        np.testing.assert_allclose(d_large.numpy(), 0.005 * (m / 0.1) / d, rtol=1e-5)
        np.testing.assert_allclose(d_small.numpy(), 0.001 * g / d, rtol=1e-5)
    assert int(s_large["time"]) == 3


def test_rnnprop_extended_starts_still_and_config_round_trip():
    policy = _from_key("rnnprop_ext")
    param = tf.ones([3])
    delta, _ = policy.step(param, tf.ones([3]), policy.init_state(param))
    np.testing.assert_array_equal(delta.numpy(), 0.0)
    choice = _small_choice(hardness=3.0)
    copy = l2o.optimizer._policy_from_config(l2o.optimizer.policy_to_config(choice))
    grad = tf.constant([0.5, -1.0, 2.0])
    a = choice.step(param, grad, choice.init_state(param))[0]
    b = copy.step(param, grad, copy.init_state(param))[0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
