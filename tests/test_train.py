"""Meta-training: loss terms by hand, oracle scaling, the meta-gradient, the non-finite guard."""

import functools

import numpy as np
import pytest
import tensorflow as tf

import l2o
from l2o.policies import build_policy
from l2o.train import MetaTrainer
from l2o.train.validation import ValidationCache
from l2o.train.losses import (AdaptiveGC, SimpleGC, get_reduction, huber, loss_weights,
                              meta_term, teacher_distance)

TARGET = np.array([0.3, -0.2], np.float32)
CURVE = np.array([1.0, 4.0], np.float32)


class TinyProblem:
    """Two parameters, loss 0.5 * sum(c (p - t)^2) * (1 + 0.1 mean(x)); a poisonable gradient."""

    num_params = 2
    batch_size = 1
    size = 100
    spec = {"target": "tiny"}

    def __init__(self):
        self.poison = tf.Variable(False)

    def init_params(self, seed=None):
        return [tf.constant([1.0, -0.5])]

    def loss(self, params, x, y):
        poison = tf.convert_to_tensor(self.poison)

        @tf.custom_gradient
        def guarded(p):
            value = 0.5 * tf.reduce_sum(CURVE * tf.square(p - TARGET)) * (1 + 0.1 * tf.reduce_mean(x))

            def grad(upstream):
                g = upstream * CURVE * (p - TARGET) * (1 + 0.1 * tf.reduce_mean(x))
                return tf.where(poison, tf.fill(tf.shape(g), np.nan), g)
            return value, grad
        return guarded(params[0])

    def sample(self, unroll_len, rng):
        return (rng.normal(size=(unroll_len, 1)).astype(np.float32),
                np.zeros((unroll_len, 1), np.int32))


#: The key of a compiled step's random draws (see l2o.draws).
KEY = tf.constant([0, 0], tf.int64)


def adam_teacher(lr=0.1):
    return {"class_name": "Adam", "config": {"learning_rate": lr, "epsilon": 1e-10}}


# ---------------------------------------------------------------------- loss terms by hand

def test_meta_term_and_huber_by_hand():
    assert float(meta_term(tf.constant(0.5), tf.constant(2.0), True, 0.0)) == pytest.approx(np.log(0.25))
    assert float(meta_term(tf.constant(0.5), tf.constant(2.0), False, 0.0)) == pytest.approx(0.25)
    np.testing.assert_allclose(huber(tf.constant([0.5, -3.0])).numpy(), [0.125, 4.5])
    np.testing.assert_allclose(huber(tf.constant([0.5, -3.0]), 1.0).numpy(), [0.125, 2.5])


def test_imitation_distance_and_reductions_by_hand():
    learner = [tf.constant([1.0, 2.0])]
    t1, t2 = [tf.constant([0.0, 2.0])], [tf.constant([1.0, -1.0])]
    d1 = float(teacher_distance(learner, t1, 2, epsilon=0.0))
    d2 = float(teacher_distance(learner, t2, 2, epsilon=0.0))
    assert d1 == pytest.approx(np.log(0.5 * 1.0) - np.log(2))
    assert d2 == pytest.approx(np.log(0.5 * 9.0) - np.log(2))
    d = tf.constant([d1, d2])
    assert float(get_reduction("reduce_max")(d)) == pytest.approx(d2)  # min-max: the farthest
    assert float(get_reduction("reduce_mean")(d)) == pytest.approx((d1 + d2) / 2)
    with pytest.raises(l2o.L2OError, match="unknown loss_reduce"):
        get_reduction("reduce_median")


def test_loss_weights_modes():
    rng = np.random.default_rng(0)
    assert loss_weights("sum", 0.2, rng) == (1.0, 0.2)
    assert loss_weights("imitation", 0.2, rng) == (0.0, 1.0)
    assert loss_weights("meta", 0.2, rng) == (1.0, 0.0)
    draws = [loss_weights("switch", 0.3, rng) for _ in range(2000)]
    assert set(draws) == {(0.0, 1.0), (1.0, 0.0)}
    assert np.mean([d == (0.0, 1.0) for d in draws]) == pytest.approx(0.3, abs=0.04)


def test_gradient_clipping_by_hand():
    w = [tf.constant([3.0, 4.0]), tf.constant([0.0])]        # ||w|| = 5, and a zero tensor
    g = [tf.constant([30.0, 40.0]), tf.constant([1.0])]      # ||g|| = 50, 1
    clipped = AdaptiveGC(0.1, 1e-3)(g, w)
    np.testing.assert_allclose(clipped[0].numpy(), [0.3, 0.4], rtol=1e-6)   # to 0.1 * 5
    np.testing.assert_allclose(clipped[1].numpy(), [1e-4], rtol=1e-5)       # to 0.1 * 1e-3
    small = AdaptiveGC(0.1)([tf.constant([0.1, 0.0])], [w[0]])
    np.testing.assert_allclose(small[0].numpy(), [0.1, 0.0])                # untouched
    np.testing.assert_allclose(SimpleGC(0.5)([tf.constant([2.0, -0.1])], w[:1])[0].numpy(), [0.5, -0.1])


# ---------------------------------------------------------------------- one unroll

def _trainer(policy=None, **kwargs):
    policy = policy or build_policy("RNNPropOptimizer", {"layers": [4]})
    kwargs.setdefault("teachers", [adam_teacher()])
    kwargs.setdefault("parameter_scale_spread", 0.0)
    return MetaTrainer(policy, **kwargs)


def test_unroll_meta_and_imitation_by_hand():
    """An SGD 'learner' with trainable lr: every term of the unroll written out in numpy."""
    learner = build_policy("SGDOptimizer", {"learning_rate": 0.05, "trainable": True})
    trainer = _trainer(learner, teachers=[{"class_name": "SGD", "config": {"learning_rate": 0.2}},
                                          adam_teacher(0.1)], unroll_weight="sum")
    problem = TinyProblem()
    rng = np.random.default_rng(0)
    scale, start, teachers = trainer._new_lifetime(problem, rng)
    x = np.zeros((3, 1), np.float32)
    meta, imit, *_ = trainer.unroller.unroll(problem, tf.constant(x),
                                             tf.constant(x.astype(np.int32)), scale, start,
                                             teachers, True)
    f = lambda p: 0.5 * np.sum(CURVE * (p - TARGET) ** 2)  # noqa: E731
    grad = lambda p: CURVE * (p - TARGET)  # noqa: E731
    pl = ps = pa = np.array([1.0, -0.5])
    m = v = np.zeros(2)
    f0, exp_meta, exp_imit = f(pl), 0.0, 0.0
    for _ in range(3):
        exp_meta += np.log(f(pl) + 1e-10) - np.log(f0 + 1e-10)
        pl = pl - 0.05 * grad(pl)
        ps = ps - 0.2 * grad(ps)
        g = grad(pa)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        pa = pa - 0.1 * (m / 0.1) / np.sqrt(v / 0.001 + 1e-10)
        d = [np.log(np.sum(0.5 * (pl - t) ** 2) + 1e-10) - np.log(2) for t in (ps, pa)]
        exp_imit += max(d)
    assert float(meta) == pytest.approx(exp_meta, rel=1e-4)
    assert float(imit) == pytest.approx(exp_imit, rel=1e-4)


