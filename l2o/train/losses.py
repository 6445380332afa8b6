"""The loss terms of meta-training and the meta-gradient clippers.

Everything here is a small function of tensors, used inside the compiled unroll and
checked against hand-computed values in the tests.
"""

import tensorflow as tf

from l2o.errors import L2OError, unknown


def meta_term(f, f0, use_log_objective=True, epsilon=1e-10):
    """Meta loss of one inner step: log-ratio (or ratio) of the loss to the truncation start."""
    if use_log_objective:
        return tf.math.log(f + epsilon) - tf.math.log(f0 + epsilon)
    return f / (f0 + epsilon)


def huber(a, delta=-1.0):
    """``a^2 / 2`` when ``delta < 0``, else the Huber loss with threshold ``delta``."""
    if delta is None or delta < 0:
        return 0.5 * tf.square(a)
    abs_a = tf.abs(a)
    return tf.where(abs_a < delta, 0.5 * tf.square(a), delta * (abs_a - 0.5 * delta))


def teacher_distance(learner, teacher, num_params, huber_delta=-1.0, epsilon=1e-10):
    """``log(sum huber(theta_L - theta_T) + eps) - log(P)`` over all parameter tensors."""
    total = tf.add_n([tf.reduce_sum(huber(a - b, huber_delta)) for a, b in zip(learner, teacher)])
    return tf.math.log(total + epsilon) - tf.math.log(float(num_params))


REDUCTIONS = {"reduce_max": tf.reduce_max, "reduce_mean": tf.reduce_mean,
              "reduce_min": tf.reduce_min, "reduce_sum": tf.reduce_sum}


def get_reduction(spec):
    """``reduce_max`` (min-max amalgamation), ``reduce_mean`` (mean amalgamation), ..."""
    if spec is None:
        return tf.reduce_max
    if callable(spec):
        return spec
    if spec not in REDUCTIONS:
        raise unknown("loss_reduce", spec, REDUCTIONS)
    return REDUCTIONS[spec]


IL_MODES = ("sum", "switch", "imitation", "meta")


def loss_weights(il_mode, p_teacher, rng):
    """``(w_meta, w_imitation)`` of one meta step for the imitation-learning mode."""
    if il_mode == "sum":
        return 1.0, float(p_teacher)
    if il_mode == "switch":
        return (0.0, 1.0) if rng.uniform() < p_teacher else (1.0, 0.0)
    if il_mode == "imitation":
        return 0.0, 1.0
    if il_mode == "meta":
        return 1.0, 0.0
    raise unknown("il_mode", il_mode, IL_MODES)


class AdaptiveGC:
    """Per-tensor adaptive clipping: ``||G|| <= clip_ratio * max(||W||, epsilon)``."""

    def __init__(self, clip_ratio=0.1, epsilon=1e-3):
        if clip_ratio <= 0:
            raise L2OError(f"AdaptiveGC clip_ratio must be > 0, got {clip_ratio}")
        self.clip_ratio = float(clip_ratio)
        self.epsilon = float(epsilon)

    def __call__(self, grads, weights):
        out = []
        for g, w in zip(grads, weights):
            limit = self.clip_ratio * tf.maximum(tf.norm(w), self.epsilon)
            norm = tf.norm(g)
            out.append(tf.where(norm > limit, g * (limit / tf.maximum(norm, 1e-30)), g))
        return out


class SimpleGC:
    """Elementwise clipping to ``[-clip_value, clip_value]``; off when ``clip_value <= 0``."""

    def __init__(self, clip_value=-1.0):
        self.clip_value = float(clip_value)

    def __call__(self, grads, weights):
        if self.clip_value <= 0:
            return list(grads)
        return [tf.clip_by_value(g, -self.clip_value, self.clip_value) for g in grads]


CLIPPERS = {"AdaptiveGC": AdaptiveGC, "SimpleGC": SimpleGC}


def get_clipper(spec):
    """A clipper from ``{"class_name": "AdaptiveGC" | "SimpleGC", "config": {...}}``."""
    if spec is None:
        return SimpleGC()
    if callable(spec):
        return spec
    name = spec.get("class_name")
    if name not in CLIPPERS:
        raise unknown("gradient_clipping class", name, CLIPPERS)
    try:
        return CLIPPERS[name](**spec.get("config", {}))
    except TypeError as e:
        raise L2OError(f"bad gradient_clipping config for {name}: {e}") from None
