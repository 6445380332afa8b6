"""Choice policies: an LSTM picks, per coordinate, a soft mix of candidate update rules.

``AbstractChoiceOptimizer`` is the choice teacher of Optimizer Amalgamation: it runs a pool
of analytical rules side by side and blends their updates with learned softmax weights.
``ChoiceOptimizer`` (2 terms) and ``ChoiceLargeOptimizer`` (6 terms) are the older variants
that compute their candidate terms inline instead of through pool members.

Deviation from the reference: the softmax is max-shifted (the reference exponentiated raw
logits and overflowed to NaN for large ones); the result is unchanged up to the ``+eps``
of the denominator. The networks are not perturbable.

A choice policy computes in its parameter's dtype (float32, or float64 for float64 variables
in the Keras optimizer): its LSTM state, meta features and debug sums are made in that dtype.
"""

import numpy as np
import tensorflow as tf

from l2o import draws
from l2o.errors import L2OError, unknown
from l2o.policies.analytical import Analytical
from l2o.policies.base import (Policy, build_policy, get_policy_class, policy_names,
                               register, rnnprop_features)
from l2o.policies.layers import Dense, lstm_stack, run_stack, stack_state

_TINY = float(np.finfo(np.float32).tiny)


def softmax(logits, hardness=0.0, training=False, epsilon=1e-10):
    """Row-wise choice weights from ``logits`` [N, K].

    hardness 0: ``exp(w) / (sum exp(w) + eps)``, evaluated after subtracting the row maximum
    so that large logits stay finite. hardness > 0: a Gumbel-softmax sample with temperature
    ``1/hardness`` while training, and the one-hot of the argmax otherwise.
    """
    logits = tf.convert_to_tensor(logits)
    if hardness <= 0:
        shifted = logits - tf.stop_gradient(tf.reduce_max(logits, axis=1, keepdims=True))
        z = tf.exp(shifted)
        return z / (tf.reduce_sum(z, axis=1, keepdims=True) + epsilon)
    if training:
        uniform = draws.uniform(tf.shape(logits), minval=_TINY, maxval=1.0, dtype=logits.dtype)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        return tf.nn.softmax((logits + gumbel) * hardness, axis=1)
    return tf.one_hot(tf.argmax(logits, axis=1), logits.shape[-1], dtype=logits.dtype)


def _rows(x):
    """A tensor as one column of coordinates, [N, 1]."""
    return tf.reshape(x, [-1, 1])


def _hold_rnn(state, new_state):
    """Warmup mask keeping the LSTM states, letting everything else advance."""
    return {k: (state[k] if k.startswith("rnn_") else v) for k, v in new_state.items()}