def test_parameter_scaling_and_teacher_oracle_scaling():
    """Scaled storage: the learner sees s * grad_x; the teacher moves exactly as unscaled."""
    teacher = adam_teacher(0.1)
    scaled = _trainer(build_policy("SGDOptimizer", {"learning_rate": 0.01, "trainable": True}),
                      teachers=[teacher], parameter_scale_spread=3.0)
    plain = _trainer(build_policy("SGDOptimizer", {"learning_rate": 0.01, "trainable": True}),
                     teachers=[teacher], parameter_scale_spread=0.0)
    problem = TinyProblem()
    scale, learner, teachers = scaled._new_lifetime(problem, np.random.default_rng(3))
    s = scale[0].numpy()
    assert not np.allclose(s, 1.0) and np.all((s > np.exp(-3)) & (s < np.exp(3)))
    np.testing.assert_allclose(learner[0][0].numpy() * s, [1.0, -0.5], rtol=1e-6)
    x = tf.zeros((4, 1))
    y = tf.zeros((4, 1), tf.int32)
    out_scaled = scaled.unroller.unroll(problem, x, y, scale, learner, teachers, False)
    scale1, learner1, teachers1 = plain._new_lifetime(problem, np.random.default_rng(3))
    out_plain = plain.unroller.unroll(problem, x, y, scale1, learner1, teachers1, False)
    # teacher trajectories agree in true coordinates
    np.testing.assert_allclose(out_scaled[3][0][0][0].numpy() * s,
                               out_plain[3][0][0][0].numpy(), rtol=1e-5)
    # the learner's first step in stored coordinates is lr * s * grad_x
    one = scaled.unroller.unroll(problem, x[:1], y[:1], scale, learner, teachers, False)
    g_x = CURVE * (np.array([1.0, -0.5]) - TARGET)
    np.testing.assert_allclose(one[2][0][0].numpy(), learner[0][0].numpy() - 0.01 * s * g_x,
                               rtol=1e-5)


def test_meta_gradient_matches_finite_difference():
    tf.keras.utils.set_random_seed(0)
    trainer = _trainer(teachers=[adam_teacher()], parameter_scale_spread=1.0)
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(1))
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 1)).astype(np.float32))
    y = tf.zeros((4, 1), tf.int32)
    weight = trainer.policy.delta.kernel

    def loss():
        meta, imit = trainer.unroller.unroll(problem, x, y, scale, learner, teachers, False)[:2]
        return meta + 0.5 * imit

    with tf.GradientTape() as tape:
        value = loss()
    analytic = tape.gradient(value, weight).numpy()
    index = int(np.argmax(np.abs(analytic)))
    base = weight.numpy()
    eps = 1e-2
    values = []
    for sign in (1, -1):
        bumped = base.copy().reshape(-1)
        bumped[index] += sign * eps
        weight.assign(bumped.reshape(base.shape))
        values.append(float(loss()))
    weight.assign(base)
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(analytic.reshape(-1)[index]) > 1e-3
    assert abs(numeric - analytic.reshape(-1)[index]) / abs(numeric) < 1e-2


class QuadraticProblem:
    """f(p) = 0.5 p^T A p with A = diag(1, 3): SGD's trajectory has a closed form."""

    num_params = 2
    batch_size = 1
    size = 100
    spec = {"target": "quadratic"}
    CURVE = np.array([1.0, 3.0], np.float64)
    START = np.array([1.0, -0.5], np.float64)

    def init_params(self, seed=None):
        return [tf.constant(self.START, tf.float32)]

    def loss(self, params, x, y):
        return 0.5 * tf.reduce_sum(tf.constant(self.CURVE, tf.float32) * tf.square(params[0]))

    def sample(self, unroll_len, rng):
        return np.zeros((unroll_len, 1), np.float32), np.zeros((unroll_len, 1), np.int32)


def sgd_meta_gradient(lr, steps, second_order=True):
    """d/dlr of mean_k log f(p_k) - log f(p_0), k = 0..steps-1, for SGD on QuadraticProblem.

    p_k = (I - lr A)^k p_0. First order treats each inner gradient A p_j as a constant:
    dp_k/dlr = -sum_{j<k} A p_j instead of the exact -k A (I - lr A)^(k-1) p_0.
    """
    a, p0 = QuadraticProblem.CURVE, QuadraticProblem.START
    total = 0.0
    for k in range(steps):
        p = (1 - lr * a) ** k * p0
        if second_order:
            dp = -k * a * (1 - lr * a) ** max(k - 1, 0) * p0
        else:
            dp = -sum(a * (1 - lr * a) ** j * p0 for j in range(k))
        f = 0.5 * np.sum(a * p * p)
        total += np.sum(a * p * dp) / f
    return total / steps


def test_compiled_meta_gradient_keeps_the_second_order_terms():
    """The compiled training step's meta-gradient is the exact second-order one."""
    lr, steps = 0.2, 4
    learner = build_policy("SGDOptimizer", {"learning_rate": lr, "trainable": True})
    trainer = _trainer(learner, teachers=[], il_mode="meta",
                       gradient_clipping={"class_name": "SimpleGC", "config": {"clip_value": -1}})
    problem = QuadraticProblem()
    scale, start, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x, y = (tf.constant(a) for a in problem.sample(steps, None))
    out = trainer._compiled_fn("train", problem)(x, y, scale, start, teachers,
                                                  tf.constant(1.0), tf.constant(0.0), KEY)
    got = float(out["grads"][0])
    exact, first = sgd_meta_gradient(lr, steps), sgd_meta_gradient(lr, steps, False)
    assert got == pytest.approx(exact, rel=1e-4)
    assert abs(exact - first) > 0.2 * abs(exact)  # dropping them would be caught


# ---------------------------------------------------------------------- whole periods

