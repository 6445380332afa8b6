"""Perturbations of the optimizer's own weights: the attack maths, the noise levels, errors."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from l2o.errors import L2OError
from l2o.perturbations import (
    CGDPerturbation, FGSMPerturbation, PGDPerturbation, Perturbation,
    PersistentRandomPerturbation, RandomPerturbation, get_perturbation)


def make_weights():
    """Two stand-in policy weights: a kernel and a bias."""
    rng = np.random.default_rng(0)
    kernel = tf.Variable(rng.normal(size=(3, 4)).astype("float32"), name="kernel")
    bias = tf.Variable(rng.normal(size=(4,)).astype("float32"), name="bias")
    return [kernel, bias]


X = tf.constant([[0.5, -1.0, 2.0, 0.3], [1.5, 0.2, -0.7, 1.1], [-0.4, 0.9, 0.6, -1.3]])


def loss_of(read, weights):
    """A smooth, non-convex loss of the weights as the policy would read them."""
    kernel, bias = (read(w) for w in weights)
    return tf.reduce_sum(tf.sin(kernel * X)) + tf.reduce_sum(tf.sin(3.0 * bias))


def clean_loss(weights):
    return loss_of(tf.convert_to_tensor, weights)


def attack_step(pert, weights):
    """One ascent step as meta-training runs it; returns the gradients used."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pert.attack_variables)
        loss = loss_of(pert.add, weights)
    grads = tape.gradient(loss, pert.attack_variables)
    pert.apply_gradients(grads)
    return grads


def built(pert):
    weights = make_weights()
    pert.build(weights)
    pert.reset(train=True)
    return pert, weights


def test_fgsm_moves_delta_by_signed_step_and_raises_the_loss():
    pert, weights = built(FGSMPerturbation(step_size=1e-3))
    assert pert.adversarial_attack_steps == 1
    grads = attack_step(pert, weights)
    for delta, grad in zip(pert.attack_variables, grads):
        np.testing.assert_allclose(delta.numpy(), 1e-3 * np.sign(grad.numpy()), rtol=0, atol=1e-9)
    assert loss_of(pert.add, weights) > clean_loss(weights)

    # The meta-gradient reaches the clean weights and equals grad L at W + delta.
    with tf.GradientTape() as tape:
        loss = loss_of(pert.add, weights)
    meta_grads = tape.gradient(loss, weights)
    moved = [tf.Variable(w + d) for w, d in zip(weights, pert.attack_variables)]
    with tf.GradientTape() as tape:
        loss = clean_loss(moved)
    for got, want in zip(meta_grads, tape.gradient(loss, moved)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls, config", [
    (FGSMPerturbation, {"step_size": 0.01}),
    (PGDPerturbation, {"magnitude": 0.01, "learning_rate": 1e-3}),
    (CGDPerturbation, {"magnitude": 0.001}),
])
def test_attacks_raise_the_loss_then_reset_to_identity(cls, config):
    pert, weights = built(cls(**config))
    attack_step(pert, weights)
    assert any(np.any(d.numpy() != 0) for d in pert.attack_variables)
    assert loss_of(pert.add, weights) > clean_loss(weights)
    pert.reset(train=False)
    for w in weights:
        np.testing.assert_array_equal(pert.add(w).numpy(), w.numpy())


@pytest.mark.parametrize("norm", ["inf", "l2", "scale"])
def test_pgd_stays_in_its_ball(norm):
    magnitude = 0.01
    pert, weights = built(PGDPerturbation(steps=4, magnitude=magnitude, norm=norm, learning_rate=10.0))
    for _ in range(pert.adversarial_attack_steps):
        attack_step(pert, weights)
    for w, delta in zip(weights, pert.attack_variables):
        d = delta.numpy()
        if norm == "inf":
            assert np.abs(d).max() <= magnitude * (1 + 1e-6)
            np.testing.assert_allclose(np.abs(d).max(), magnitude, rtol=1e-6)  # projection active
        else:
            radius = magnitude * (w.shape.num_elements() if norm == "scale" else 1)
            assert np.linalg.norm(d) <= radius * (1 + 1e-5)
            np.testing.assert_allclose(np.linalg.norm(d), radius, rtol=1e-5)


