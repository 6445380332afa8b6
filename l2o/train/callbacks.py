"""Step callbacks: statistics gathered inside the compiled unroll, one value per inner step.

A callback is traced into the unroll: ``initial(num_teachers, unroll_len)`` gives its
state (a tensor), ``update(state, i, loss, distances)`` advances it after inner step ``i``
with the learner's loss and the log-distance to each teacher, and ``summary(state)`` names
the result (the key used by ``stack_stats``). ``replica_reduce`` says how the values of
several replicas combine: counts add up, distances are averaged (a sum of log-distances
would mean nothing).
"""

import tensorflow as tf

from l2o.errors import unknown


class WhichTeacherCountCallback:
    """How many inner steps had each teacher as the farthest one (the one min-max penalises)."""

    key = "teacher_counts"
    replica_reduce = "SUM"

    def initial(self, num_teachers, unroll_len):
        return tf.zeros([num_teachers], tf.int32)

    def update(self, state, i, loss, distances):
        if distances.shape[0] == 0:  # no teachers: nothing to count (the reference crashed)
            return state
        return state + tf.one_hot(tf.argmax(distances), tf.shape(distances)[0], dtype=tf.int32)

    def summary(self, state):
        return state


class TeacherLossCallback:
    """The log-distance to every teacher at every inner step: [unroll_len, num_teachers]."""

    key = "teacher_loss"
    replica_reduce = "MEAN"

    def initial(self, num_teachers, unroll_len):
        return tf.zeros([unroll_len, num_teachers], tf.float32)

    def update(self, state, i, loss, distances):
        if distances.shape[0] == 0:
            return state
        return tf.tensor_scatter_nd_update(state, [[i]], distances[None, :])

    def summary(self, state):
        return state


CALLBACKS = {c.__name__: c for c in (WhichTeacherCountCallback, TeacherLossCallback)}


def get_callback(name):
    if name not in CALLBACKS:
        raise unknown("step callback", name, CALLBACKS)
    return CALLBACKS[name]()
