"""One truncation of meta-training: the inner steps, their losses, the SGD warmup.

The learner and every teacher follow their own trajectory from the same initial
parameters on the same minibatches. One *unroll* runs ``unroll_len`` inner steps inside a
``tf.while_loop`` (traced once per problem, unroll length and mode); the learner's inner
gradients are not stopped, so the meta-gradient keeps the second-order terms. The loss of
an unroll is ``w_meta * meta + w_imitation * imitation``:

- meta: mean over steps of ``log f_i - log f0_i`` where ``f0_i`` is the loss of the
  truncation-start parameters on the same minibatch;
- imitation: per step, ``reduce`` over teachers (max: min-max, mean: mean amalgamation)
  of the log mean squared distance between learner and teacher parameters.

Parameters are stored scaled, ``theta = x / s`` with ``s = exp(U(-spread, spread))`` per
scalar: the learner sees gradients w.r.t. ``theta``; teachers see the true coordinates
("oracle scaling") unless ``do_teacher_parameter_scale``.
"""

import contextlib

import tensorflow as tf

from l2o import draws
from l2o.train.losses import meta_term, teacher_distance


def all_finite(x):
    """Whether every element of ``x`` is finite (a scalar boolean tensor)."""
    return tf.reduce_all(tf.math.is_finite(x))


def _coordinates(tensors):
    """The scalars of several tensors as one vector: what a coordinatewise policy steps on."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)


def _sizes(tensors):
    return [t.shape.num_elements() for t in tensors]


def initial_state(policy, params):
    """A policy's state for a list of parameter tensors, in the layout meta-training keeps.

    A coordinatewise policy gets one state of all the coordinates concatenated (it then
    steps every tensor with one call); any other, one state per tensor.
    """
    if policy.coordinatewise:
        return policy.init_state(_coordinates(params))
    return [policy.init_state(p) for p in params]


def _per_tensor_finite(policy, state, params):
    """Per tensor: whether every floating leaf of its (new) state is finite."""
    if not policy.coordinatewise:
        return [tf.reduce_all([all_finite(leaf) for leaf in tf.nest.flatten(s)
                               if leaf.dtype.is_floating] or [tf.constant(True)]) for s in state]
    coordinates = [tf.reduce_all(tf.math.is_finite(leaf), axis=tuple(range(leaf.shape.rank - 1)))
                   for leaf in tf.nest.flatten(state) if leaf.dtype.is_floating]
    if not coordinates:
        return [tf.constant(True)] * len(params)
    finite = tf.reduce_all(tf.stack(coordinates), axis=0)
    return [tf.reduce_all(f) for f in tf.split(finite, _sizes(params))]


def _keep(policy, ok, new_state, state, params):
    """The new state where the tensor's flag in ``ok`` is True, else the old one."""
    if policy.coordinatewise:
        keep = tf.repeat(tf.stack(ok), _sizes(params))  # per coordinate: its tensor's flag
        return tf.nest.map_structure(lambda new, old: tf.where(keep, new, old), new_state, state)
    return [tf.nest.map_structure(lambda new, old, k=k: tf.where(k, new, old), s2, s)
            for k, s2, s in zip(ok, new_state, state)]


def _warmup_mask(policy, state, new_state):
    """``policy.warmup_mask`` in :func:`initial_state`'s layout."""
    if policy.coordinatewise:
        return policy.warmup_mask(state, new_state)
    return [policy.warmup_mask(s, s2) for s, s2 in zip(state, new_state)]