def test_cgd_step_is_bounded_by_weight_norm_and_accumulates():
    magnitude = 0.01
    pert, weights = built(CGDPerturbation(steps=5, magnitude=magnitude))
    before = [d.numpy().copy() for d in pert.attack_variables]
    for _ in range(pert.adversarial_attack_steps):
        attack_step(pert, weights)
        after = [d.numpy().copy() for d in pert.attack_variables]
        for w, b, a in zip(weights, before, after):
            bound = magnitude * np.linalg.norm(w.numpy())
            assert 0 < np.linalg.norm(a - b) <= bound * (1 + 1e-5)
        before = after
    # No projection: after 5 steps the delta exceeds a single step's bound.
    kernel = weights[0].numpy()
    assert np.linalg.norm(before[0]) > 1.5 * magnitude * np.linalg.norm(kernel)


def test_cgd_on_an_all_zero_weight_stays_zero_not_nan():
    zero_bias = tf.Variable(tf.zeros([4]))
    pert = CGDPerturbation()
    pert.build([zero_bias])
    pert.reset(train=True)
    pert.apply_gradients([tf.zeros([4])])
    pert.apply_gradients([tf.ones([4])])
    np.testing.assert_array_equal(pert.attack_variables[0].numpy(), np.zeros(4))


@pytest.mark.parametrize("relative", [False, True])
def test_gaussian_noise_level(relative):
    sigma = 0.05
    weight = tf.Variable(3.0 * tf.random.stateless_normal([100, 100], seed=[1, 2]))
    pert = RandomPerturbation(noise_stddev=sigma, relative=relative)
    pert.build([weight])
    noise = np.stack([(pert.add(weight) - weight).numpy() for _ in range(5)])
    rms = np.sqrt(np.mean(weight.numpy() ** 2))
    expected = sigma * rms if relative else sigma
    assert abs(noise.std() / expected - 1) < 0.05
    assert not np.allclose(noise[0], noise[1])  # fresh every call


def test_persistent_delta_is_held_between_resets():
    pert, weights = built(PersistentRandomPerturbation(noise_stddev=0.01))
    kernel = weights[0]
    first, second = pert.add(kernel).numpy(), pert.add(kernel).numpy()
    np.testing.assert_array_equal(first, second)
    assert np.any(first != kernel.numpy())
    pert.reset(train=False)
    for w in weights:
        np.testing.assert_array_equal(pert.add(w).numpy(), w.numpy())
    pert.reset(train=True)
    assert np.any(pert.add(kernel).numpy() != first)  # redrawn
    assert pert.adversarial_attack_steps == 0 and pert.attack_variables == []


def test_base_is_identity():
    pert = get_perturbation(None)
    assert type(pert) is Perturbation
    weights = make_weights()
    pert.build(weights)
    pert.reset(train=True)
    assert pert.adversarial_attack_steps == 0 and pert.attack_variables == []
    np.testing.assert_array_equal(pert.add(weights[0]).numpy(), weights[0].numpy())


@pytest.mark.parametrize("spec", [
    {"class_name": "FGSMPerturbation", "config": {"step_size": 0.01}},
    {"class_name": "PGDPerturbation", "config": {"steps": 2, "magnitude": 1e-3, "norm": "scale",
                                                 "learning_rate": 0.1}},
    {"class_name": "CGDPerturbation", "config": {"steps": 2, "magnitude": 1e-3}},
])
def test_meta_step_compiles_in_tf_function(spec):
    """reset, K ascent steps, meta-gradient and reset, all inside one tf.function."""
    pert, weights = get_perturbation(spec), make_weights()
    pert.build(weights)

    @tf.function
    def meta_step():
        pert.reset(train=True)
        for _ in range(pert.adversarial_attack_steps):
            attack_step(pert, weights)
        moved_loss = loss_of(pert.add, weights)
        with tf.GradientTape() as tape:
            loss = loss_of(pert.add, weights)
        grads = tape.gradient(loss, weights)
        pert.reset(train=False)
        return moved_loss, grads

    moved_loss, grads = meta_step()
    assert moved_loss > clean_loss(weights)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    assert all(np.all(d.numpy() == 0) for d in pert.attack_variables)
    meta_step()  # re-runs without retracing errors


def test_gaussian_noise_is_fresh_inside_a_compiled_loop():
    pert, weights = RandomPerturbation(noise_stddev=0.1), make_weights()
    pert.build(weights)

    @tf.function
    def unroll():
        reads = tf.TensorArray(tf.float32, size=3)
        for i in tf.range(3):
            reads = reads.write(i, pert.add(weights[1]))
        return reads.stack()

    reads = unroll().numpy()
    assert not np.allclose(reads[0], reads[1]) and not np.allclose(reads[1], reads[2])


