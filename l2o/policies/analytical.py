"""The analytical update rules: the teachers, the choice pool members and the baselines.

Each rule reproduces the reference exactly, including its time-independent "bias
correction" (``m/(1-b1)``, ``v/(1-b2)``) on which every tuned learning rate depends.
With ``trainable=True`` the learning rate, betas / rho and temperature are scalar
``tf.Variable``s that meta-training can tune; otherwise they are constants. ``epsilon``
is never trainable.

A rule computes in the dtype of the gradient it is given (float32, or float64 for float64
variables in the Keras optimizer): trainable hyperparameters, float32 variables, are cast to
it where they are read.
"""

import tensorflow as tf

from l2o.policies.base import Policy, corrected, moments, register


class Analytical(Policy):
    """Base of the hand-written rules: hyperparameters as constants or variables."""

    #: hyperparameters that become variables when ``trainable``
    hyperparameters = ("learning_rate",)
    #: elementwise rules on scalar hyperparameters
    coordinatewise = True

    def _set_hyperparameters(self, trainable, **values):
        self.trainable = bool(trainable)
        for key, value in values.items():
            if self.trainable and key in self.hyperparameters:
                setattr(self, key, tf.Variable(float(value), name=key, dtype=tf.float32))
            else:
                setattr(self, key, float(value))

    def _hyper(self, like, *names):
        """The hyperparameters ``names`` in ``like``'s dtype: trainable ones are float32
        variables (``tf.cast`` hands float32 reads back unchanged), others Python floats."""
        values = [getattr(self, name) for name in names]
        values = [tf.cast(v, like.dtype) if isinstance(v, tf.Variable) else v for v in values]
        return values[0] if len(values) == 1 else values

    def _moments(self, grad, state):
        beta_1, beta_2 = self._hyper(grad, "beta_1", "beta_2")
        return moments(grad, state["m"], state["v"], beta_1, beta_2)

    def _moment_state(self, param):
        return {"m": tf.zeros_like(param), "v": tf.zeros_like(param)}


@register
class SGDOptimizer(Analytical):
    """``delta = lr * g``."""

    def init_layers(self, learning_rate=0.01, trainable=False):
        self._set_hyperparameters(trainable, learning_rate=learning_rate)

    def step(self, param, grad, state, training=False):
        return self._hyper(grad, "learning_rate") * grad, state


@register
class MomentumOptimizer(Analytical):
    """``m <- b1 m + (1-b1) g``; ``delta = lr * m``."""

    hyperparameters = ("learning_rate", "beta_1")

    def init_layers(self, learning_rate=0.001, beta_1=0.9, trainable=False):
        self._set_hyperparameters(trainable, learning_rate=learning_rate, beta_1=beta_1)

    def init_state(self, param):
        return {"m": tf.zeros_like(param)}

    def step(self, param, grad, state, training=False):
        learning_rate, beta_1 = self._hyper(grad, "learning_rate", "beta_1")
        m = beta_1 * state["m"] + (1.0 - beta_1) * grad
        return learning_rate * m, {"m": m}


@register
class RMSPropOptimizer(Analytical):
    """``v <- rho v + (1-rho) g^2``; ``delta = lr * g / sqrt(v + eps)`` (no correction)."""

    hyperparameters = ("learning_rate", "rho")

    def init_layers(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, trainable=False):
        self._set_hyperparameters(trainable, learning_rate=learning_rate, rho=rho)
        self.epsilon = float(epsilon)

    def init_state(self, param):
        return {"v": tf.zeros_like(param)}

    def step(self, param, grad, state, training=False):
        learning_rate, rho = self._hyper(grad, "learning_rate", "rho")
        v = rho * state["v"] + (1.0 - rho) * tf.square(grad)
        return learning_rate * grad / tf.sqrt(v + self.epsilon), {"v": v}


@register
class AdamOptimizer(Analytical):
    """``delta = lr * m^ / sqrt(v^ + eps)`` with the time-independent correction."""

    hyperparameters = ("learning_rate", "beta_1", "beta_2")

    def init_layers(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                    trainable=False):
        self._set_hyperparameters(trainable, learning_rate=learning_rate, beta_1=beta_1,
                                  beta_2=beta_2)
        self.epsilon = float(epsilon)

    def init_state(self, param):
        return self._moment_state(param)

    def step(self, param, grad, state, training=False):
        learning_rate, beta_1, beta_2 = self._hyper(grad, "learning_rate", "beta_1", "beta_2")
        m, v = self._moments(grad, state)
        m_hat, v_hat = corrected(m, v, beta_1, beta_2)
        return learning_rate * m_hat / tf.sqrt(v_hat + self.epsilon), {"m": m, "v": v}


class _SignFamily(Analytical):
    """AddSign / PowerSign: scale the gradient by the agreement of sign(g) and sign(m)."""

    hyperparameters = ("learning_rate", "beta_1", "beta_2", "temperature")
    #: True: the final factor is g / sqrt(v + eps) instead of g
    adaptive = False

    def init_layers(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, temperature=1.0,
                    epsilon=1e-7, trainable=False):
        # ``temperature`` is kept (and trainable) for fidelity, but unused by the rule.
        self._set_hyperparameters(trainable, learning_rate=learning_rate, beta_1=beta_1,
                                  beta_2=beta_2, temperature=temperature)
        self.epsilon = float(epsilon)

    def init_state(self, param):
        return self._moment_state(param)

    def _factor(self, agreement):
        raise NotImplementedError

    def step(self, param, grad, state, training=False):
        m, v = self._moments(grad, state)
        d = tf.sqrt(v + self.epsilon)
        agreement = tf.tanh(grad / d) * tf.tanh(m / d)
        direction = grad / d if self.adaptive else grad
        learning_rate = self._hyper(grad, "learning_rate")
        return learning_rate * self._factor(agreement) * direction, {"m": m, "v": v}


@register
class PowerSignOptimizer(_SignFamily):
    """``delta = lr * exp(tanh(g/d) tanh(m/d)) * g`` with ``d = sqrt(v + eps)``."""

    def _factor(self, agreement):
        return tf.exp(agreement)


@register
class AddSignOptimizer(_SignFamily):
    """``delta = lr * (1 + tanh(g/d) tanh(m/d)) * g`` with ``d = sqrt(v + eps)``."""

    def _factor(self, agreement):
        return 1.0 + agreement


@register
class AdaptivePowerSignOptimizer(PowerSignOptimizer):
    """PowerSign with the final factor ``g / d``."""

    adaptive = True


@register
class AdaptiveAddSignOptimizer(AddSignOptimizer):
    """AddSign with the final factor ``g / d``."""

    adaptive = True