def _pool_member(entry, index):
    """An analytical policy built from a pool entry ``{"class_name": "Adam", "config": {}}``."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise L2OError(f"choice pool entry {index} must be a dict with 'class_name' and "
                       f"'config', got {entry!r}")
    extra = sorted(set(entry) - {"class_name", "config"})
    if extra:
        raise L2OError(
            f"choice pool entry {index} has unknown keys {extra}; valid: class_name, config")
    name = str(entry["class_name"])
    if not name.endswith("Optimizer"):
        name += "Optimizer"
    if name not in _analytical_names():
        raise unknown(f"choice pool entry {index} class_name", entry["class_name"],
                      [n[:-len("Optimizer")] for n in _analytical_names()])
    return build_policy(name, entry.get("config") or {})


def _analytical_names():
    return [n for n in policy_names() if issubclass(get_policy_class(n), Analytical)]


#: The large pool (``more_choice``), the default of AbstractChoiceOptimizer.
DEFAULT_POOL = [
    {"class_name": "SGD", "config": {"learning_rate": 2.0}},
    {"class_name": "Momentum", "config": {"learning_rate": 2.0, "beta_1": 0.9}},
    {"class_name": "RMSProp", "config": {"learning_rate": 0.005, "rho": 0.9}},
    {"class_name": "Adam", "config": {"learning_rate": 0.02, "beta_1": 0.9, "beta_2": 0.999,
                                      "epsilon": 1e-10}},
    {"class_name": "PowerSign", "config": {"learning_rate": 1.0, "beta_1": 0.9, "beta_2": 0.999,
                                           "epsilon": 1e-10}},
    {"class_name": "AddSign", "config": {"learning_rate": 1.0, "beta_1": 0.9, "beta_2": 0.999,
                                         "epsilon": 1e-10}},
]


@register
class AbstractChoiceOptimizer(Policy):
    """Per-coordinate learned mixture of a pool of analytical rules (the choice teacher).

    Each step every pool member proposes its update ``u_k`` (its own learning rate
    included). An LSTM reads ``[u_1..u_K, tau, rank==1, rank==2, rank==3]`` and a linear
    Dense(K) turns its output into logits; ``delta = learning_rate * sum_k w_k u_k`` with
    ``w = softmax(logits)``. With ``lr_multiplier_scale > 0`` each ``u_k`` is first scaled
    by a learned ``exp(scale * tanh(.))`` (zero-initialised, so it starts at 1).

    State: ``rnn_i``, ``time`` (int64 step count, with meta features) and ``choices`` (the
    members' states in pool order); with ``debug``, ``_choices`` (weights summed over the
    coordinates, [K]) and ``_learning_rate`` (multipliers summed likewise).
    """

    def init_layers(self, layers=(20, 20), learning_rate=1.0, epsilon=1e-10, hardness=0.0,
                    use_meta_features=True, time_scale=2000.0, lr_multiplier_scale=0.0,
                    warmup_lstm_update=False, pool=None, **cell_kwargs):
        if pool is None:
            pool = DEFAULT_POOL
        if not isinstance(pool, (list, tuple)) or not pool:
            raise L2OError(f"choice pool must be a non-empty list of pool entries, got {pool!r}")
        self.pool = [_pool_member(entry, i) for i, entry in enumerate(pool)]
        self.learning_rate = float(learning_rate)
        self.epsilon = float(epsilon)
        self.hardness = float(hardness)
        self.use_meta_features = bool(use_meta_features)
        self.time_scale = float(time_scale)
        self.lr_multiplier_scale = float(lr_multiplier_scale)
        self.warmup_lstm_update = bool(warmup_lstm_update)
        k = len(self.pool)
        layers = list(layers)
        self.recurrent = lstm_stack(k + (4 if self.use_meta_features else 0), layers, cell_kwargs)
        self.choice = Dense(layers[-1], k)
        if self.lr_multiplier_scale > 0:
            self.lr_multiplier = Dense(layers[-1], k, kernel_initializer="zeros")

    def init_state(self, param):
        state = stack_state(self.recurrent, tf.size(param), param.dtype)
        if self.use_meta_features:
            state["time"] = tf.constant(0, tf.int64)
        state["choices"] = [member.init_state(param) for member in self.pool]
        if self.debug:
            state["_choices"] = tf.zeros([len(self.pool)], param.dtype)
            if self.lr_multiplier_scale > 0:
                state["_learning_rate"] = tf.zeros([len(self.pool)], param.dtype)
        return state

    def warmup_mask(self, state, new_state):
        if self.warmup_lstm_update:
            return new_state
        return _hold_rnn(state, new_state)

    def _meta_features(self, param, time, rows):
        """``[tau, rank==1, rank==2, rank==3]`` repeated for every coordinate, [N, 4], in
        ``param``'s dtype."""
        rank = param.shape.rank
        tau = tf.cast(time, param.dtype) / self.time_scale
        flags = tf.constant([float(rank == r) for r in (1, 2, 3)], param.dtype)
        features = tf.concat([tf.reshape(tau, [1]), flags], 0)
        return tf.broadcast_to(features[None, :], [rows, 4])

    def step(self, param, grad, state, training=False):
        read = self.reader(training)
        updates, member_states = [], []
        for member, member_state in zip(self.pool, state["choices"]):
            update, new_member_state = member.step(param, grad, member_state, training)
            updates.append(tf.reshape(update, [-1]))
            member_states.append(new_member_state)
        updates = tf.stack(updates, axis=1)  # [N, K]

        x = updates
        if self.use_meta_features:
            x = tf.concat([x, self._meta_features(param, state["time"], tf.shape(updates)[0])], 1)
        h, new_state = run_stack(self.recurrent, x, state, read)
        weights = softmax(self.choice(h, read), self.hardness, training, self.epsilon)

        if self.lr_multiplier_scale > 0:
            multiplier = tf.exp(self.lr_multiplier_scale * tf.tanh(self.lr_multiplier(h, read)))
            updates = updates * multiplier

        delta = self.learning_rate * tf.reduce_sum(weights * updates, axis=1)
        if self.use_meta_features:
            new_state["time"] = state["time"] + 1
        new_state["choices"] = member_states
        if self.debug:
            new_state["_choices"] = tf.reduce_sum(weights, axis=0)
            if self.lr_multiplier_scale > 0:
                new_state["_learning_rate"] = tf.reduce_sum(multiplier, axis=0)
        return tf.reshape(delta, tf.shape(param)), new_state


