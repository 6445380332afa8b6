"""Perturbations of a learned optimizer's own weights (stability-aware training).

A learned optimizer that sits in a sharp minimum of its meta-loss can behave very
differently after a tiny change of its weights. Training it on perturbed copies of its
weights, ``W + delta``, pushes meta-training towards flat regions, where the learned update
rule is robust. The perturbation is only applied while the policy runs with
``training=True``; evaluation always reads the clean weights.

Every weight read of a perturbable policy goes through :meth:`Perturbation.add`. The
meta-training step drives the adversarial variants:

1. ``reset(train=True)``;
2. ``adversarial_attack_steps`` times: the unroll loss is differentiated with respect to
   ``attack_variables`` and the gradients go to ``apply_gradients``, which takes an
   *ascent* step on the delta variables;
3. the meta-gradient with respect to the clean weights is taken with the delta in place;
4. ``reset(train=False)``.

The delta variables are per-replica scratch state (``ON_READ`` synchronisation, so each
replica attacks its own optimizee under ``tf.distribute``). They are zero between
meta-steps and are deliberately not tracked for checkpoints: a run can resume with a
different perturbation.
"""

import inspect
import math
import numbers

import tensorflow as tf

from l2o import draws
from l2o.errors import L2OError, unknown

NORMS = ("l2", "inf", "scale")


# -- argument checks -----------------------------------------------------------------------