def test_train_returns_stats_and_learns():
    trainer = _trainer(step_callbacks=["WhichTeacherCountCallback"],
                       stack_stats=["meta_loss", "imitation_loss", "teacher_counts"],
                       teachers=[adam_teacher(0.1), {"class_name": "SGD", "config": {"learning_rate": 0.1}}])
    result = trainer.train([TinyProblem()], unroll_len=5, p_teacher=0.5, epochs=2, depth=2,
                           warmup=1, warmup_rate=0.05, progress=False)
    assert result["stack"]["meta_loss"].shape == (1, 4)
    assert result["stack"]["teacher_counts"].shape == (1, 4, 2)
    assert np.all(result["stack"]["teacher_counts"].sum(-1) == 5)
    assert result["mean"]["skipped"] == 0
    assert int(trainer.optimizer.iterations) == 4
    assert result["mean"]["step_ms"] > 0  # the calls after the first (which traced) are timed


def test_step_time_is_written_beside_the_validation(tmp_path):
    """summary.csv holds the wall time per inner step of training and of validation; calls
    that traced a graph are left out (NaN when every call traced), and the seconds of each
    period spent validating."""
    from l2o.strategy.simple import SimpleStrategy

    trainer = _trainer(teachers=[adam_teacher()])
    first = trainer.train([TinyProblem()], 3, 0.5, epochs=1, depth=1, validation=True,
                          progress=False)
    assert np.isnan(first["mean"]["step_ms"])  # its only call traced
    strategy = SimpleStrategy(trainer, [TinyProblem()], directory=tmp_path / "exp",
                              num_periods=2, unroll_len=3, depth=2, epochs=1,
                              validation_depth=2, annealing_schedule=0.0)
    summary = strategy.train(progress=False)
    assert summary[["step_ms", "validation_step_ms"]].notna().all().all()
    assert (summary[["step_ms", "validation_step_ms"]] > 0).all().all()
    assert ((summary["validation_duration"] > 0)
            & (summary["validation_duration"] < summary["duration"])).all()


def test_nonfinite_meta_gradient_is_skipped_and_counted(tmp_path):
    trainer = _trainer()
    problem = TinyProblem()
    before = trainer.policy.get_weights()
    problem.poison.assign(True)
    result = trainer.train([problem], unroll_len=3, p_teacher=0.5, epochs=1, depth=2,
                           progress=False)
    assert result["mean"]["skipped"] == 2
    assert int(trainer.optimizer.iterations) == 0
    for k, v in trainer.policy.get_weights().items():
        assert np.all(np.isfinite(v))
        np.testing.assert_array_equal(v, before[k])
    problem.poison.assign(False)
    result = trainer.train([problem], unroll_len=3, p_teacher=0.5, epochs=1, depth=2,
                           progress=False)
    assert result["mean"]["skipped"] == 0 and int(trainer.optimizer.iterations) == 2
    trainer.save(str(tmp_path / "ok"))
    trainer.policy.delta.bias.assign([np.nan])
    with pytest.raises(l2o.L2OError, match="non-finite"):
        trainer.save(str(tmp_path / "bad"))
    assert not (tmp_path / "bad.index").exists()


def test_checkpoint_round_trip_restores_policy_and_meta_optimizer(tmp_path):
    trainer = _trainer()
    trainer.train([TinyProblem()], unroll_len=3, p_teacher=0.5, epochs=1, depth=2, progress=False)
    prefix = trainer.save(str(tmp_path / "period_0"))
    saved = trainer.policy.get_weights()
    trainer.train([TinyProblem()], unroll_len=3, p_teacher=0.5, epochs=1, depth=1, progress=False)
    assert int(trainer.optimizer.iterations) == 3
    trainer.restore(prefix)
    assert int(trainer.optimizer.iterations) == 2
    for k, v in trainer.policy.get_weights().items():
        np.testing.assert_array_equal(v, saved[k])
    assert set(l2o.saving.read_network_weights(prefix)) == set(saved)


def test_bad_training_config_errors():
    with pytest.raises(l2o.L2OError, match="unknown il_mode"):
        _trainer(il_mode="sometimes")
    with pytest.raises(l2o.L2OError, match="unknown statistic 'teacher_counts'"):
        _trainer(stack_stats=["teacher_counts"])
    with pytest.raises(l2o.L2OError, match="unknown meta-optimizer"):
        _trainer(optimizer={"class_name": "Adamm", "config": {}})
    with pytest.raises(l2o.L2OError, match="no trainable weights"):
        _trainer(build_policy("AdamOptimizer"))


# ---------------------------------------------------------------------- perturbations

PGD = {"class_name": "PGDPerturbation",
       "config": {"steps": 1, "magnitude": 0.05, "norm": "inf", "learning_rate": 10.0}}


def test_pgd_attack_makes_the_unroll_loss_worse():
    tf.keras.utils.set_random_seed(4)
    policy = build_policy("RNNPropOptimizer", {"layers": [4], "perturbation": PGD})
    trainer = _trainer(policy)
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 1)).astype(np.float32))
    y = tf.zeros((4, 1), tf.int32)
    pert = policy.perturbation

    def loss():
        meta, imit = trainer.unroller.unroll(problem, x, y, scale, learner, teachers, True)[:2]
        return meta + 0.5 * imit

    pert.reset(True)
    clean = float(loss())
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pert.attack_variables)
        value = loss()
    pert.apply_gradients(tape.gradient(value, pert.attack_variables))
    assert max(float(tf.reduce_max(tf.abs(d))) for d in pert.attack_variables) > 0
    assert float(loss()) > clean
    pert.reset(False)
    assert float(loss()) == pytest.approx(clean, rel=1e-6)


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_attack_steps_count_the_ascents_that_ran(steps):
    perturbation = None if steps == 0 else {"class_name": "PGDPerturbation",
                                            "config": dict(PGD["config"], steps=steps)}
    policy = build_policy("RNNPropOptimizer", {"layers": [4], "perturbation": perturbation})
    trainer = _trainer(policy)
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x, y = (tf.constant(a) for a in problem.sample(3, np.random.default_rng(1)))
    before = policy.get_weights()
    out = trainer._compiled_fn("train", problem)(x, y, scale, learner, teachers,
                                                  tf.constant(1.0), tf.constant(0.5), KEY)
    assert int(out["attack_steps"]) == steps  # counted inside the ascent loop
    after = policy.get_weights()  # attack and reset leave the policy's weights as they were
    assert all(np.array_equal(before[k], after[k]) for k in before)
    result = trainer.train([problem], unroll_len=3, p_teacher=0.5, epochs=1, depth=2,
                           progress=False)
    assert result["mean"]["attack_steps"] == 2 * steps
    assert all(np.all(np.isfinite(v)) for v in policy.get_weights().values())