@register
class ChoiceOptimizer(Policy):
    """Legacy 2-way choice between an RMS-scaled momentum and the normalised gradient.

    Features as RNNProp (``[m~, g~]`` into the LSTMs), a Dense(2) for the logits, and
    ``delta = lr * (w_0 * m / sqrt(v + eps) + w_1 * g~)``; the first term uses the raw
    (uncorrected) moments, as in the reference.
    """

    def init_layers(self, layers=(20, 20), beta_1=0.9, beta_2=0.999, learning_rate=0.001,
                    epsilon=1e-10, hardness=0.0, **cell_kwargs):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.learning_rate = float(learning_rate)
        self.epsilon = float(epsilon)
        self.hardness = float(hardness)
        layers = list(layers)
        self.recurrent = lstm_stack(2, layers, cell_kwargs)
        self.choice = Dense(layers[-1], 2)

    def init_state(self, param):
        state = stack_state(self.recurrent, tf.size(param), param.dtype)
        state["m"] = tf.zeros_like(param)
        state["v"] = tf.zeros_like(param)
        if self.debug:
            state["_choices"] = tf.zeros([2], param.dtype)
        return state

    def step(self, param, grad, state, training=False):
        read = self.reader(training)
        m, v, m_tilde, g_tilde = rnnprop_features(grad, state["m"], state["v"], self.beta_1,
                                                  self.beta_2, self.epsilon)
        x = tf.concat([_rows(m_tilde), _rows(g_tilde)], 1)
        h, new_state = run_stack(self.recurrent, x, state, read)
        weights = softmax(self.choice(h, read), self.hardness, training, self.epsilon)
        terms = tf.concat([_rows(m / tf.sqrt(v + self.epsilon)), _rows(g_tilde)], 1)
        delta = self.learning_rate * tf.reduce_sum(weights * terms, axis=1)
        new_state["m"] = m
        new_state["v"] = v
        if self.debug:
            new_state["_choices"] = tf.reduce_sum(weights, axis=0)
        return tf.reshape(delta, tf.shape(param)), new_state


#: ChoiceLargeOptimizer's terms, in order, with their default learning rates.
LARGE_TERMS = ("sgd", "momentum", "rmsprop", "adam", "powersign", "addsign")
LARGE_LEARNING_RATES = {"sgd": 0.2, "momentum": 0.5, "rmsprop": 0.005, "adam": 0.005,
                        "powersign": 0.1, "addsign": 0.1}