def _real(cls, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise L2OError(f"{cls.__name__}: {name} must be a finite number, got {value!r}")
    return float(value)


def _positive(cls, name, value):
    number = _real(cls, name, value)
    if number <= 0:
        raise L2OError(f"{cls.__name__}: {name} must be > 0, got {value!r}")
    return number


def _size(cls, name, value):
    """A perturbation's size: >= 0, where 0 perturbs nothing (the control of an experiment)."""
    number = _real(cls, name, value)
    if number < 0:
        raise L2OError(f"{cls.__name__}: {name} must be >= 0, got {value!r}")
    return number


def _steps(cls, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise L2OError(f"{cls.__name__}: steps must be an integer >= 1, got {value!r}")
    return int(value)


def _clip_by_norm(t, clip):
    """Rescale ``t`` to Frobenius norm at most ``clip``; safe when both norms are zero.

    ``tf.clip_by_norm`` divides 0 by 0 when ``t`` and ``clip`` are both zero (a zero
    gradient on an all-zero bias under CGD), which would put NaN into delta.
    """
    norm = tf.norm(t)
    clip = tf.cast(clip, norm.dtype)
    factor = tf.where(norm > clip, tf.math.divide_no_nan(clip, norm), tf.ones_like(norm))
    return t * factor


class _Scratch:
    """Untracked holder: keeps delta variables out of tf.Module/checkpoint tracking."""

    def __init__(self):
        self.weights = []
        self.deltas = []
        self.index = {}


# -- the perturbations -------------------------------------------------------------------

class Perturbation(tf.Module):
    """No perturbation: ``add(W) = W``. The base class of every perturbation.

    Subclasses override :meth:`add` (the weight actually used in a training forward pass)
    and, when they keep a delta per weight, :meth:`reset` and :meth:`apply_gradients`.
    """

    #: Whether :meth:`build` creates one delta variable per weight.
    _has_deltas = False
    #: Whether :meth:`add` draws fresh noise at every call (so the number of weight reads
    #: of a step matters).
    draws_per_read = False

    def __init__(self):
        super().__init__(name=type(self).__name__)
        self._scratch = _Scratch()

    # configuration
    def get_config(self):
        """Constructor kwargs that rebuild this perturbation (JSON-serialisable)."""
        return {}

    @classmethod
    def parameter_names(cls):
        """The names the ``config`` of this class may hold."""
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p != "self"]

    @property
    def adversarial_attack_steps(self):
        """K: how many ascent steps meta-training takes on the delta before each update."""
        return 0

    @property
    def attack_variables(self):
        """The delta variables the attack differentiates (aligned with the built weights)."""
        return []

    # state
    def build(self, weights):
        """Register the policy's weights; create one zero delta per weight if needed.

        Call under the distribution strategy scope the policy was built in; the deltas
        are created in whatever scope is active.
        """
        scratch = _Scratch()
        scratch.weights = list(weights)
        scratch.index = {w.ref(): i for i, w in enumerate(scratch.weights)}
        if self._has_deltas:
            scratch.deltas = [
                tf.Variable(
                    tf.zeros(w.shape, dtype=w.dtype), trainable=False, name=f"delta_{i}",
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.MEAN)
                for i, w in enumerate(scratch.weights)]
        self._scratch = scratch

    def reset(self, train):
        """Start (``train=True``) or end (``train=False``) a meta-step."""
        for delta in self._scratch.deltas:
            delta.assign(tf.zeros_like(delta))

    def apply_gradients(self, grads):
        """Ascent step on the deltas, given d(loss)/d(delta) aligned with ``attack_variables``.

        Returns a boolean tensor: whether the step ran (what ``attack_steps`` counts).
        """
        grads = list(grads)
        if grads:
            raise L2OError(f"{type(self).__name__} has no attack variables but got {len(grads)} gradients")
        return tf.constant(False)

    # the hook
    def add(self, weight):
        """The weight to use in a training forward pass (never assigns a variable)."""
        return tf.convert_to_tensor(weight)

    # helpers for subclasses
    def _delta(self, weight):
        i = self._scratch.index.get(weight.ref())
        if i is None:
            raise L2OError(
                f"{type(self).__name__}: weight '{weight.name}' was not registered; call "
                "build() with every weight that goes through add()")
        return self._scratch.deltas[i]

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


BasePerturbation = Perturbation


class RandomPerturbation(Perturbation):
    """Gaussian noise on every weight read: ``add(W) = W + N(0, std^2)``, fresh each call.

    Noise that changes at every inner step and layer call smooths the meta-loss around W,
    which favours weights in flat regions. With ``relative=True`` the standard deviation is
    ``noise_stddev * sqrt(mean(W^2) + epsilon)``, so each tensor is perturbed in proportion
    to its own RMS size (the gradient also flows through that scale).
    """

    draws_per_read = True

    def __init__(self, noise_stddev=1e-3, relative=False, epsilon=1e-8):
        cls = type(self)
        self.noise_stddev = _size(cls, "noise_stddev", noise_stddev)
        if not isinstance(relative, bool):
            raise L2OError(f"{cls.__name__}: relative must be true or false, got {relative!r}")
        self.relative = relative
        self.epsilon = _real(cls, "epsilon", epsilon)
        if self.epsilon < 0:
            raise L2OError(f"{cls.__name__}: epsilon must be >= 0, got {epsilon!r}")
        super().__init__()

    def get_config(self):
        return {"noise_stddev": self.noise_stddev, "relative": self.relative, "epsilon": self.epsilon}

    def add(self, weight):
        w = tf.convert_to_tensor(weight)
        stddev = tf.constant(self.noise_stddev, dtype=w.dtype)
        if self.relative:
            stddev = stddev * tf.sqrt(tf.reduce_mean(tf.square(w)) + self.epsilon)
        return w + stddev * draws.normal(tf.shape(w), dtype=w.dtype)


class PersistentRandomPerturbation(Perturbation):
    """One Gaussian delta ~ N(0, noise_stddev^2) per weight, held for a whole meta-step.

    Unlike :class:`RandomPerturbation`, the whole unroll sees the same perturbed
    optimizer, as if its weights had been moved once; the delta is redrawn by
    ``reset(train=True)`` and zeroed by ``reset(train=False)``.
    """

    _has_deltas = True

    def __init__(self, noise_stddev=0.01):
        self.noise_stddev = _size(type(self), "noise_stddev", noise_stddev)
        super().__init__()

    def get_config(self):
        return {"noise_stddev": self.noise_stddev}

    def reset(self, train):
        if not train:
            return super().reset(train)
        for delta in self._scratch.deltas:
            delta.assign(draws.normal(delta.shape, stddev=self.noise_stddev, dtype=delta.dtype))

    def add(self, weight):
        return tf.convert_to_tensor(weight) + self._delta(weight)


class _AdversarialPerturbation(Perturbation):
    """Shared machinery of the attacks: ``add(W) = W + delta``, delta moved by ascent steps.

    Training on the worst nearby weights (a min-max objective) flattens the meta-loss
    around W more directly than random noise does.
    """

    _has_deltas = True

    @property
    def attack_variables(self):
        return list(self._scratch.deltas)

    def add(self, weight):
        return tf.convert_to_tensor(weight) + self._delta(weight)

    def apply_gradients(self, grads):
        grads = list(grads)
        deltas = self._scratch.deltas
        if len(grads) != len(deltas):
            raise L2OError(
                f"{type(self).__name__}: got {len(grads)} gradients for {len(deltas)} attack variables")
        present = [(w, d, tf.cast(tf.convert_to_tensor(g), d.dtype))
                   for w, d, g in zip(self._scratch.weights, deltas, grads)
                   if g is not None]  # None: this weight did not influence the loss
        if not present:
            return tf.constant(False)
        # a non-finite gradient (a diverged unroll) moves no delta: the step does not run
        ran = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for _, _, g in present])
        for weight, delta, grad in present:
            value = tf.convert_to_tensor(delta)
            delta.assign(tf.where(ran, self._ascend(tf.convert_to_tensor(weight), value, grad),
                                  value))
        return ran

    def _ascend(self, weight, delta, grad):
        """The new delta after one ascent step."""
        raise NotImplementedError