def test_evaluation_never_perturbs():
    """Same weights, with and without a perturbation config: identical optimizer updates."""
    plain = build_policy("RNNPropOptimizer", {"layers": [4]})
    for spec in (PGD, {"class_name": "RandomPerturbation", "config": {"noise_stddev": 0.5}}):
        perturbed = build_policy("RNNPropOptimizer", {"layers": [4], "perturbation": spec})
        perturbed.set_weights(plain.get_weights())
        results = []
        for policy in (plain, perturbed):
            var = tf.Variable(np.linspace(-1, 1, 6).astype(np.float32))
            opt = l2o.LearnedOptimizer(policy)
            for k in range(3):
                opt.apply_gradients([(tf.constant(np.sin(np.arange(6) + k), tf.float32), var)])
            results.append(var.numpy())
        np.testing.assert_array_equal(results[0], results[1])


# ---------------------------------------------------------------------- several replicas

def test_two_replicas_sum_meta_gradients_and_average_losses(two_cpus):
    settings = dict(teachers=[adam_teacher(), adam_teacher(0.01)], il_mode="meta",
                    parameter_scale_spread=1.0,
                    optimizer={"class_name": "SGD", "config": {"learning_rate": 1.0}},
                    gradient_clipping={"class_name": "SimpleGC", "config": {"clip_value": -1}},
                    step_callbacks=["WhichTeacherCountCallback", "TeacherLossCallback"],
                    stack_stats=["meta_loss", "teacher_counts", "teacher_loss"])

    def single(seed):
        trainer = _trainer(build_policy("SGDOptimizer", {"learning_rate": 0.05, "trainable": True}),
                           **settings)
        before = float(trainer.policy.learning_rate.numpy())
        out = trainer.train([TinyProblem()], 3, 0.0, epochs=1, depth=1, seed=seed, progress=False)
        stats.append(out["stack"])
        return float(trainer.policy.learning_rate.numpy()) - before, out["mean"]["meta_loss"]

    stats = []
    step0, meta0 = single(7)          # replica 0 draws as a single-device run with seed 7
    step1, meta1 = single((7, 1))     # replica 1 has its own stream
    with two_cpus.scope():
        trainer = _trainer(build_policy("SGDOptimizer", {"learning_rate": 0.05, "trainable": True}),
                           **settings)
        before = float(trainer.policy.learning_rate.numpy())
        out = trainer.train([TinyProblem()], 3, 0.0, epochs=1, depth=1, seed=7, progress=False)
    assert out["mean"]["meta_loss"] == pytest.approx((meta0 + meta1) / 2, rel=1e-5)
    assert float(trainer.policy.learning_rate.numpy()) - before == pytest.approx(step0 + step1, rel=1e-5)
    # counts add up over replicas; log-distances are averaged (their sum means nothing)
    np.testing.assert_array_equal(out["stack"]["teacher_counts"],
                                  stats[0]["teacher_counts"] + stats[1]["teacher_counts"])
    np.testing.assert_allclose(out["stack"]["teacher_loss"],
                               (stats[0]["teacher_loss"] + stats[1]["teacher_loss"]) / 2,
                               rtol=1e-5)
    assert abs(step0 - step1) > 1e-6  # the replicas really saw different optimizees


def test_validation_scores_each_teacher_on_the_same_unrolls():
    """A teacher running the learner's own rule scores exactly the learner's validation."""
    learner = build_policy("AdamOptimizer", {"learning_rate": 0.1, "epsilon": 1e-10,
                                             "trainable": True})
    teachers = [adam_teacher(0.1), adam_teacher(0.01)]
    trainer = MetaTrainer(learner, teachers=teachers, parameter_scale_spread=0.0)
    assert trainer.teacher_labels == ["adam", "adam_2"]
    out = trainer.train([TinyProblem()], unroll_len=4, p_teacher=0.0, epochs=2, depth=2,
                        validation=True, seed=3, progress=False)
    scores = out["mean"]["teacher_meta_loss"]
    assert scores["adam"] == pytest.approx(out["mean"]["meta_loss"], rel=1e-6)
    # the slower teacher descends less: a higher (worse) meta-loss
    assert scores["adam_2"] > scores["adam"] + 0.1
    training = trainer.train([TinyProblem()], unroll_len=4, p_teacher=0.0, epochs=1, depth=1,
                             progress=False)
    assert "teacher_meta_loss" not in training["mean"]
    # validation reports the meta-loss only, and skipping the imitation distances it does
    # not report changes neither the learner's figure nor the teachers'
    assert set(out["mean"]) == {"meta_loss", "skipped", "teacher_meta_loss", "step_ms"}
    assert set(out["stack"]) == {"meta_loss"}
    scale, learner_state, teacher_states = trainer._new_lifetime(TinyProblem(),
                                                                 np.random.default_rng(0))
    x, y = (tf.constant(a) for a in TinyProblem().sample(4, np.random.default_rng(1)))
    full, lean = (trainer.unroller.unroll(TinyProblem(), x, y, scale, learner_state,
                                          teacher_states, False, score_teachers=True,
                                          imitation=imitation)
                  for imitation in (True, False))
    assert float(full[1]) != 0 and float(lean[1]) == 0
    assert float(full[0]) == float(lean[0])
    np.testing.assert_array_equal(full[6].numpy(), lean[6].numpy())


def test_teacher_scores_do_not_depend_on_a_diverging_learner():
    def scores(learning_rate):
        learner = build_policy("SGDOptimizer", {"learning_rate": learning_rate,
                                                "trainable": True})
        trainer = MetaTrainer(learner, teachers=[adam_teacher(0.1)], parameter_scale_spread=0.0)
        out = trainer.train([TinyProblem()], unroll_len=6, p_teacher=0.0, epochs=1, depth=2,
                            validation=True, seed=5, progress=False)
        return out["mean"]["meta_loss"], out["mean"]["teacher_meta_loss"]["adam"]

    still, calm_teacher = scores(0.0)
    exploding, teacher = scores(1e30)  # the learner's loss overflows after one step
    assert still == pytest.approx(0.0, abs=1e-6) and np.isfinite(exploding)
    assert teacher == pytest.approx(calm_teacher, rel=1e-6)


