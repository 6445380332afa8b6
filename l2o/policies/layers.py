"""LSTM and Dense maths on raw weights.

The learned policies run their networks coordinate-wise: a parameter tensor with N
scalars is a batch of N rows. The maths is written here by hand, rather than through
``keras.layers.LSTMCell``, so that every weight read goes through a ``read`` function:
the perturbation hook of stability-aware training (a perturbed weight must be used in
the forward pass while the gradient still reaches the clean weight).

Weight names and shapes follow the Keras 2 layers the released checkpoints were saved
from: LSTM ``kernel`` [in, 4u], ``recurrent_kernel`` [u, 4u], ``bias`` [4u] with gate order
(input, forget, cell, output); Dense ``kernel`` [in, out], ``bias`` [out].
"""

import keras
import tensorflow as tf


def _identity(w):
    return tf.convert_to_tensor(w)


def _activation(name):
    return keras.activations.get(name)


def _init(initializer, shape):
    return keras.initializers.get(initializer)(shape, dtype="float32")


class Dense(tf.Module):
    """``activation(x @ kernel + bias)``."""

    def __init__(self, in_dim, units, activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None):
        super().__init__(name=name)
        self.activation = _activation(activation)
        self.kernel = tf.Variable(_init(kernel_initializer, (in_dim, units)), name="kernel")
        self.bias = tf.Variable(_init(bias_initializer, (units,)), name="bias")

    def __call__(self, x, read=_identity):
        return self.activation(tf.matmul(x, read(self.kernel)) + read(self.bias))


class LSTM(tf.Module):
    """One LSTM layer, Keras semantics (``unit_forget_bias`` sets the forget bias to 1)."""

    def __init__(self, in_dim, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, name=None):
        super().__init__(name=name)
        self.units = units
        self.activation = _activation(activation)
        self.recurrent_activation = _activation(recurrent_activation)
        self.use_bias = use_bias
        self.kernel = tf.Variable(_init(kernel_initializer, (in_dim, 4 * units)), name="kernel")
        self.recurrent_kernel = tf.Variable(
            _init(recurrent_initializer, (units, 4 * units)), name="recurrent_kernel")
        if use_bias:
            bias = _init(bias_initializer, (4 * units,))
            if unit_forget_bias:
                bias = tf.concat([bias[:units], tf.ones([units]), bias[2 * units:]], 0)
            self.bias = tf.Variable(bias, name="bias")

    def initial_state(self, n):
        """Zero ``[h, c]`` for ``n`` coordinates."""
        zeros = tf.zeros([n, self.units])
        return [zeros, zeros]

    def __call__(self, x, state, read=_identity):
        h, c = state
        z = tf.matmul(x, read(self.kernel)) + tf.matmul(h, read(self.recurrent_kernel))
        if self.use_bias:
            z = z + read(self.bias)
        zi, zf, zc, zo = tf.split(z, 4, axis=1)
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = f * c + i * self.activation(zc)
        o = self.recurrent_activation(zo)
        h = o * self.activation(c)
        return h, [h, c]


LSTM_KWARGS = ("activation", "recurrent_activation", "use_bias", "kernel_initializer",
               "recurrent_initializer", "bias_initializer", "unit_forget_bias")


def lstm_stack(in_dim, layers, cell_kwargs):
    """A list of LSTM layers of the given sizes (tracked as ``recurrent/<i>``)."""
    out = []
    for units in layers:
        out.append(LSTM(in_dim, units, **cell_kwargs))
        in_dim = units
    return out


def split_cell_kwargs(config):
    """Separate the LSTM cell kwargs from a policy config."""
    cell = {k: config.pop(k) for k in LSTM_KWARGS if k in config}
    return cell, config


def run_stack(stack, x, state, read):
    """Run ``x`` through the stack; ``state`` is ``{"rnn_0": [h, c], ...}``."""
    new_state = {}
    for i, layer in enumerate(stack):
        x, new_state[f"rnn_{i}"] = layer(x, state[f"rnn_{i}"], read)
    return x, new_state


def stack_state(stack, n):
    return {f"rnn_{i}": layer.initial_state(n) for i, layer in enumerate(stack)}