class Unroller:
    """Runs the learner and the teachers through one truncation (or an SGD warmup) on plain
    tensors: the differentiable part of meta-training, with no variable assigned.

    ``policy`` is the learner, ``teachers`` the built teacher policies; the rest are the
    loss settings of :class:`l2o.train.MetaTrainer` (see there), ``reduce`` and
    ``unroll_weight`` already resolved, ``callbacks`` the built step callbacks.
    """

    def __init__(self, policy, teachers, use_log_objective, scale_objective,
                 do_teacher_parameter_scale, reduce, unroll_weight, obj_train_max_multiplier,
                 huber_delta, epsilon, callbacks):
        self.policy = policy
        self.teachers = teachers
        self.use_log_objective = use_log_objective
        self.scale_objective = scale_objective
        self.do_teacher_parameter_scale = do_teacher_parameter_scale
        self.reduce = reduce
        self.unroll_weight = unroll_weight
        self.obj_train_max_multiplier = obj_train_max_multiplier
        self.huber_delta = huber_delta
        self.epsilon = epsilon
        self.callbacks = callbacks

    # ------------------------------------------------------------------ one inner step

    def step(self, policy, params, grads, state, training, scale, oracle):
        """``policy.step`` on every tensor: ``(deltas, new_state)``, both unguarded.

        ``state`` is in :func:`initial_state`'s layout: a coordinatewise policy steps once on
        all coordinates concatenated (a few large ops instead of many small ones), any other
        tensor by tensor. ``oracle``: the policy sees true coordinates, ``theta * scale``.
        """
        if oracle:
            params = [p * sc for p, sc in zip(params, scale)]
            grads = [g / sc for g, sc in zip(grads, scale)]
        if policy.coordinatewise:
            delta, new_state = policy.step(_coordinates(params), _coordinates(grads), state,
                                           training=training)
            deltas = [tf.reshape(d, tf.shape(p)) for d, p in zip(tf.split(delta, _sizes(params)),
                                                               params)]
        else:
            steps = [policy.step(p, g, s, training=training)
                     for p, g, s in zip(params, grads, state)]
            deltas, new_state = [d for d, _ in steps], [s for _, s in steps]
        if oracle:
            deltas = [d / sc for d, sc in zip(deltas, scale)]
        return deltas, new_state

    def advance(self, policy, params, grads, state, training, scale, oracle):
        """One policy step on every tensor, with the non-finite guard (per tensor).

        The guard's selects run only when some delta is non-finite (``tf.cond``): selecting
        every state leaf at every step, and back again in the meta-gradient, cost about a
        tenth of a meta-training step.
        """
        deltas, new_state = self.step(policy, params, grads, state, training, scale, oracle)
        ok = [all_finite(d) for d in deltas]

        def guarded():
            return ([p - tf.where(k, d, tf.zeros_like(d)) for p, d, k in zip(params, deltas, ok)],
                    _keep(policy, ok, new_state, state, params))
        return tf.cond(tf.reduce_all(tf.stack(ok)),
                       lambda: ([p - d for p, d in zip(params, deltas)], new_state), guarded)

    def loss_and_grads(self, problem, params, scale, x, y):
        with tf.GradientTape() as tape:
            tape.watch(params)
            f = problem.loss([p * s for p, s in zip(params, scale)], x, y)
        return f, tape.gradient(f, params)

    @staticmethod
    def _draws(key, step):
        """The scope of inner step ``step``'s random draws (none without a key)."""
        return draws.seeded(draws.fold(key, step)) if key is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ one unroll

    def unroll(self, problem, x, y, scale, learner, teachers, training, score_teachers=False,
                imitation=True, key=None):
        """Run one truncation.

        Returns (meta, imitation, learner, teachers, callbacks, steps, teacher_meta). Without
        ``imitation`` (validation) no distance to the teachers is computed: the imitation
        loss is 0 and the callbacks see no teachers. With
        ``score_teachers``, ``teacher_meta`` [n_teachers] is each teacher's own meta-loss on
        the same minibatches (the learner's objective on the teacher's trajectory, from the
        teacher's own truncation start): the yardstick that says whether the student beats
        its teachers; otherwise it is zeros.

        ``key`` ([2] int64) keys the random draws of inner step ``i`` by ``fold(key, i)``
        (see :mod:`l2o.draws`); None leaves them to TensorFlow's stateful random ops.

        A non-finite learner loss ends the learner's part of the unroll. Without
        ``score_teachers`` the whole unroll stops there (training: nothing after it can reach
        the meta-gradient); with it the teachers run to the end, so their scores never
        depend on how the learner fares.
        """
        n = tf.shape(x)[0]
        start = [tf.stop_gradient(p) for p in learner[0]]
        teacher_starts = [[tf.stop_gradient(p) for p in tp] for tp, _ in teachers]
        num_teachers = len(self.teachers)
        run_teachers = imitation or score_teachers  # otherwise nothing reads their steps
        oracle = not self.do_teacher_parameter_scale
        cb_states = tuple(c.initial(num_teachers, n) for c in self.callbacks)

        def cond(i, meta, imit, learner, teachers, cb_states, done, tmeta):
            if score_teachers:
                return i < n
            return tf.logical_and(i < n, tf.logical_not(done))

        def body(i, meta, imit, learner, teachers, cb_states, done, tmeta):
            xi, yi = x[i], y[i]
            f, grads = self.loss_and_grads(problem, learner[0], scale, xi, yi)
            with self._draws(key, i):
                moved = self.advance(self.policy, learner[0], grads, learner[1], training,
                                      scale, oracle=False)
            if score_teachers:  # a stopped learner stays where it stopped; teachers go on
                moved = tf.cond(done, lambda: learner, lambda: moved)
            learner = moved
            new_teachers, teacher_f = ([], []) if run_teachers else (list(teachers), [])
            for teacher, (tp, ts) in zip(self.teachers if run_teachers else (), teachers):
                ft, tg = self.loss_and_grads(problem, tp, scale, xi, yi)
                teacher_f.append(ft)
                with self._draws(key, i):
                    tp, ts = self.advance(teacher, tp, tg, ts, False, scale, oracle=oracle)
                new_teachers.append(([tf.stop_gradient(p) for p in tp],
                                     tf.nest.map_structure(tf.stop_gradient, ts)))
            if self.scale_objective:
                f0 = problem.loss([p * s for p, s in zip(start, scale)], xi, yi)
            else:
                f0 = tf.constant(1.0)
            stop = tf.logical_not(tf.math.is_finite(f))
            if self.obj_train_max_multiplier > 0:
                limit = (self.obj_train_max_multiplier - 1) * tf.abs(f0) + f0
                stop = tf.logical_or(stop, f > limit)
            stop = tf.logical_or(stop, done)  # once stopped, the learner stays stopped
            w = tf.cast(self.unroll_weight(i, n), tf.float32)
            # a stopped step contributes nothing: select a harmless value before the log
            safe_f = tf.where(stop, f0, f)
            meta_step = w * meta_term(safe_f, f0, self.use_log_objective, self.epsilon)
            if num_teachers and imitation:
                distances = tf.stack([
                    teacher_distance(learner[0], tp, problem.num_params, self.huber_delta,
                                     self.epsilon) for tp, _ in new_teachers])
                reduced = self.reduce(distances)
                imit_step = w * (reduced if self.use_log_objective else tf.exp(reduced))
            else:
                distances = tf.zeros([0])
                imit_step = tf.constant(0.0)
            keep = tf.logical_not(stop)
            if score_teachers and num_teachers:
                ft = tf.stack(teacher_f)
                if self.scale_objective:
                    f0_t = tf.stack([problem.loss([p * s for p, s in zip(ts, scale)], xi, yi)
                                     for ts in teacher_starts])
                else:
                    f0_t = tf.ones_like(ft)
                ok_t = tf.logical_and(tf.math.is_finite(ft), tf.math.is_finite(f0_t))
                tstep = w * meta_term(tf.where(ok_t, ft, f0_t), f0_t, self.use_log_objective,
                                      self.epsilon)
                tmeta = tmeta + tf.where(ok_t, tstep, 0.0)
            meta = meta + tf.where(keep, meta_step, 0.0)
            imit = imit + tf.where(keep, imit_step, 0.0)
            cb_states = tuple(
                tf.nest.map_structure(lambda new, old: tf.where(keep, new, old),
                                      c.update(s, i, f, distances), s)
                for c, s in zip(self.callbacks, cb_states))
            return i + 1, meta, imit, learner, tuple(new_teachers), cb_states, stop, tmeta

        teachers = tuple(teachers)
        i, meta, imit, learner, teachers, cb_states, _, tmeta = tf.while_loop(
            cond, body,
            (tf.constant(0), tf.constant(0.0), tf.constant(0.0), learner, teachers, cb_states,
             tf.constant(False), tf.zeros([num_teachers])), maximum_iterations=x.shape[0])
        return meta, imit, learner, teachers, cb_states, i, tmeta

    # ------------------------------------------------------------------ SGD warmup

    def warmup_advance(self, theta, grads, states, scale, rate):
        """One SGD warmup step: every policy only advances its (masked) state on ``grads``.

        ``states`` holds the learner's state first, then the teachers' (as many as given).
        """
        oracle = not self.do_teacher_parameter_scale
        new_states = []
        for policy, state in zip([self.policy] + self.teachers, states):
            learner = policy is self.policy
            _, new = self.step(policy, theta, grads, state, learner, scale,
                                oracle and not learner)
            ok = _per_tensor_finite(policy, new, theta)
            new = _warmup_mask(policy, state, new)
            new_states.append(_keep(policy, ok, new, state, theta))
        return [p - rate * g for p, g in zip(theta, grads)], tuple(new_states)

    def warmup(self, problem, x, y, scale, theta, learner_states, teacher_states, rate,
                     key, record=False):
        """SGD on the shared parameters; every policy only advances its (masked) state.

        With ``record`` it also returns the gradient of every step, stacked per tensor: the
        parameters' path does not depend on any policy, so a later warmup on the same
        minibatches can replay it (:meth:`replay`) without the optimizee. ``key``
        keys the policies' draws as in :meth:`unroll`.
        """
        key = draws.for_replica(key)
        steps = tf.shape(x)[0]
        recorded = tuple(tf.TensorArray(p.dtype, size=steps) for p in theta) if record else ()

        def body(i, theta, states, recorded):
            _, grads = self.loss_and_grads(problem, theta, scale, x[i], y[i])
            with self._draws(key, i):
                theta, states = self.warmup_advance(theta, grads, states, scale, rate)
            return i + 1, theta, states, tuple(r.write(i, g) for r, g in zip(recorded, grads))

        _, theta, states, recorded = tf.while_loop(
            lambda i, *_: i < steps, body,
            (tf.constant(0), theta, (learner_states,) + tuple(teacher_states), recorded))
        if record:
            return theta, states[0], states[1:], [r.stack() for r in recorded]
        return theta, states[0], states[1:]

    def replay(self, problem, grads, scale, theta, learner_states, teacher_states,
                       rate, key):
        """:meth:`warmup` on recorded gradients ``[steps, ...]`` per tensor: the same
        parameters, states and draws, without evaluating the optimizee."""
        key = draws.for_replica(key)

        def body(i, theta, states):
            with self._draws(key, i):
                return (i + 1,) + self.warmup_advance(theta, [g[i] for g in grads], states,
                                                       scale, rate)

        _, theta, states = tf.while_loop(
            lambda i, *_: i < tf.shape(grads[0])[0], body,
            (tf.constant(0), theta, (learner_states,) + tuple(teacher_states)))
        return theta, states[0], states[1:]
