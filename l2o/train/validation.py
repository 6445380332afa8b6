"""What seeded validation computes once and reuses: the teachers' scores, the warmups.

A seeded validation draws the same lifetimes, scales, minibatches and policy noise in every
call (the draws are keyed by its seed, see :mod:`l2o.draws`). Two things in it do not
depend on the learner's weights: the teachers' scores (they are not meta-trained) and the
SGD warmup's path of parameters. :class:`ValidationCache` keeps both per setting, so later
calls run the learner alone and replay the warmup on recorded gradients, with the same
figures.
"""

import tensorflow as tf

#: The most memory the recorded gradients of one validation setting's warmups may take
#: (see :meth:`ValidationCache.warmup_store`); above it, validation recomputes its warmups.
REPLAY_BYTES = 2 ** 30


class ValidationCache:
    """The teachers' scores of every seeded setting, and the latest setting's warmups."""

    def __init__(self):
        self.teacher_scores = {}
        self.warmups = {}

    def scored(self, run, problem, unroll_len, epochs, depth, seed, warmup, warmup_rate):
        """A validation call on one problem that scores the teachers, each score computed once.

        The teachers are not meta-trained, and a seeded validation draws the same lifetimes,
        scales and minibatches every time: their scores depend only on the problem and the
        call's settings, while the learner's change with its weights. So a seeded call
        scores the teachers once per setting (about half a validation's cost with two
        teachers) and afterwards runs the learner alone, reusing the scores. The learner's
        figure is the same either way, its random draws included (they are keyed by the
        seed, not by the graph). ``run(score_teachers)`` runs the validation of this problem
        (the teachers too, or not).
        """
        if seed is None:
            return run(True)
        key = self.setting(problem, unroll_len, epochs, depth, warmup, warmup_rate, seed)
        scores = self.teacher_scores.get(key)
        if scores is None:
            stats = run(True)
            self.teacher_scores[key] = stats["teacher_meta_loss"]
            return stats
        return dict(run(False), teacher_meta_loss=scores)

    def warmup_store(self, problem, unroll_len, epochs, depth, warmup, warmup_rate, seed,
                     replicas):
        """The store of a seeded validation's warmup gradients, ``{(lifetime, unroll): grads}``.

        A seeded validation draws the same lifetimes and minibatches every time, and its SGD
        warmup moves the parameters along a path no policy changes: the first call records
        each step's gradient, later calls replay them to advance the policies' states
        without evaluating the optimizee (the same figures; on conv_train a replayed step
        costs the learner's RNNProp forward instead of a forward and backward pass besides;
        the policies' random draws are keyed by the seed, so they replay too). None (no
        replay) without a seed, on several replicas, or when the gradients would take more
        than ``REPLAY_BYTES``.

        Only the latest setting is kept: a curriculum validates each stage with one setting,
        so starting the next stage's store releases the finished stage's (up to
        ``REPLAY_BYTES`` each, on the device).
        """
        if seed is None or warmup == 0 or replicas > 1:
            return None
        size = epochs * warmup * unroll_len * problem.num_params * 4
        if size > REPLAY_BYTES:
            return None
        key = self.setting(problem, unroll_len, epochs, depth, warmup, warmup_rate, seed)
        if key not in self.warmups:
            self.warmups = {key: {}}
        return self.warmups[key]

    @staticmethod
    def setting(problem, unroll_len, epochs, depth, warmup, warmup_rate, seed):
        """What a seeded validation's draws depend on: the key of its teacher scores and of
        its recorded warmups. The depth too, as a lifetime's minibatches are drawn after the
        previous lifetime's unrolls."""
        return (problem, unroll_len, epochs, depth, warmup, float(warmup_rate), repr(seed),
                tf.distribute.get_strategy().num_replicas_in_sync)
