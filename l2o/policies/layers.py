"""LSTM and Dense maths on raw weights.

The learned policies run their networks coordinate-wise: a parameter tensor with N
scalars is a batch of N rows. The maths is written here by hand, rather than through
``keras.layers.LSTMCell``, so that every weight read goes through a ``read`` function:
the perturbation hook of stability-aware training (a perturbed weight must be used in
the forward pass while the gradient still reaches the clean weight).

Weight names and shapes follow the Keras 2 layers the released checkpoints were saved
from: LSTM ``kernel`` [in, 4u], ``recurrent_kernel`` [u, 4u], ``bias`` [4u] with gate order
(input, forget, cell, output); Dense ``kernel`` [in, out], ``bias`` [out].

The feature-major LSTM step (:meth:`LSTM.columns`) has a fused form, used by default for the
Keras activations (sigmoid gates, tanh cell): see :func:`fused_columns_step`.

The weights are float32. A layer computes in the dtype of its inputs and state: every weight
read is cast to it (a no-op for float32, an exact widening for float64), so the same policy
runs on float64 coordinates without rounding them to float32.
"""

import keras
import tensorflow as tf


#: Whether :meth:`LSTM.columns` takes the fused step when its activations allow it. Read when
#: a function is traced (a compiled function keeps the path it was traced with); benchmarks
#: and tests flip it to compare the two paths in one process.
FUSED_LSTM = True

_MATRIX = tf.TensorSpec([None, None], tf.float32)


@tf.function(jit_compile=True, input_signature=[_MATRIX, _MATRIX])
def _gates_forward(z, c):
    """The LSTM gate maths on pre-activations ``z`` [4u, N] and cell ``c`` [u, N], in XLA.

    XLA fuses the activations and products into one pass over ``z`` (and vectorises them
    wider than TensorFlow's own element-wise kernels on CPU). Returns ``h`` and the new ``c``;
    nothing else is kept for the backward, which recomputes the gates from ``z``: writing them
    out costs more in the forward than recomputing them costs in the backward.
    """
    zi, zf, zc, zo = tf.split(z, 4, axis=0)
    c_new = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
    return tf.sigmoid(zo) * tf.tanh(c_new), c_new


@tf.function(jit_compile=True, input_signature=[_MATRIX] * 4)
def _gates_backward(z, c, dh, dc_new):
    """The derivative of :func:`_gates_forward`: ``(dz, dc)`` from ``(dh, dc_new)``, in XLA."""
    zi, zf, zc, zo = tf.split(z, 4, axis=0)
    i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zc), tf.sigmoid(zo)
    t = tf.tanh(f * c + i * g)
    dc_total = dc_new + dh * o * (1 - t * t)
    dz = tf.concat([dc_total * g * i * (1 - i), dc_total * c * f * (1 - f),
                    dc_total * i * (1 - g * g), dh * t * o * (1 - o)], axis=0)
    return dz, dc_total * f


@tf.custom_gradient
def fused_columns_step(weights, inputs, c):
    """One feature-major LSTM step (sigmoid gates, tanh cell), with a hand-written gradient.

    ``weights`` [d, 4u] (kernel, recurrent kernel and bias row stacked), ``inputs`` [d, N]
    (features, ``h`` and a row of ones stacked), ``c`` [u, N]. Returns ``(h, c_new)``.

    The same maths as the unfused path of :meth:`LSTM.columns`, split where each part runs
    fastest on CPU: the product ``z = weights^T inputs`` by TensorFlow's (oneDNN) matmul,
    the gates by one XLA function; in the backward, ``dz`` and ``dc`` by one XLA function
    and the two products ``d weights = inputs dz^T``, ``d inputs = weights dz`` by TensorFlow
    again (XLA's own CPU matmul is no faster here). Gradients flow to all three arguments,
    so they reach whatever produced the weights (the perturbation hook) and the state.

    Only the LSTM's own maths goes to XLA: the policy step runs inside larger compiled
    functions that stay out of XLA (whole conv networks run slower under XLA on CPU).
    The gate functions take any number of coordinates N (one trace; XLA compiles once per
    shape it meets, e.g. once per variable shape in the Keras optimizer).
    """
    z = tf.matmul(weights, inputs, transpose_a=True)
    h, c_new = _gates_forward(z, c)

    def grad(dh, dc_new):
        dh = tf.zeros_like(h) if dh is None else dh
        dc_new = tf.zeros_like(c_new) if dc_new is None else dc_new
        dz, dc = _gates_backward(z, c, dh, dc_new)
        # d weights = inputs dz^T, a sum over the N coordinates. As a batch of one matmul it
        # runs in about 0.5-0.7x the time of the plain MatMul with transpose_b here (oneDNN
        # picks another kernel for the batched op); same products, summed in another order.
        d_weights = tf.linalg.matmul(inputs[None], dz[None], transpose_b=True)[0]
        return d_weights, tf.matmul(weights, dz), dc

    return (h, c_new), grad


def _identity(w):
    return tf.convert_to_tensor(w)


