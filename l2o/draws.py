"""Where the random numbers of compiled policy code come from.

Input noise, Gaussian weight perturbations and Gumbel choices are drawn inside traced
functions. TensorFlow's stateful random ops keep the op seeds they were traced with, so a
traced meta-training step would replay one noise stream in every period and a resumed run
would pick that stream up somewhere else. Instead, meta-training opens a :func:`seeded`
scope around every inner step, keyed by a tensor that is a function of (seed, unroll,
step, replica); each draw inside it is a stateless op keyed by that tensor and by the
draw's place in the trace. The draws are then a function of the seed alone: different
periods draw different noise, and a resumed run draws exactly what an uninterrupted one
would, whichever graph (training, validation, warmup replay) runs the step.

Outside a scope (a user calling ``policy.step(..., training=True)`` by hand) the draws come
from TensorFlow's ordinary random ops.
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf

_scopes = threading.local()


class _Scope:
    def __init__(self, key):
        self.key = key
        self.draws = 0


def _stack():
    if not hasattr(_scopes, "stack"):
        _scopes.stack = []
    return _scopes.stack


def fold(key, data):
    """A new [2] int64 key from ``key`` and an integer (Python or scalar tensor)."""
    return tf.random.experimental.stateless_fold_in(key, tf.cast(data, tf.int64))


@contextlib.contextmanager
def seeded(key):
    """Draws traced inside come from stateless ops keyed by ``key`` ([2] int64 tensor) and
    by their order in the trace (the first draw, the second, ...)."""
    stack = _stack()
    stack.append(_Scope(tf.convert_to_tensor(key, tf.int64)))
    try:
        yield
    finally:
        stack.pop()


def _next_key():
    stack = _stack()
    if not stack:
        return None
    scope = stack[-1]
    scope.draws += 1
    return fold(scope.key, scope.draws)


def for_replica(key):
    """``key`` folded with this replica's id: each replica of a ``tf.distribute`` run draws
    its own noise, and replica 0 draws what a single-device run draws."""
    replica = tf.distribute.get_replica_context()
    return fold(key, 0 if replica is None else replica.replica_id_in_sync_group)


def normal(shape, stddev=1.0, dtype=tf.float32):
    """``N(0, stddev^2)`` samples of ``shape``."""
    key = _next_key()
    if key is None:
        return tf.random.normal(shape, stddev=stddev, dtype=dtype)
    return tf.random.stateless_normal(shape, key, stddev=stddev, dtype=dtype)


def uniform(shape, minval, maxval, dtype=tf.float32):
    """``U(minval, maxval)`` samples of ``shape``."""
    key = _next_key()
    if key is None:
        return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype)
    return tf.random.stateless_uniform(shape, key, minval=minval, maxval=maxval, dtype=dtype)


def root_key(seed, *path):
    """A [2] int64 key (numpy) from a seed (None: fresh entropy) and a path of integers:
    meta-training's key of one unroll is ``root_key(seed, problem, unroll)``."""
    entropy = np.random.SeedSequence(seed).entropy
    words = np.random.SeedSequence(entropy, spawn_key=tuple(int(p) for p in path)
                                   ).generate_state(2, np.uint32)
    return words.astype(np.int64)