def test_a_learner_stopped_while_teachers_are_scored_stays_where_it_stopped():
    """Validation stops the learner once its loss passes obj_train_max_multiplier * f0 but
    runs the teachers on; the learner keeps the parameters of the step whose loss stopped it
    (that step's update included), whatever the later steps."""
    learner = build_policy("SGDOptimizer", {"learning_rate": 0.9, "trainable": True})
    trainer = MetaTrainer(learner, teachers=[adam_teacher(0.1)], parameter_scale_spread=0.0,
                          obj_train_max_multiplier=2.0)
    problem = TinyProblem()
    scale, start, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x, y = tf.zeros((6, 1)), tf.zeros((6, 1), tf.int32)
    out = trainer.unroller.unroll(problem, x, y, scale, start, teachers, False,
                                  score_teachers=True)
    f = lambda p: 0.5 * np.sum(CURVE * (p - TARGET) ** 2)  # noqa: E731
    p0 = np.array([1.0, -0.5])
    path = [TARGET + (1 - 0.9 * CURVE) ** k * (p0 - TARGET) for k in range(7)]
    stop = next(k for k in range(6) if f(path[k]) > 2 * f(p0))
    assert 0 < stop < 5
    np.testing.assert_allclose(out[2][0][0].numpy(), path[stop + 1], rtol=1e-5)
    assert int(out[5]) == 6  # the teachers ran to the end


def _rnnprop_trainer():
    tf.keras.utils.set_random_seed(11)
    policy = build_policy("RNNPropOptimizer", {"layers": [6]})
    return _trainer(policy, teachers=[adam_teacher(0.1), adam_teacher(0.02)], il_mode="sum",
                    parameter_scale_spread=1.0,
                    optimizer={"class_name": "SGD", "config": {"learning_rate": 1e-3}},
                    gradient_clipping={"class_name": "SimpleGC", "config": {"clip_value": -1}})


def _eager_meta_gradient(trainer, problem, x, y, scale, learner, teachers, w_meta, w_imit):
    with tf.GradientTape() as tape:
        meta, imit = trainer.unroller.unroll(problem, x, y, scale, learner, teachers, True)[:2]
        loss = w_meta * meta + w_imit * imit
    return float(loss), [g.numpy() for g in tape.gradient(loss, trainer.weights)]


def test_compiled_step_matches_the_eager_unroll_and_a_meta_step_descends():
    trainer = _rnnprop_trainer()
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(2))
    x, y = (tf.constant(a) for a in problem.sample(5, np.random.default_rng(3)))
    loss, eager = _eager_meta_gradient(trainer, problem, x, y, scale, learner, teachers, 1.0, 0.3)
    out = trainer._compiled_fn("train", problem)(x, y, scale, learner, teachers,
                                                  tf.constant(1.0), tf.constant(0.3), KEY)
    for e, c in zip(eager, out["grads"]):
        np.testing.assert_allclose(c.numpy(), e, rtol=1e-4, atol=1e-7)
    assert max(np.abs(e).max() for e in eager) > 1e-4  # not vacuous
    trainer._apply_fn(out["grads"])  # one meta-step: the same unroll now costs less
    after, _ = _eager_meta_gradient(trainer, problem, x, y, scale, learner, teachers, 1.0, 0.3)
    assert after < loss


def test_two_replica_step_gives_each_replica_the_eager_meta_gradient(two_cpus):
    problem = TinyProblem()
    with two_cpus.scope():
        trainer = _rnnprop_trainer()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(2))
    data = [tuple(tf.constant(a) for a in problem.sample(5, np.random.default_rng(r)))
            for r in (3, 4)]
    eager = [_eager_meta_gradient(trainer, problem, x, y, scale, learner, teachers, 1.0, 0.3)[1]
             for x, y in data]

    def per_replica(values):
        return two_cpus.experimental_distribute_values_from_function(
            lambda ctx: values[ctx.replica_id_in_sync_group])

    x = per_replica([d[0] for d in data])
    y = per_replica([d[1] for d in data])
    with two_cpus.scope():
        out = trainer._compiled_fn("train", problem)(
            x, y, *[per_replica([v] * 2) for v in (scale, learner, teachers)],
            tf.constant(1.0), tf.constant(0.3), KEY)
    for replica, expected in enumerate(eager):
        got = [two_cpus.experimental_local_results(g)[replica].numpy() for g in out["grads"]]
        for e, c in zip(expected, got):
            np.testing.assert_allclose(c, e, rtol=1e-4, atol=1e-7)
    assert not np.allclose(eager[0][0], eager[1][0])  # the replicas saw different data


# ---------------------------------------------------------------------- coordinatewise batching

class FourTensorProblem:
    """A tanh layer and a linear head: four tensors, two of the same size, coupled through
    the loss; the gradient of tensor 1 (the layer's bias) can be poisoned."""

    num_params = 13
    batch_size = 4
    size = 100
    spec = {"target": "four_tensors"}

    def __init__(self):
        self.poison = tf.Variable(False)

    def init_params(self, seed=None):
        rng = np.random.default_rng(seed)
        return [tf.constant(rng.normal(size=shape).astype(np.float32))
                for shape in ((2, 3), (3,), (3,), (1,))]

    def loss(self, params, x, y):
        w, b, u, c = params
        poison = tf.convert_to_tensor(self.poison)

        @tf.custom_gradient
        def guarded(b):
            return tf.identity(b), lambda up: tf.where(poison, tf.fill(tf.shape(up), np.nan), up)
        hidden = tf.tanh(tf.matmul(x, w) + guarded(b))
        return tf.reduce_mean(tf.square(tf.linalg.matvec(hidden, u) + c - y)) + 0.1

    def sample(self, unroll_len, rng):
        x = rng.normal(size=(unroll_len, 4, 2)).astype(np.float32)
        return x, np.sin(x.sum(-1)).astype(np.float32)


class PerTensorRNNProp(build_policy("RNNPropOptimizer", {"layers": [4]}).__class__):
    coordinatewise = False


class PerTensorAdam(build_policy("AdamOptimizer").__class__):
    coordinatewise = False


class PerTensorMomentum(build_policy("MomentumOptimizer").__class__):
    coordinatewise = False


def test_only_exactly_coordinatewise_policies_are_batched():
    """Fresh noise at every weight read would be shared by all tensors if they were stepped
    together: RNNProp under RandomPerturbation keeps stepping tensor by tensor."""
    gaussian = {"class_name": "RandomPerturbation", "config": {"noise_stddev": 0.01}}
    assert build_policy("RNNPropOptimizer", {"layers": [4], "perturbation": PGD}).coordinatewise
    assert not build_policy("RNNPropOptimizer", {"layers": [4],
                                                 "perturbation": gaussian}).coordinatewise
    assert build_policy("AdamOptimizer").coordinatewise
    assert not build_policy("AbstractChoiceOptimizer").coordinatewise


