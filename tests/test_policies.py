"""The analytical rules and RNNProp against independent numpy implementations."""

import numpy as np
import pytest
import tensorflow as tf

import l2o
from l2o.config.defaults import LSTM_CELL_KWARGS
from l2o.errors import L2OError
from l2o.policies import build_policy

STEPS = 20


def hp(policy, name):
    """A hyperparameter exactly as the policy holds it (float32 when trainable)."""
    return float(getattr(policy, name).numpy() if policy.trainable else getattr(policy, name))


def _np_moments(g, s, p):
    b1, b2 = hp(p, "beta_1"), hp(p, "beta_2")
    return b1 * s.get("m", 0) + (1 - b1) * g, b2 * s.get("v", 0) + (1 - b2) * g * g


def np_sgd(g, s, p):
    return hp(p, "learning_rate") * g, s


def np_momentum(g, s, p):
    m = hp(p, "beta_1") * s.get("m", 0) + (1 - hp(p, "beta_1")) * g
    return hp(p, "learning_rate") * m, {"m": m}


def np_rmsprop(g, s, p):
    v = hp(p, "rho") * s.get("v", 0) + (1 - hp(p, "rho")) * g * g
    return hp(p, "learning_rate") * g / np.sqrt(v + p.epsilon), {"v": v}


def np_adam(g, s, p):
    m, v = _np_moments(g, s, p)
    m_hat = m / (1 - hp(p, "beta_1"))
    v_hat = v / (1 - hp(p, "beta_2"))
    return hp(p, "learning_rate") * m_hat / np.sqrt(v_hat + p.epsilon), {"m": m, "v": v}


def _np_sign(kind, adaptive):
    def rule(g, s, p):
        m, v = _np_moments(g, s, p)
        d = np.sqrt(v + p.epsilon)
        a = np.tanh(g / d) * np.tanh(m / d)
        factor = np.exp(a) if kind == "power" else 1 + a
        return hp(p, "learning_rate") * factor * (g / d if adaptive else g), {"m": m, "v": v}
    return rule


CASES = [
    ("SGDOptimizer", {"learning_rate": 0.2}, np_sgd),
    ("MomentumOptimizer", {"learning_rate": 0.5, "beta_1": 0.9}, np_momentum),
    ("RMSPropOptimizer", {"learning_rate": 0.005, "rho": 0.9, "epsilon": 1e-10}, np_rmsprop),
    ("AdamOptimizer", {"learning_rate": 0.005, "epsilon": 1e-10}, np_adam),
    ("AdamOptimizer", {}, np_adam),
    ("PowerSignOptimizer", {"learning_rate": 0.1, "epsilon": 1e-10}, _np_sign("power", False)),
    ("AddSignOptimizer", {"learning_rate": 0.1, "epsilon": 1e-10}, _np_sign("add", False)),
    ("AdaptivePowerSignOptimizer", {"learning_rate": 0.1}, _np_sign("power", True)),
    ("AdaptiveAddSignOptimizer", {"learning_rate": 0.1}, _np_sign("add", True)),
]


@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("name,config,rule", CASES, ids=[c[0] for c in CASES])
def test_analytical_matches_numpy(name, config, rule, trainable):
    rng = np.random.default_rng(0)
    policy = build_policy(name, dict(config, trainable=trainable))
    assert bool(policy.trainable_variables) == trainable
    param = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    state = policy.init_state(param)
    np_state = {}
    for _ in range(STEPS):
        g = rng.normal(size=(3, 4)).astype(np.float32)
        delta, state = policy.step(param, tf.constant(g), state)
        expected, np_state = rule(g.astype(np.float64), np_state, policy)
        # relative error of the step as a whole (max-norm): single entries that cancel to
        # ~1e-3 of the step carry float32 rounding of the terms that cancelled
        error = np.max(np.abs(delta.numpy() - expected)) / np.max(np.abs(expected))
        assert error < 1e-6, error


