"""Two more coordinate-wise LSTM policies: DMOptimizer and RNNPropExtendedOptimizer.

``DMOptimizer`` is the "learning to learn by gradient descent by gradient descent"
optimizer (Andrychowicz et al. 2016): the raw gradient through LSTMs and a linear head.
``RNNPropExtendedOptimizer`` is RNNProp with the gradient as an extra feature, the features
fed again after every LSTM layer, and a zero-initialised output head. Neither is
perturbable.
"""

import tensorflow as tf

from l2o.policies.base import Policy, corrected, moments, register
from l2o.policies.layers import LSTM, Dense, lstm_stack, stack_state


@register
class DMOptimizer(Policy):
    """``delta = learning_rate * Dense(LSTM([g]))`` with a linear head; no normalisation.

    The recurrent states are kept under ``lstm_0 .. lstm_{L-1}`` (the reference's keys).
    """

    def init_layers(self, learning_rate=0.1, layers=(20, 20), **cell_kwargs):
        self.learning_rate = float(learning_rate)
        layers = list(layers)
        self.recurrent = lstm_stack(1, layers, cell_kwargs)
        self.delta = Dense(layers[-1], 1)

    def init_state(self, param):
        rnn = stack_state(self.recurrent, tf.size(param), param.dtype)
        return {f"lstm_{i}": rnn[f"rnn_{i}"] for i in range(len(self.recurrent))}

    def step(self, param, grad, state, training=False):
        read = self.reader(training)
        x = tf.reshape(grad, [-1, 1])
        new_state = {}
        for i, layer in enumerate(self.recurrent):
            x, new_state[f"lstm_{i}"] = layer(x, state[f"lstm_{i}"], read)
        delta = self.learning_rate * self.delta(x, read)
        return tf.reshape(delta, tf.shape(param)), new_state


@register
class RNNPropExtendedOptimizer(Policy):
    """RNNProp with features ``f = [g, m~, g~]`` re-joined to every LSTM layer's output.

    The Dense(1) head starts at zero (kernel and bias), so a fresh policy takes no step;
    ``delta = learning_rate * out_activation(Dense(h ++ f))``. State: ``rnn_i``, ``m``, ``v``.
    """

    def init_layers(self, layers=(20, 20), beta_1=0.9, beta_2=0.999, learning_rate=0.001,
                    out_activation="tanh", epsilon=1e-10, **cell_kwargs):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.learning_rate = float(learning_rate)
        self.epsilon = float(epsilon)
        self.recurrent = []
        in_dim = 3
        for units in layers:
            self.recurrent.append(LSTM(in_dim, units, **cell_kwargs))
            in_dim = units + 3
        self.delta = Dense(in_dim, 1, activation=out_activation, kernel_initializer="zeros")

    def init_state(self, param):
        state = stack_state(self.recurrent, tf.size(param))
        state["m"] = tf.zeros_like(param)
        state["v"] = tf.zeros_like(param)
        return state

    def step(self, param, grad, state, training=False):
        read = self.reader(training)
        m, v = moments(grad, state["m"], state["v"], self.beta_1, self.beta_2)
        m_hat, v_hat = corrected(m, v, self.beta_1, self.beta_2)
        rms = tf.sqrt(v_hat + self.epsilon)
        features = tf.stack([tf.reshape(t, [-1]) for t in (grad, m_hat / rms, grad / rms)], 1)
        x = features
        new_state = {}
        for i, layer in enumerate(self.recurrent):
            h, new_state[f"rnn_{i}"] = layer(x, state[f"rnn_{i}"], read)
            x = tf.concat([h, features], 1)
        delta = self.learning_rate * self.delta(x, read)
        new_state["m"] = m
        new_state["v"] = v
        return tf.reshape(delta, tf.shape(param)), new_state
