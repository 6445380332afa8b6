"""RNNProp (Lv et al. 2017), the student of Optimizer Amalgamation, and its LR variants.

Per coordinate: Adam-style moments with the time-independent correction, features
``[m~, g~]`` (corrected moment and gradient divided by the RMS), a stack of LSTMs and a
``tanh`` Dense(1) head scaled by ``alpha``, so ``|delta| <= alpha``. Every weight read goes
through the perturbation hook when ``training`` (stability-aware amalgamation).

The LSTM state of a parameter with N scalars is held feature-major, ``h`` and ``c`` of shape
``[units, N]`` (one column per coordinate): the faster layout of ``layers.run_columns``.
"""

import tensorflow as tf

from l2o import draws
from l2o.policies.base import Policy, register, rnnprop_features
from l2o.policies.layers import Dense, column_state, lstm_stack, run_columns


class _RNNPropFamily(Policy):
    """Shared network and state of RNNProp, AdamLR and RMSPropLR."""

    perturbable = True

    @property
    def coordinatewise(self):
        """The LSTM runs on each coordinate alone, unless a perturbation draws fresh noise
        at every weight read: then each tensor's step keeps drawing its own noise."""
        return not self.perturbation.draws_per_read

    def init_layers(self, layers=(20, 20), beta_1=0.9, beta_2=0.999, alpha=0.1, epsilon=1e-10,
                    warmup_lstm_update=True, input_noise=0.0, **cell_kwargs):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        self.warmup_lstm_update = bool(warmup_lstm_update)
        self.input_noise = float(input_noise)
        self.recurrent = lstm_stack(2, list(layers), cell_kwargs)
        self.delta = Dense(list(layers)[-1], 1, activation="tanh")

    def init_state(self, param):
        """Moments and LSTM state in ``param``'s dtype: the policy computes in that dtype."""
        n = tf.size(param)
        state = column_state(self.recurrent, n, param.dtype)
        state["m"] = tf.zeros_like(param)
        state["v"] = tf.zeros_like(param)
        return state

    def warmup_mask(self, state, new_state):
        if self.warmup_lstm_update:
            return new_state
        return {k: (state[k] if k.startswith("rnn_") else v) for k, v in new_state.items()}

    def _features(self, grad, state, training):
        """Noisy gradient, new moments, and the normalised features m~, g~."""
        if training and self.input_noise > 0:
            grad = grad + draws.normal(tf.shape(grad), stddev=self.input_noise, dtype=grad.dtype)
        m, v, m_tilde, g_tilde = rnnprop_features(grad, state["m"], state["v"], self.beta_1,
                                                  self.beta_2, self.epsilon)
        return grad, m, v, m_tilde, g_tilde

    def _network(self, m_tilde, g_tilde, state, training):
        read = self.reader(training)
        rows = [tf.reshape(m_tilde, [1, -1]), tf.reshape(g_tilde, [1, -1])]
        h, new_state = run_columns(self.recurrent, rows, state, read)
        return self.delta.columns(h, read), new_state

    def _direction(self, out, m_tilde, g_tilde):
        raise NotImplementedError

    def step(self, param, grad, state, training=False):
        grad, m, v, m_tilde, g_tilde = self._features(grad, state, training)
        out, new_state = self._network(m_tilde, g_tilde, state, training)
        delta = self._direction(tf.reshape(out, tf.shape(param)), m_tilde, g_tilde)
        new_state["m"] = m
        new_state["v"] = v
        return delta, new_state


@register
class RNNPropOptimizer(_RNNPropFamily):
    """RNNProp: ``delta = alpha * tanh(Dense(LSTM([m~, g~])))``."""

    def _direction(self, out, m_tilde, g_tilde):
        return self.alpha * out


@register
class AdamLROptimizer(_RNNPropFamily):
    """Adam direction with a learned per-coordinate step in [alpha/e, alpha*e]."""

    def _direction(self, out, m_tilde, g_tilde):
        return self.alpha * tf.exp(out) * m_tilde


@register
class RMSPropLROptimizer(_RNNPropFamily):
    """RMSProp direction with a learned per-coordinate step in [alpha/e, alpha*e]."""

    def _direction(self, out, m_tilde, g_tilde):
        return self.alpha * tf.exp(out) * g_tilde