def _batched_and_per_tensor(**kwargs):
    """Two trainers that differ only in whether their policies step all tensors at once."""
    tf.keras.utils.set_random_seed(5)
    batched = build_policy("RNNPropOptimizer", {"layers": [4]})
    per_tensor = PerTensorRNNProp(layers=[4])
    per_tensor.set_weights(batched.get_weights())
    assert batched.coordinatewise and not per_tensor.coordinatewise
    adam, momentum = {"learning_rate": 0.1, "epsilon": 1e-10}, {"learning_rate": 0.05}
    settings = dict(parameter_scale_spread=1.0, **kwargs)
    return (_trainer(batched, teachers=[build_policy("AdamOptimizer", adam),
                                        build_policy("MomentumOptimizer", momentum)], **settings),
            _trainer(per_tensor, teachers=[PerTensorAdam(**adam), PerTensorMomentum(**momentum)],
                     **settings))


def _run(trainer, problem, warmup_steps=0):
    """Meta-gradient and outputs of one unroll (after an SGD warmup), eagerly."""
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(1))
    x, y = (tf.constant(a) for a in problem.sample(6, np.random.default_rng(2)))
    if warmup_steps:
        theta, ls, ts = trainer.unroller.warmup(problem, x[:warmup_steps], y[:warmup_steps],
                                                scale, learner[0], learner[1],
                                                tuple(t[1] for t in teachers),
                                                tf.constant(0.05), KEY)
        learner, teachers = (theta, ls), tuple((theta, s) for s in ts)
    with tf.GradientTape() as tape:
        meta, imit, learner, teachers, *_ = trainer.unroller.unroll(problem, x, y, scale, learner,
                                                            teachers, True)
        loss = meta + 0.5 * imit
    grads = tape.gradient(loss, trainer.weights)
    return ([float(meta), float(imit)], [p.numpy() for p in learner[0]],
            [p.numpy() for t in teachers for p in t[0]], [g.numpy() for g in grads], learner[1])


@pytest.mark.parametrize("warmup_steps", [0, 2])
def test_coordinatewise_policies_step_all_tensors_at_once_exactly(warmup_steps):
    """Stepping the concatenated coordinates once equals stepping tensor by tensor: losses,
    both trajectories (the teacher's under oracle scaling) and the meta-gradient."""
    problem = FourTensorProblem()
    batched, per_tensor = (_run(t, problem, warmup_steps) for t in _batched_and_per_tensor())
    for got, expected in zip(batched[:4], per_tensor[:4]):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-7)
    start = FourTensorProblem().init_params(None)  # every tensor moved
    assert all(not np.allclose(p, s) for p, s in zip(batched[1], start))


def test_coordinatewise_guard_keeps_only_the_nonfinite_tensor():
    """A non-finite delta in one tensor leaves that tensor and its coordinates' state as they
    were; the other tensors step exactly as they do tensor by tensor."""
    problem = FourTensorProblem()
    trainers = _batched_and_per_tensor()
    problem.poison.assign(True)
    batched, per_tensor = ((out[1], out[4]) for out in (_run(t, problem) for t in trainers))
    scale, learner, _ = trainers[0]._new_lifetime(problem, np.random.default_rng(1))
    np.testing.assert_array_equal(batched[0][1], learner[0][1].numpy())  # tensor 1 held
    for i in (0, 2, 3):
        assert not np.allclose(batched[0][i], learner[0][i].numpy())
        np.testing.assert_allclose(batched[0][i], per_tensor[0][i], rtol=2e-5, atol=1e-7)
    state = batched[1]  # coordinates 6..8 are tensor 1's
    for leaf in tf.nest.flatten(state):
        assert np.all(leaf.numpy()[..., 6:9] == 0) and np.any(leaf.numpy()[..., :6] != 0)
    # the SGD warmup's guard looks at the new state, per tensor too
    x, y = (tf.constant(a) for a in problem.sample(2, np.random.default_rng(2)))
    _, state, _ = trainers[0].unroller.warmup(problem, x, y, scale, learner[0], learner[1], (),
                                           tf.constant(0.05), KEY)
    for leaf in tf.nest.flatten(state):
        assert np.all(leaf.numpy()[..., 6:9] == 0) and np.any(leaf.numpy()[..., :6] != 0)


DRAWING = {  # policies that draw random numbers while training, one of each kind of draw
    "input_noise": ("RNNPropOptimizer", {"layers": [4], "input_noise": 0.5}),
    "gaussian": ("RNNPropOptimizer", {"layers": [4], "perturbation": {
        "class_name": "RandomPerturbation", "config": {"noise_stddev": 0.5}}}),
    "persistent": ("RNNPropOptimizer", {"layers": [4], "perturbation": {
        "class_name": "PersistentRandomPerturbation", "config": {"noise_stddev": 0.5}}}),
    "gumbel": ("AbstractChoiceOptimizer", {"layers": [4], "hardness": 10.0}),
}


@pytest.mark.parametrize("kind", sorted(DRAWING))
def test_a_training_step_draws_by_its_key_whatever_the_graph(kind):
    """A traced step keeps no noise stream of its own: its draws are a function of the key
    passed in (another period, another key: other noise), the same in the compiled and the
    eager step, and TensorFlow's own random state does not touch them."""
    trainer = _trainer(build_policy(*DRAWING[kind]))
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x, y = (tf.constant(a) for a in problem.sample(3, np.random.default_rng(1)))
    compiled = trainer._compiled_fn("train", problem)

    def step(key, fn=compiled):
        out = fn(x, y, scale, learner, teachers, tf.constant(1.0), tf.constant(0.5),
                 tf.constant(key, tf.int64))
        return [float(out["meta_loss"])] + [g.numpy() for g in out["grads"]]

    first = step([3, 1])
    tf.random.normal([3])  # moves TensorFlow's global random state: irrelevant here
    assert all(np.array_equal(a, b) for a, b in zip(step([3, 1]), first))
    other = step([3, 2])
    assert not all(np.array_equal(a, b) for a, b in zip(other, first))
    eager = step([3, 1], functools.partial(trainer._train_step, problem))
    for a, b in zip(eager, first):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


class StillProblem(TinyProblem):
    """TinyProblem with the same minibatches whatever the seed: only the noise can differ."""

    def sample(self, unroll_len, rng):
        return np.zeros((unroll_len, 1), np.float32), np.zeros((unroll_len, 1), np.int32)


def test_seeded_calls_of_a_noisy_learner_repeat_and_other_seeds_draw_other_noise():
    """A period's seed reaches the draws: the same seed twice gives the same figure, another
    seed (another period of the run) other noise, on the same minibatches."""
    noisy = _trainer(build_policy(*DRAWING["input_noise"]), validation_noise=True)

    def score(seed):
        return noisy.train([StillProblem()], 3, 0.0, epochs=1, depth=2, validation=True,
                           seed=seed, progress=False)["mean"]["meta_loss"]

    first = score(5)
    tf.random.normal([3])  # advance TensorFlow's random state between the two calls
    score(6)
    assert score(5) == first
    assert score(6) != first  # the noise really depends on the seed