def _large_learning_rates(learning_rate):
    """Per-term learning rates from None (the table), a number, a list of 6, or a dict."""
    if learning_rate is None:
        return [LARGE_LEARNING_RATES[t] for t in LARGE_TERMS]
    if isinstance(learning_rate, dict):
        bad = sorted(set(learning_rate) - set(LARGE_TERMS))
        if bad:
            raise L2OError(f"ChoiceLargeOptimizer learning_rate has unknown terms {bad}; "
                           f"valid: {', '.join(LARGE_TERMS)}")
        table = dict(LARGE_LEARNING_RATES, **learning_rate)
        return [float(table[t]) for t in LARGE_TERMS]
    if isinstance(learning_rate, (list, tuple)):
        if len(learning_rate) != len(LARGE_TERMS):
            raise L2OError(f"ChoiceLargeOptimizer learning_rate needs {len(LARGE_TERMS)} values "
                           f"({', '.join(LARGE_TERMS)}), got {len(learning_rate)}")
        return [float(x) for x in learning_rate]
    return [float(learning_rate)] * len(LARGE_TERMS)


@register
class ChoiceLargeOptimizer(Policy):
    """Legacy 6-way choice among sgd, momentum, rmsprop, adam, powersign and addsign terms.

    The LSTMs read ``[g, m, g~, m~, phi]`` with ``phi = 1 / (1 + t / time_scale)``; a
    Dense(6) plus softmax weighs the terms and ``delta = sum_k lr_k w_k term_k``.
    ``learning_rate`` None uses the built-in per-term table ``LARGE_LEARNING_RATES``.
    """


    def init_layers(self, layers=(20, 20), beta_1=0.9, beta_2=0.999, learning_rate=None,
                    epsilon=1e-10, time_scale=2000.0, **cell_kwargs):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.learning_rates = _large_learning_rates(learning_rate)
        self.epsilon = float(epsilon)
        self.time_scale = float(time_scale)
        layers = list(layers)
        self.recurrent = lstm_stack(5, layers, cell_kwargs)
        self.choice = Dense(layers[-1], len(LARGE_TERMS))

    def init_state(self, param):
        state = stack_state(self.recurrent, tf.size(param), param.dtype)
        state["m"] = tf.zeros_like(param)
        state["v"] = tf.zeros_like(param)
        state["time"] = tf.constant(0, tf.int64)
        if self.debug:
            state["_choices"] = tf.zeros([len(LARGE_TERMS)], param.dtype)
        return state

    def step(self, param, grad, state, training=False):
        read = self.reader(training)
        m, v, m_tilde, g_tilde = rnnprop_features(grad, state["m"], state["v"], self.beta_1,
                                                  self.beta_2, self.epsilon)
        m_tilde, g_tilde = _rows(m_tilde), _rows(g_tilde)
        g, m_rows = _rows(grad), _rows(m)
        phi = 1.0 / (1.0 + tf.cast(state["time"], grad.dtype) / self.time_scale)
        x = tf.concat([g, m_rows, g_tilde, m_tilde, tf.fill(tf.shape(g), phi)], 1)
        h, new_state = run_stack(self.recurrent, x, state, read)
        weights = softmax(self.choice(h, read), 0.0, training, self.epsilon)
        agreement = tf.tanh(g_tilde) * tf.tanh(m_tilde)
        terms = tf.concat([g, m_rows, g_tilde, m_tilde, tf.exp(agreement) * g,
                           (1.0 + agreement) * g], 1)
        rates = tf.constant(self.learning_rates, grad.dtype)
        delta = tf.reduce_sum(rates * weights * terms, axis=1)
        new_state["m"] = m
        new_state["v"] = v
        new_state["time"] = state["time"] + 1
        if self.debug:
            new_state["_choices"] = tf.reduce_sum(weights, axis=0)
        return tf.reshape(delta, tf.shape(param)), new_state