def _read_as(read, weight, dtype):
    """``read(weight)`` in ``dtype``: the float32 weight, perturbed when training, cast to the
    dtype the layer computes in (``tf.cast`` returns float32 reads unchanged)."""
    return tf.cast(read(weight), dtype)


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
        kernel, bias = (_read_as(read, w, x.dtype) for w in (self.kernel, self.bias))
        return self.activation(tf.matmul(x, kernel) + bias)

    def columns(self, x, read=_identity):
        """The same layer on feature-major input: ``x`` [in, N] -> [units, N]."""
        kernel, bias = (_read_as(read, w, x.dtype) for w in (self.kernel, self.bias))
        return self.activation(tf.matmul(kernel, x, transpose_a=True) + bias[:, None])


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

    def initial_state(self, n, dtype=tf.float32):
        """Zero ``[h, c]`` for ``n`` coordinates, in the dtype the layer will compute in."""
        zeros = tf.zeros([n, self.units], dtype)
        return [zeros, zeros]

    @property
    def fused(self):
        """Whether :meth:`columns` takes the fused step: the switch is on and the activations
        are the ones :func:`fused_columns_step` hard-codes."""
        return (FUSED_LSTM and self.recurrent_activation is keras.activations.sigmoid
                and self.activation is keras.activations.tanh)

    def __call__(self, x, state, read=_identity):
        h, c = state
        z = (tf.matmul(x, _read_as(read, self.kernel, x.dtype))
             + tf.matmul(h, _read_as(read, self.recurrent_kernel, x.dtype)))
        if self.use_bias:
            z = z + _read_as(read, self.bias, x.dtype)
        zi, zf, zc, zo = tf.split(z, 4, axis=1)
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = f * c + i * self.activation(zc)
        o = self.recurrent_activation(zo)
        h = o * self.activation(c)
        return h, [h, c]

    def columns(self, rows, ones, state, read=_identity):
        """The same step feature-major: one column per coordinate.

        ``rows``: input features, tensors [d_k, N]; ``ones``: a [1, N] row of ones; ``state``:
        ``[h, c]``, each [units, N]. The bias is folded into one product,
        ``z = [kernel; recurrent_kernel; bias]^T @ [rows; h; 1]``, and the gates are split off
        ``z`` along rows, which shares its buffer (when ``units * N`` is a multiple of 16
        floats) and differentiates into a concat. About 10% faster per RNNProp step on an
        18k-parameter model than the row layout (benchmarks/README.md).

        With the Keras activations (sigmoid, tanh) and float32 tensors the step is fused
        (:func:`fused_columns_step`, unless :data:`FUSED_LSTM` is off): same maths up to
        float rounding; on the 18k-parameter benchmark an RNNProp step takes about 0.6-0.75x
        the unfused time forward and 0.85-0.9x forward + backward. Other dtypes (float64)
        take the unfused step, with the stacked weights cast to the state's dtype.
        """
        units = self.units
        h, c = state
        pieces = [read(self.kernel), read(self.recurrent_kernel)]
        inputs = list(rows) + [h]
        if self.use_bias:
            pieces.append(read(self.bias)[None])
            inputs.append(ones)
        weights = tf.cast(tf.concat(pieces, axis=0), c.dtype)
        if self.fused and c.dtype == tf.float32:
            h, c = fused_columns_step(weights, tf.concat(inputs, axis=0), c)
            return h, [h, c]
        z = tf.matmul(weights, tf.concat(inputs, axis=0), transpose_a=True)
        z_if, z_c, z_o = tf.split(z, [2 * units, units, units], axis=0)
        i, f = tf.split(self.recurrent_activation(z_if), 2, axis=0)
        c = f * c + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]


LSTM_KWARGS = ("activation", "recurrent_activation", "use_bias", "kernel_initializer",
               "recurrent_initializer", "bias_initializer", "unit_forget_bias")


def lstm_stack(in_dim, layers, cell_kwargs):
    """A list of LSTM layers of the given sizes (tracked as ``recurrent/<i>``)."""
    sizes = list(layers) if isinstance(layers, (list, tuple)) else None
    if not sizes or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in sizes):
        raise ValueError(f"layers must be a non-empty list of positive whole numbers (units "
                         f"per LSTM layer, e.g. [20, 20]), got {layers!r}")
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


def stack_state(stack, n, dtype=tf.float32):
    """Zero row-major states ``{"rnn_i": [h, c]}``, each [n, units], in ``dtype``."""
    return {f"rnn_{i}": layer.initial_state(n, dtype) for i, layer in enumerate(stack)}


def run_columns(stack, rows, state, read):
    """:func:`run_stack` feature-major: ``rows`` [d_k, N] in, ``h`` [units, N] out."""
    ones = tf.ones_like(rows[0][:1])
    new_state = {}
    for i, layer in enumerate(stack):
        h, new_state[f"rnn_{i}"] = layer.columns(rows, ones, state[f"rnn_{i}"], read)
        rows = [h]
    return h, new_state


def column_state(stack, n, dtype=tf.float32):
    """Zero feature-major states ``{"rnn_i": [h, c]}``, each [units, n], in ``dtype`` (the
    dtype the policy computes in: the state must match the features it is concatenated with)."""
    out = {}
    for i, layer in enumerate(stack):
        zeros = tf.zeros(tf.stack([layer.units, n]), dtype)
        out[f"rnn_{i}"] = [zeros, zeros]
    return out