def test_validation_without_teacher_scores_gives_the_same_learner_figure():
    trainer = _trainer(teachers=[adam_teacher(), adam_teacher(0.01)])

    def validate(score):
        return trainer.train([TinyProblem()], 3, 0.0, epochs=1, depth=2, validation=True,
                             seed=5, progress=False, score_teachers=score)["mean"]

    scored, alone = validate(True), validate(False)
    assert set(scored["teacher_meta_loss"]) == {"adam", "adam_2"}
    assert "teacher_meta_loss" not in alone
    assert alone["meta_loss"] == scored["meta_loss"]


def _record_kinds(trainer, kinds):
    """Append to ``kinds`` the kind of every compiled step ``trainer`` runs."""
    compiled = trainer._compiled_fn
    trainer._compiled_fn = lambda kind, problem: kinds.append(kind) or compiled(kind, problem)


@pytest.mark.parametrize("input_noise", [0.0, 0.5])
def test_seeded_validation_scores_the_teachers_once_per_setting(input_noise):
    """Teachers are not meta-trained and a seeded validation draws the same unrolls, so their
    scores are computed once per setting; the learner's figure still follows its weights."""
    policy = build_policy("RNNPropOptimizer", {"layers": [4], "input_noise": input_noise})
    trainer = _trainer(policy, teachers=[adam_teacher(), adam_teacher(0.01)])
    problem = TinyProblem()
    kinds = []
    _record_kinds(trainer, kinds)

    def validate(depth, score=True):
        kinds.clear()
        return trainer.train([problem], 3, 0.0, epochs=1, depth=depth, validation=True,
                             seed=5, progress=False, score_teachers=score)["mean"]

    first = validate(2)
    trainer.train([problem], 3, 0.0, epochs=1, depth=1, progress=False)  # new weights
    again = validate(2)
    assert kinds == ["validation_learner"] * 2  # the learner alone
    assert again["teacher_meta_loss"] == first["teacher_meta_loss"]
    assert again["meta_loss"] != first["meta_loss"]
    assert validate(2, score=False)["meta_loss"] == again["meta_loss"]
    fresh = MetaTrainer(trainer.policy, teachers=trainer.teachers, parameter_scale_spread=0.0)
    scored = fresh.train([problem], 3, 0.0, epochs=1, depth=2, validation=True, seed=5,
                         progress=False)["mean"]
    assert scored["teacher_meta_loss"] == first["teacher_meta_loss"]
    deeper = validate(3)  # another setting: scored again
    assert "validation" in kinds
    assert deeper["teacher_meta_loss"] != first["teacher_meta_loss"]
    # the learner's figure, its draws included, is the same with or without the teachers
    assert scored["meta_loss"] == again["meta_loss"]


def test_seeded_validation_replays_its_warmup_exactly():
    """A seeded validation's SGD warmup follows the same parameters every call: later calls
    replay the recorded gradients to advance the policies, with the same figures."""
    trainer = _trainer()
    problem = TinyProblem()
    kinds = []
    _record_kinds(trainer, kinds)

    def validate(trainer, depth):
        kinds.clear()
        mean = trainer.train([problem], 3, 0.0, epochs=2, depth=depth, validation=True,
                             seed=5, warmup=2, warmup_rate=0.1, progress=False)["mean"]
        return mean["meta_loss"], mean["teacher_meta_loss"]

    for depth in (1, 2):  # each depth records its own warmups: the draws interleave
        validate(trainer, depth)
        assert kinds.count("warmup_record") == 4
    # only the latest setting's store is kept (a curriculum stage's): depth 1's is released
    assert list(trainer.validation_cache.warmups) == [
        ValidationCache.setting(problem, 3, 2, 2, 2, 0.1, 5)]
    trainer.train([problem], 3, 0.0, epochs=1, depth=1, warmup=1, progress=False)
    assert "warmup_replay" not in kinds  # training never replays
    replayed = validate(trainer, 2)
    assert kinds.count("warmup_replay") == 4 and "warmup" not in kinds
    fresh = MetaTrainer(trainer.policy, teachers=trainer.teachers, parameter_scale_spread=0.0)
    assert validate(fresh, 2) == replayed
    # a learner that draws replays too: its draws are keyed by the seed, not by the graph
    noisy = _trainer(build_policy(*DRAWING["input_noise"]), validation_noise=True)
    _record_kinds(noisy, kinds)
    first = validate(noisy, 1)
    assert validate(noisy, 1) == first and kinds.count("warmup_replay") == 4
    fresh = MetaTrainer(noisy.policy, teachers=noisy.teachers, parameter_scale_spread=0.0,
                        validation_noise=True)
    assert validate(fresh, 1) == first


SETTING = {"unroll_len": 3, "epochs": 2, "depth": 1, "warmup": 1, "warmup_rate": 0.1, "seed": 5}


@pytest.mark.parametrize("field, value", [("unroll_len", 2), ("epochs", 1), ("depth", 2),
                                          ("warmup", 2), ("warmup_rate", 0.3), ("seed", 6)])
def test_validation_caches_are_keyed_by_everything_the_draws_depend_on(field, value):
    """Changing any one setting of a seeded validation scores the teachers and records the
    warmup anew: a key without that field would reuse the other setting's figures."""
    trainer = _trainer()
    problem = TinyProblem()
    kinds = []
    _record_kinds(trainer, kinds)

    def validate(setting):
        kinds.clear()
        return trainer.train([problem], p_teacher=0.0, validation=True, progress=False,
                             **setting)["mean"]

    validate(SETTING)
    assert "validation" in kinds and "warmup_record" in kinds
    validate(SETTING)
    assert "validation" not in kinds and "warmup_record" not in kinds  # cached
    validate(dict(SETTING, **{field: value}))
    assert "validation" in kinds and "warmup_record" in kinds


PERTURBATIONS = {  # the stability-aware presets' perturbations, larger so one step shows them
    "fgsm": ("FGSMPerturbation", "step_size", {"step_size": 0.05}),
    "pgd": ("PGDPerturbation", "magnitude", dict(PGD["config"])),
    "cgd": ("CGDPerturbation", "magnitude", {"steps": 1, "magnitude": 0.05}),
    "gaussian": ("RandomPerturbation", "noise_stddev", {"noise_stddev": 0.05}),
    "gaussian_rel": ("RandomPerturbation", "noise_stddev",
                     {"noise_stddev": 0.05, "relative": True}),
}