def np_rnnprop(weights, grads, beta_1=0.9, beta_2=0.999, alpha=0.1, eps=1e-10):
    """SPEC 4.3 written independently, in float64."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    n = grads[0].size
    m = np.zeros(n)
    v = np.zeros(n)
    hs = [np.zeros((n, 20)), np.zeros((n, 20))]
    cs = [np.zeros((n, 20)), np.zeros((n, 20))]
    deltas = []
    for g in grads:
        g = g.reshape(-1).astype(np.float64)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        d = np.sqrt(v / (1 - beta_2) + eps)
        x = np.stack([m / (1 - beta_1) / d, g / d], 1)
        for i in range(2):
            k, r, b = (weights[f"recurrent/{i}/{w}"] for w in ("kernel", "recurrent_kernel", "bias"))
            z = x @ k + hs[i] @ r + b
            zi, zf, zc, zo = np.split(z, 4, axis=1)
            cs[i] = sig(zf) * cs[i] + sig(zi) * np.tanh(zc)
            hs[i] = sig(zo) * np.tanh(cs[i])
            x = hs[i]
        deltas.append(alpha * np.tanh(x @ weights["delta/kernel"] + weights["delta/bias"]))
    return deltas


def check_rnnprop_against_numpy(policy, weights, rng, shape, steps, atol, floor):
    """Run ``policy`` and :func:`np_rnnprop` on the same random gradients; compare deltas."""
    grads = [rng.normal(scale=10.0 ** rng.uniform(-4, 0), size=shape).astype(np.float32)
             for _ in range(steps)]
    param = tf.zeros(shape)
    state = policy.init_state(param)
    expected = np_rnnprop(weights, grads)
    for g, e in zip(grads, expected):
        delta, state = policy.step(param, tf.constant(g), state)
        assert delta.shape == shape
        np.testing.assert_allclose(delta.numpy().reshape(-1), e.reshape(-1), atol=atol, rtol=0)
    assert np.abs(np.concatenate(expected)).max() > floor  # the check is not vacuous


def test_rnnprop_random_weights_match_numpy():
    """Gate order, feature order and head on seeded random weights; needs no reference files."""
    policy = build_policy("RNNPropOptimizer", {"layers": [20, 20]})
    rng = np.random.default_rng(3)
    weights = {k: rng.normal(scale=0.6, size=v.shape) for k, v in policy.get_weights().items()}
    policy.set_weights({k: v.astype(np.float32) for k, v in weights.items()})
    check_rnnprop_against_numpy(policy, weights, rng, (4, 6), 6, atol=2e-5, floor=1e-2)


def test_rnnprop_pretrained_matches_numpy(pretrained):
    policy = l2o.load_policy(f"{pretrained}/choice-large/7")
    weights = {k: v.astype(np.float64) for k, v in policy.get_weights().items()}
    check_rnnprop_against_numpy(policy, weights, np.random.default_rng(1), (5, 7), 5,
                                atol=1e-5, floor=1e-3)


def test_rnnprop_warmup_mask_and_noise():
    policy = build_policy("RNNPropOptimizer", {"warmup_lstm_update": False, "input_noise": 0.1})
    param = tf.zeros([4])
    state = policy.init_state(param)
    _, new = policy.step(param, tf.ones([4]), state)
    masked = policy.warmup_mask(state, new)
    assert np.all(masked["rnn_0"][0].numpy() == 0) and np.all(masked["m"].numpy() == new["m"].numpy())
    # a second step, where the features depend on the gradient's size, not only its sign
    d1, _ = policy.step(param, tf.fill([4], 0.3), new, training=False)
    d2, _ = policy.step(param, tf.fill([4], 0.3), new, training=False)
    np.testing.assert_array_equal(d1.numpy(), d2.numpy())  # no noise at evaluation
    d3, _ = policy.step(param, tf.fill([4], 0.3), new, training=True)
    assert not np.allclose(d1.numpy(), d3.numpy())  # noise when training


def test_registry_errors():
    with pytest.raises(l2o.L2OError, match="unknown policy 'Nope'.*RNNPropOptimizer"):
        build_policy("Nope")
    with pytest.raises(l2o.L2OError, match="bad arguments for policy AdamOptimizer"):
        build_policy("AdamOptimizer", {"learnin_rate": 1.0})
    with pytest.raises(l2o.L2OError, match="no perturbable weights"):
        build_policy("AdamOptimizer", {"perturbation": {"class_name": "FGSMPerturbation",
                                                        "config": {"step_size": 0.1}}})
    assert {"RNNPropOptimizer", "AdamOptimizer", "AdaptiveAddSignOptimizer"} <= set(l2o.policy_names())


def test_lstm_column_layout_equals_row_layout():
    """The feature-major fast path of layers.LSTM/Dense is the same maths as the row one."""
    from l2o.policies.layers import Dense, lstm_stack, run_columns, run_stack, stack_state

    tf.keras.utils.set_random_seed(3)
    stack = lstm_stack(2, [5, 4], {"use_bias": True})
    head = Dense(4, 1, activation="tanh")
    x = tf.random.normal([7, 2])
    rows_state = stack_state(stack, 7)
    cols_state = {k: [tf.transpose(t) for t in v] for k, v in rows_state.items()}
    for _ in range(3):
        h_rows, rows_state = run_stack(stack, x, rows_state, tf.convert_to_tensor)
        h_cols, cols_state = run_columns(stack, [tf.transpose(x)], cols_state, tf.convert_to_tensor)
        np.testing.assert_allclose(tf.transpose(h_cols).numpy(), h_rows.numpy(), atol=1e-6)
        np.testing.assert_allclose(tf.transpose(head.columns(h_cols)).numpy(),
                                   head(h_rows).numpy(), atol=1e-6)


def _lstm_unroll(stack, rows, state, read, steps, probe):
    """``steps`` column steps of ``stack`` in a tf.while_loop; a scalar of the outputs."""
    from l2o.policies.layers import run_columns

    def body(k, h, state):
        h, state = run_columns(stack, rows, state, read)
        return k + 1, h, state

    h0 = tf.zeros_like(state["rnn_1"][0])
    _, h, state = tf.while_loop(lambda k, *_: k < steps, body, (0, h0, state))
    return h, state, (tf.reduce_sum(h * probe) + tf.reduce_sum(state["rnn_0"][1] ** 2)
                      + tf.reduce_sum(tf.sin(state["rnn_1"][0])))


@pytest.mark.parametrize("use_bias", [True, False])
def test_fused_lstm_equals_unfused(monkeypatch, use_bias):
    """The fused LSTM column step (custom gradient, XLA gate maths) is the unfused maths:
    outputs, states and gradients w.r.t. features, states, weights and a perturbation added to
    the weights by the read hook, through a tf.while_loop under a tape in a tf.function."""
    from l2o.policies import layers

    tf.keras.utils.set_random_seed(4)
    stack = layers.lstm_stack(2, [5, 4], dict(LSTM_CELL_KWARGS, use_bias=use_bias))
    assert all(layer.fused for layer in stack)
    weights = [w for layer in stack for w in (layer.kernel, layer.recurrent_kernel)
               + ((layer.bias,) if use_bias else ())]
    eps = {id(w): tf.Variable(tf.random.normal(w.shape, stddev=0.1)) for w in weights}
    eps_vars = list(eps.values())

    def read(w):
        return w + eps[id(w)]

    n = 9
    rows = [tf.random.normal([1, n]), tf.random.normal([1, n])]
    state = {f"rnn_{i}": [tf.random.normal([layer.units, n], stddev=0.5) for _ in range(2)]
             for i, layer in enumerate(stack)}
    probe = tf.random.normal([4, n])

    def run(fused):
        monkeypatch.setattr(layers, "FUSED_LSTM", fused)

        @tf.function
        def go(rows, state):
            with tf.GradientTape() as tape:
                tape.watch([rows, state])
                h, new_state, total = _lstm_unroll(stack, rows, state, read, 3, probe)
            return (h, new_state), tape.gradient(total, [rows, state, weights, eps_vars])
        return go(rows, state)

    (fused_out, fused_grads), (plain_out, plain_grads) = run(True), run(False)
    for got, want in zip(tf.nest.flatten(fused_out), tf.nest.flatten(plain_out)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
    for got, want in zip(tf.nest.flatten(fused_grads), tf.nest.flatten(plain_grads)):
        scale = np.abs(want.numpy()).max()
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5 * scale)


def test_fused_lstm_shapes_and_fallback():
    """One trace of the XLA gate functions serves every number of coordinates; other
    activations take the unfused path."""
    from l2o.policies import layers

    stack = layers.lstm_stack(2, [3], dict(LSTM_CELL_KWARGS))
    traces = []  # counted after the first call: other tests may have traced it elsewhere
    for n in (4, 6, 11):
        h, _ = layers.run_columns(stack, [tf.ones([1, n]), tf.zeros([1, n])],
                                  layers.column_state(stack, n), tf.convert_to_tensor)
        assert h.shape == (3, n)
        traces.append(layers._gates_forward.experimental_get_tracing_count())
    assert traces[1:] == traces[:1] * 2
    assert not layers.LSTM(2, 3, activation="relu").fused
    assert not layers.LSTM(2, 3, recurrent_activation="hard_sigmoid").fused


@pytest.mark.parametrize("cls", ["RNNPropOptimizer", "AbstractChoiceOptimizer", "DMOptimizer"])
@pytest.mark.parametrize("layers", [[], [0], [20, "a"], [True]])
def test_bad_layer_sizes_are_one_line_naming_what_is_valid(cls, layers):
    with pytest.raises(L2OError) as info:
        build_policy(cls, {"layers": layers})
    assert "\n" not in str(info.value) and "positive whole numbers" in str(info.value)
