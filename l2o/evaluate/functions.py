"""Synthetic function problems and their evaluator.

Each function draws its random coefficients once, when it is constructed (a fresh draw per run),
and starts from x = 0. Calling it on a float32 vector of length ``n`` returns a scalar loss.
"""

import keras
import numpy as np
import tensorflow as tf

from l2o.errors import L2OError, unknown


class Quadratic:
    """Least squares ``f(x) = ||A x - b||^2`` with ``A`` and ``b`` standard normal."""

    def __init__(self, n, seed=None):
        if int(n) < 1:
            raise L2OError(f"function dimension n must be a positive integer, got {n}")
        self.n = int(n)
        self._rng = np.random.default_rng(seed)
        self.A = tf.constant(self._rng.standard_normal((self.n, self.n)), tf.float32)
        self.b = tf.constant(self._rng.standard_normal(self.n), tf.float32)

    def initial_point(self):
        return np.zeros(self.n, np.float32)

    def __call__(self, x):
        residual = tf.linalg.matvec(self.A, x) - self.b
        return tf.reduce_sum(tf.square(residual))


class Rastrigin(Quadratic):
    """The quadratic above plus a cosine ripple: ``- alpha * sum(c * cos(2 pi x)) + alpha * n``."""

    def __init__(self, n, alpha=10.0, seed=None):
        super().__init__(n, seed=seed)
        self.alpha = float(alpha)
        # Drawn after A and b from the same generator, so one seed fixes the whole function.
        self.c = tf.constant(self._rng.standard_normal(self.n), tf.float32)

    def __call__(self, x):
        ripple = tf.reduce_sum(self.c * tf.cos(2.0 * np.pi * x))
        return super().__call__(x) - self.alpha * ripple + self.alpha * self.n


FUNCTIONS = {"Quadratic": Quadratic, "Rastrigin": Rastrigin}


def make_function(target, config, seed=None):
    """Build a function problem from its name (a key of :data:`FUNCTIONS`) or class."""
    if isinstance(target, str):
        if target not in FUNCTIONS:
            raise unknown("function problem", target, FUNCTIONS)
        target = FUNCTIONS[target]
    try:
        return target(**dict(config), seed=seed)
    except TypeError as error:
        raise L2OError(f"bad config {config} for function {target.__name__}: {error}") from None


def evaluate_function(optimizer, target, config, steps, seed=None):
    """Minimise a synthetic function for ``steps`` optimizer steps from x = 0.

    Returns ``{"loss": float32 [steps]}``, the loss *before* each step. ``optimizer`` must be a
    fresh (not yet built) ``keras.optimizers.Optimizer``; ``seed`` fixes the random function.
    """
    steps = int(steps)
    if steps < 1:
        raise L2OError(f"steps must be a positive integer, got {steps}")
    if optimizer.built:
        raise L2OError("the optimizer was already used; pass a fresh optimizer to each evaluation")
    function = make_function(target, config, seed=seed)

    with tf.distribute.get_strategy().scope():
        x = keras.Variable(function.initial_point(), name="x")
        optimizer.build([x])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = function(x)
        grad = tape.gradient(loss, x)
        optimizer.apply_gradients([(grad, x)])
        return loss

    losses = np.empty(steps, np.float32)
    for i in range(steps):
        losses[i] = step().numpy()
    return {"loss": losses}