@pytest.fixture(scope="module")
def unperturbed_step():
    """One meta-step of a plain RNNProp on TinyProblem: its meta-gradient and new weights."""
    tf.keras.utils.set_random_seed(11)
    policy = build_policy("RNNPropOptimizer", {"layers": [4]})
    initial = policy.get_weights()
    return initial, _meta_step(policy)


def _meta_step(policy):
    """The compiled training step's meta-gradient, then the weights after applying it (SGD)."""
    trainer = _trainer(policy, optimizer={"class_name": "SGD", "config": {"learning_rate": 1.0}})
    problem = TinyProblem()
    scale, learner, teachers = trainer._new_lifetime(problem, np.random.default_rng(0))
    x, y = (tf.constant(a) for a in problem.sample(4, np.random.default_rng(1)))
    out = trainer._compiled_fn("train", problem)(x, y, scale, learner, teachers,
                                                  tf.constant(1.0), tf.constant(0.5), KEY)
    grads = [g.numpy() for g in out["grads"]]
    trainer._apply_fn(out["grads"])
    return grads, policy.get_weights(), int(out["attack_steps"])


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_training_under_a_perturbation_changes_the_meta_step_and_size_zero_does_not(
        name, unperturbed_step):
    initial, (plain_grads, plain_weights, _) = unperturbed_step
    cls, size, config = PERTURBATIONS[name]
    for value, moved in ((config[size], True), (0.0, False)):
        policy = build_policy("RNNPropOptimizer", {"layers": [4], "perturbation": {
            "class_name": cls, "config": dict(config, **{size: value})}})
        policy.set_weights(initial)
        grads, weights, attacks = _meta_step(policy)
        differs = [not np.allclose(g, p, rtol=1e-5, atol=1e-8)
                   for g, p in zip(grads, plain_grads)]
        assert any(differs) == moved, (value, differs)
        assert any(not np.allclose(weights[k], plain_weights[k], rtol=1e-5, atol=1e-8)
                   for k in weights) == moved
        assert attacks == policy.perturbation.adversarial_attack_steps


# ---------------------------------------------------------------------- __load__ teachers


def _teacher_folder(folder, attempts, max_repeat=1):
    """A curriculum folder whose checkpoints are Adam rules, each with its own learning rate.

    ``attempts``: ``(stage, period, repeat, validation, training meta_loss, learning rate)``.
    """
    from l2o.results import Experiment

    experiment = Experiment(folder, ["stage", "period", "repeat"], ["meta_loss"])
    experiment.write_or_check_config({
        "strategy_constructor": "CurriculumLearningStrategy",
        "strategy": {"max_repeat": max_repeat, "repeat_threshold": 0.5},
        "policy_constructor": "AdamOptimizer",
        "policy": {"learning_rate": 0.5, "trainable": True}})
    hyper = {"warmup": 0, "warmup_rate": 0.0, "p_teacher": 0.0, "depth": 1, "unroll_len": 1,
             "epochs": 1}
    for stage, period, repeat, validation, meta_loss, lr in attempts:
        metadata = {"stage": stage, "period": period, "repeat": repeat}
        policy = build_policy("AdamOptimizer", {"learning_rate": lr, "trainable": True})
        tf.train.Checkpoint(network=policy).write(experiment.checkpoint_prefix(metadata))
        experiment.append_summary(dict(metadata, validation=validation, meta_loss=meta_loss,
                                       time=0.0, duration=0.0, **hyper))
    return experiment


def test_load_teacher_best_is_the_best_accepted_checkpoint(tmp_path):
    from l2o.results import default_checkpoint
    from l2o.strategy import CurriculumLearningStrategy
    from l2o.train import build_teacher

    folder = tmp_path / "teacher"
    _teacher_folder(folder, [(0, 0, 0, -1.0, -1.0, 0.01),
                             (1, 0, 0, -5.0, 0.0, 0.02),     # rejected: training loss 0 > -0.5
                             (1, 0, 1, -0.8, -1.0, 0.03)])   # accepted, though it validates worse
    spec = {"class_name": "__load__", "directory": str(folder), "checkpoint": "best"}
    assert float(build_teacher(spec).get_weights()["learning_rate"]) == pytest.approx(0.03)
    spec["checkpoint"] = "stage_1.0.0"  # a named checkpoint is taken as named
    assert float(build_teacher(spec).get_weights()["learning_rate"]) == pytest.approx(0.02)
    # one rule: the strategy packages the checkpoint the teacher reads as "best"
    strategy = CurriculumLearningStrategy(None, ["unused"], directory=folder, policy=object(),
                                          lazy_problems=True, max_repeat=1,
                                          repeat_threshold=0.5)
    assert default_checkpoint(folder) == strategy.default_metadata() == {
        "stage": 1, "period": 0, "repeat": 1}
    with pytest.raises(l2o.L2OError, match="does not exist"):
        build_teacher(dict(spec, directory=str(tmp_path / "missing")))


def test_load_teacher_reads_a_packaged_optimizer_folder(tmp_path):
    from l2o.saving import export
    from l2o.train import build_teacher

    folder = tmp_path / "teachers" / "adam" / "1"
    export(build_policy("AdamOptimizer", {"learning_rate": 0.04, "trainable": True}),
           str(folder))
    for spec in ({"class_name": "__load__", "directory": str(folder)},
                 {"class_name": "__load__", "directory": str(folder), "checkpoint": "best"}):
        teacher = build_teacher(spec)
        assert type(teacher).__name__ == "AdamOptimizer"
        assert float(teacher.get_weights()["learning_rate"]) == pytest.approx(0.04)
    with pytest.raises(l2o.L2OError, match="packaged optimizer.*not 'period_4.0'"):
        build_teacher({"class_name": "__load__", "directory": str(folder),
                       "checkpoint": "period_4.0"})


def test_training_code_does_not_import_the_strategies():
    """l2o.train reads saved policies through l2o.saving and l2o.results: the strategies,
    which build the trainer, are never imported by it, even inside a function."""
    import ast
    from pathlib import Path

    root = Path(l2o.__file__).parent

    def source(module):
        path = root.joinpath(*module.split(".")[1:])
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate.read_text()
        return None  # a name imported from a module, not a module

    pending = [f"l2o.train.{p.stem}" for p in (root / "train").glob("*.py")]
    reached = set()
    while pending:
        module = pending.pop()
        text = module not in reached and source(module)
        reached.add(module)
        for node in ast.walk(ast.parse(text)) if text else ():
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                parts = name.split(".")
                pending += [".".join(parts[:i]) for i in range(2, len(parts) + 1)
                            if parts[0] == "l2o"]
    assert "l2o.saving" in reached and "l2o.results" in reached
    assert sorted(m for m in reached if m.startswith("l2o.strategy")) == []
