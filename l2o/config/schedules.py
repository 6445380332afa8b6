"""Schedules of the strategy settings and the unroll weighting of the meta loss.

A schedule turns a config value into a function of the period (simple, repeat) or stage
(curriculum) index:

=========================================== ============================= =====================
spec                                        float_schedule(i)             integer_schedule(i)
=========================================== ============================= =====================
number                                      that number                   that number (whole)
``{"type": "constant", "value": v}``        v                             v
``{"type": "list", "values": [...]}``       values[i], last one past end  same
``[...]`` (a bare list, shorthand)          as "list"                     as "list"
``{"type": "exponential", "alpha", "base"}`` base * exp(-|alpha| * i)     not allowed
``{"type": "geometric", "coefficient",       coefficient * base ** i      rounded to a whole
"base"}``                                                                 number
callable                                    passed through                passed through
=========================================== ============================= =====================

Unlike the reference, ``float_schedule`` accepts ints (``0`` where ``0.0`` was meant) and an
unknown type raises instead of returning an exception object.
"""

import math
import numbers

from l2o.errors import L2OError, unknown

FLOAT_TYPES = ("constant", "list", "exponential", "geometric")
INTEGER_TYPES = ("constant", "list", "geometric")


def _number(value, whole, what):
    """Check one schedule value: a number (a whole one for integer schedules)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise L2OError(f"{what} must be a number, got {value!r}")
    if whole:
        if not math.isfinite(value) or float(value) != int(value):
            raise L2OError(f"{what} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def _field(spec, key, default=None):
    if key in spec:
        return spec[key]
    if default is not None:
        return default
    raise L2OError(f"schedule {spec!r} needs the key '{key}'")


def _schedule(spec, whole):
    kind = "integer" if whole else "float"
    if callable(spec):
        return spec
    if isinstance(spec, (list, tuple)):
        spec = {"type": "list", "values": list(spec)}
    if not isinstance(spec, dict):
        value = _number(spec, whole, f"a constant {kind} schedule")
        return lambda i: value
    valid = INTEGER_TYPES if whole else FLOAT_TYPES
    stype = spec.get("type")
    if stype not in valid:
        raise unknown(f"{kind} schedule type", stype, valid)
    if stype == "constant":
        value = _number(_field(spec, "value"), whole, f"the constant {kind} schedule value")
        return lambda i: value
    if stype == "list":
        values = _field(spec, "values")
        if not isinstance(values, (list, tuple)) or not values:
            raise L2OError(f"a list schedule needs a non-empty 'values' list, got {values!r}")
        values = [_number(v, whole, f"{'an' if whole else 'a'} {kind} schedule list value")
                  for v in values]
        return lambda i: values[min(int(i), len(values) - 1)]
    if stype == "exponential":
        alpha = abs(_number(_field(spec, "alpha"), False, "the exponential 'alpha'"))
        base = _number(spec.get("base", 1.0), False, "the exponential 'base'")
        return lambda i: base * math.exp(-alpha * i)
    coefficient = _number(_field(spec, "coefficient"), False, "the geometric 'coefficient'")
    base = _number(_field(spec, "base"), False, "the geometric 'base'")
    if whole:
        return lambda i: int(round(coefficient * base ** i))
    return lambda i: coefficient * base ** i


def float_schedule(spec):
    """A function ``i -> float`` from a schedule spec (number, dict, list or callable)."""
    return _schedule(spec, whole=False)


def integer_schedule(spec):
    """A function ``i -> int`` from a schedule spec (whole number, dict, list or callable)."""
    return _schedule(spec, whole=True)


def _is_python_int(x):
    return isinstance(x, numbers.Integral)


def _sum_weight(i, n):
    return 1.0


def _mean_weight(i, n):
    if _is_python_int(n):
        return 1.0 / n
    import tensorflow as tf

    return 1.0 / tf.cast(n, tf.float32)


def _final_weight(i, n):
    if _is_python_int(i) and _is_python_int(n):
        return 1.0 if i == n - 1 else 0.0
    import tensorflow as tf

    return tf.cast(tf.equal(tf.cast(i, tf.int64), tf.cast(n, tf.int64) - 1), tf.float32)


UNROLL_WEIGHTS = {"sum": _sum_weight, "mean": _mean_weight, "final": _final_weight}


def unroll_weights(spec):
    """The weight ``w(i, n)`` of inner step i of an n-step unroll in the meta loss.

    ``sum``: 1; ``mean``: 1/n; ``final``: 1 on the last step only. Works on Python ints
    and on tensors (inside a ``tf.function``). A callable is passed through.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec not in UNROLL_WEIGHTS:
        raise unknown("unroll_weight", spec, UNROLL_WEIGHTS)
    return UNROLL_WEIGHTS[spec]