class FGSMPerturbation(_AdversarialPerturbation):
    """Fast gradient sign attack: one step ``delta = step_size * sign(dL/d delta)``."""

    def __init__(self, step_size=1e-3):
        self.step_size = _size(type(self), "step_size", step_size)
        super().__init__()

    def get_config(self):
        return {"step_size": self.step_size}

    @property
    def adversarial_attack_steps(self):
        return 1

    def _ascend(self, weight, delta, grad):
        return delta + self.step_size * tf.sign(grad)


class PGDPerturbation(_AdversarialPerturbation):
    """Projected gradient ascent: ``delta = project(delta + learning_rate * dL/d delta)``.

    The projection keeps each tensor's delta in a ball: ``l2`` (Frobenius norm at most
    ``magnitude``), ``inf`` (every element within +-``magnitude``) or ``scale`` (Frobenius
    norm at most ``magnitude * size(W)``).
    """

    def __init__(self, steps=1, magnitude=0.01, norm="l2", learning_rate=0.005):
        cls = type(self)
        self.steps = _steps(cls, steps)
        self.magnitude = _size(cls, "magnitude", magnitude)
        if norm not in NORMS:
            raise unknown(f"{cls.__name__} norm", norm, NORMS)
        self.norm = norm
        self.learning_rate = _positive(cls, "learning_rate", learning_rate)
        super().__init__()

    def get_config(self):
        return {"steps": self.steps, "magnitude": self.magnitude, "norm": self.norm,
                "learning_rate": self.learning_rate}

    @property
    def adversarial_attack_steps(self):
        return self.steps

    def _ascend(self, weight, delta, grad):
        moved = delta + self.learning_rate * grad
        if self.norm == "inf":
            return tf.clip_by_value(moved, -self.magnitude, self.magnitude)
        radius = tf.constant(self.magnitude, dtype=moved.dtype)
        if self.norm == "scale":
            radius = radius * tf.cast(tf.size(weight), moved.dtype)
        return _clip_by_norm(moved, radius)


class CGDPerturbation(_AdversarialPerturbation):
    """Adaptive PGD: ``delta += clip_by_norm(dL/d delta, magnitude * ||W||_F)``.

    Each step's length is bounded relative to the size of the weight tensor it perturbs,
    so large and small tensors are attacked in proportion; the accumulated delta is not
    projected.
    """

    def __init__(self, steps=1, magnitude=0.005):
        cls = type(self)
        self.steps = _steps(cls, steps)
        self.magnitude = _size(cls, "magnitude", magnitude)
        super().__init__()

    def get_config(self):
        return {"steps": self.steps, "magnitude": self.magnitude}

    @property
    def adversarial_attack_steps(self):
        return self.steps

    def _ascend(self, weight, delta, grad):
        return delta + _clip_by_norm(grad, self.magnitude * tf.norm(weight))


# -- factory ------------------------------------------------------------------------------

PERTURBATIONS = {
    cls.__name__: cls for cls in (
        Perturbation, RandomPerturbation, PersistentRandomPerturbation,
        FGSMPerturbation, PGDPerturbation, CGDPerturbation)
}
PERTURBATIONS["BasePerturbation"] = Perturbation


def get_perturbation(spec):
    """Build a perturbation from None (no perturbation), an instance, or a
    ``{"class_name": ..., "config": {...}}`` dict as found in presets and config.json."""
    if spec is None:
        return Perturbation()
    if isinstance(spec, Perturbation):
        return spec
    if not isinstance(spec, dict):
        raise L2OError(
            f"perturbation must be null or {{\"class_name\": ..., \"config\": {{...}}}}, got {spec!r}")
    extra = sorted(set(spec) - {"class_name", "config"})
    if extra:
        raise L2OError(f"perturbation has unknown keys {extra}; valid: class_name, config")
    name = spec.get("class_name")
    if name not in PERTURBATIONS:
        raise unknown("perturbation class_name", name, PERTURBATIONS)
    cls = PERTURBATIONS[name]
    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise L2OError(f"perturbation config must be a dict, got {config!r}")
    valid = cls.parameter_names()
    bad = sorted(set(config) - set(valid))
    if bad:
        raise L2OError(
            f"{name} has no parameter {', '.join(map(str, bad))}; valid: {', '.join(valid) or '(none)'}")
    return cls(**config)