def test_config_round_trip():
    for pert in [RandomPerturbation(noise_stddev=5e-4, relative=True), PersistentRandomPerturbation(),
                 FGSMPerturbation(), PGDPerturbation(norm="inf"), CGDPerturbation(steps=3)]:
        spec = {"class_name": type(pert).__name__, "config": pert.get_config()}
        assert get_perturbation(spec).get_config() == pert.get_config()
    assert PGDPerturbation().get_config() == {
        "steps": 1, "magnitude": 0.01, "norm": "l2", "learning_rate": 0.005}


def spec(name, **config):
    return {"class_name": name, "config": config}


@pytest.mark.parametrize("bad, words", [
    (spec("FGSMPerturbation", step_size=-1e-3), ["step_size", ">= 0"]),
    (spec("PGDPerturbation", magnitude=-1.0), ["magnitude"]),
    (spec("PGDPerturbation", learning_rate=-1), ["learning_rate"]),
    (spec("PGDPerturbation", steps=0), ["steps", "integer"]),
    (spec("PGDPerturbation", steps=1.5), ["steps"]),
    (spec("CGDPerturbation", steps=True), ["steps"]),
    (spec("CGDPerturbation", magnitude=-0.1), ["magnitude"]),
    (spec("RandomPerturbation", noise_stddev=-0.1), ["noise_stddev"]),
    (spec("PGDPerturbation", learning_rate=0), ["learning_rate", "> 0"]),
    (spec("RandomPerturbation", noise_stddev="big"), ["noise_stddev", "number"]),
    (spec("PersistentRandomPerturbation", noise_stddev=-1), ["noise_stddev"]),
    (spec("PGDPerturbation", norm="l1"), ["l1", "inf", "l2", "scale"]),
    (spec("FGSMPerturbation", stepsize=0.1), ["stepsize", "step_size"]),
    (spec("CGDPerturbation", norm="l2"), ["norm", "steps", "magnitude"]),
    (spec("FGSM"), ["FGSM", "FGSMPerturbation", "PGDPerturbation", "CGDPerturbation"]),
    ({"class_name": "FGSMPerturbation", "cfg": {}}, ["cfg", "class_name", "config"]),
    ("fgsm", ["perturbation"]),
])
def test_bad_config_gives_one_line_error(bad, words):
    with pytest.raises(L2OError) as info:
        get_perturbation(bad)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unregistered_weight_is_a_clear_error():
    pert = FGSMPerturbation()
    pert.build(make_weights()[:1])
    with pytest.raises(L2OError, match="build"):
        pert.add(tf.Variable([1.0]))


DISTRIBUTED = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    from l2o.perturbations import FGSMPerturbation
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        weight = tf.Variable([1.0, 2.0])
        pert = FGSMPerturbation(step_size=0.1)
        pert.build([weight])

    @tf.function
    def step():
        def replica():
            pert.reset(train=True)
            rid = tf.distribute.get_replica_context().replica_id_in_sync_group
            sign = 1.0 - 2.0 * tf.cast(rid, tf.float32)  # the replicas see opposite losses
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(pert.attack_variables)
                loss = sign * tf.reduce_sum(pert.add(weight))
            pert.apply_gradients(tape.gradient(loss, pert.attack_variables))
            return tf.convert_to_tensor(pert.add(weight))
        return strategy.run(replica)

    moved = strategy.experimental_local_results(step())
    assert np.allclose(np.stack(moved), [[1.1, 2.1], [0.9, 1.9]]), moved
    print("OK")
""")


def test_each_replica_attacks_its_own_copy():
    """Under MirroredStrategy every replica keeps its own delta (two virtual CPUs)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def test_a_nonfinite_attack_gradient_moves_no_delta_and_is_not_counted():
    pert = PGDPerturbation(steps=1, magnitude=0.1, learning_rate=1.0)
    weights = make_weights()
    pert.build(weights)
    grads = [tf.ones_like(w) for w in weights]
    assert bool(pert.apply_gradients(grads))
    moved = [d.numpy() for d in pert.attack_variables]
    grads[0] = tf.fill(tf.shape(grads[0]), np.nan)
    assert not bool(pert.apply_gradients(grads))
    for before, delta in zip(moved, pert.attack_variables):
        np.testing.assert_array_equal(delta.numpy(), before)
    assert not bool(pert.apply_gradients([None] * len(weights)))  # nothing to ascend on
