"""Datasets, model builders and the meta-training optimizee, on the offline mnist_5k digits."""

import os
import socket
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from l2o.errors import L2OError
from l2o.problems import (DatasetUnavailable, Problem, build_model, build_problem,
                          conv_classifier, load_dataset, mlp_classifier)
from l2o.problems import datasets as datasets_module

CONV_TRAIN = [[16, 3, 1], 2, [32, 5, 1], 2]


@pytest.fixture(scope="module")
def conv_problem():
    return conv_classifier(dataset="mnist_5k", layers=CONV_TRAIN, batch_size=16)


@pytest.fixture(scope="module")
def mlp_problem():
    return mlp_classifier(dataset="mnist_5k", layers=[20], activation="sigmoid", batch_size=16)


# ---------------------------------------------------------------------------- datasets


def test_mnist_5k_splits_are_real_balanced_digits_in_unit_range():
    train, test = load_dataset("mnist_5k", "train"), load_dataset("mnist_5k", "test")
    assert train.x.shape == (4000, 28, 28, 1) and test.x.shape == (1000, 28, 28, 1)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32
    assert train.num_classes == test.num_classes == 10
    assert 0.0 <= train.x.min() and train.x.max() == 1.0
    # Every class is present in both splits (the source file is sorted by label).
    assert np.bincount(train.y).tolist() == [400] * 10
    assert np.bincount(test.y).tolist() == [100] * 10
    # A digit covers a minority of the pixels; the border is blank.
    assert 0.05 < (train.x > 0.5).mean() < 0.3
    assert train.x[:, 0, :, :].max() == 0.0
    assert load_dataset("mnist_5k", "train") is train  # cached


def test_unknown_dataset_and_split_are_one_line_errors():
    with pytest.raises(L2OError, match="unknown dataset 'mnistt'.*mnist_5k"):
        load_dataset("mnistt", "train")
    with pytest.raises(L2OError, match="unknown split 'validation'.*test, train"):
        load_dataset("mnist_5k", "validation")


def _online():
    try:
        with socket.create_connection(datasets_module.DOWNLOAD_HOST, timeout=3):
            return True
    except OSError:
        return False


def test_missing_tfds_dataset_without_network_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets_module.ASSUME_ONLINE_ENV, raising=False)
    if _online():
        pytest.skip("the download host is reachable; the offline path cannot be exercised")
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message and "mnist_5k" in message


# ---------------------------------------------------------------------------- models


def test_parameter_counts_match_the_paper_problems(conv_problem, mlp_problem):
    assert conv_problem.num_params == 18122
    assert mlp_problem.num_params == 15910
    assert conv_problem.shapes[0] == (3, 3, 1, 16)
    assert conv_problem.size == 4000


def test_average_head_outputs_probabilities():
    model = build_model("conv_classifier", (28, 28, 1), 10, layers=[[8, 3, 2], [99, 3, 2]],
                        head_type="average", activation={"class_name": "leaky_relu",
                                                         "config": {"negative_slope": 0.1}})
    probs = model(np.zeros((2, 28, 28, 1), np.float32))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)


def test_other_evaluation_models_build():
    assert build_model("nas_classifier", (8, 8, 3), 10).output_shape == (None, 10)
    assert build_model("resnet", (8, 8, 3), 7, depth=10).output_shape == (None, 7)


def test_bad_model_configs_name_the_problem():
    with pytest.raises(L2OError, match="unknown model 'cnn'.*conv_classifier.*resnet"):
        build_model("cnn", (28, 28, 1), 10)
    with pytest.raises(L2OError, match=r"layer 2 \(conv \[32, 15, 1\]\).*13x13"):
        build_model("conv_classifier", (28, 28, 1), 10, layers=[[16, 3, 1], 2, [32, 15, 1]])
    with pytest.raises(L2OError, match="layer 0: bad spec"):
        build_model("conv_classifier", (28, 28, 1), 10, layers=[[16, 3]])
    with pytest.raises(L2OError, match="unknown argument.*widht"):
        build_model("mlp_classifier", (28, 28, 1), 10, widht=3)
    with pytest.raises(L2OError, match="unknown activation 'rleu'"):
        build_model("mlp_classifier", (28, 28, 1), 10, activation="rleu")
    with pytest.raises(L2OError, match="unknown head_type"):
        build_model("conv_classifier", (28, 28, 1), 10, head_type="avg")


def test_problem_spec_errors_name_valid_targets():
    with pytest.raises(L2OError, match="unknown problem target 'cnn'.*conv_classifier"):
        build_problem({"target": "cnn", "args": [], "kwargs": {}})
    with pytest.raises(L2OError, match="unknown key"):
        build_problem({"target": "mlp_classifier", "kwarg": {}})


def test_build_problem_from_spec_keeps_the_spec(mlp_problem):
    spec = {"target": "mlp_classifier", "args": [],
            "kwargs": {"dataset": "mnist_5k", "layers": [20], "activation": "sigmoid",
                       "batch_size": 8, "shuffle_buffer": 16384}}
    problem = build_problem(spec)
    assert problem.num_params == 15910 and problem.batch_size == 8 and problem.spec == spec
    assert build_problem(mlp_problem) is mlp_problem


# ---------------------------------------------------------------------------- problem


def test_init_params_seeded_is_repeatable_and_unseeded_is_fresh(conv_problem):
    a, b = conv_problem.init_params(seed=3), conv_problem.init_params(seed=3)
    c, d = conv_problem.init_params(), conv_problem.init_params()
    assert [tuple(t.shape) for t in a] == conv_problem.shapes
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(c[0], d[0])
    assert not np.array_equal(a[0], conv_problem.init_params(seed=4)[0])
    # Biases start at zero; Glorot-uniform kernels stay inside sqrt(6 / (fan_in + fan_out)).
    assert not np.any(a[1])
    limit = np.sqrt(6.0 / (9 * 1 + 9 * 16))
    assert 0.9 * limit < np.abs(a[0]).max() <= limit


def test_stateless_loss_equals_keras_model_loss(conv_problem):
    params = conv_problem.init_params(seed=0)
    x, y = conv_problem.sample(1, np.random.default_rng(0))
    x, y = x[0], y[0]
    model = conv_problem.model
    for var, value in zip(model.trainable_variables, params):
        var.assign(value)
    expected = np.mean(keras.losses.sparse_categorical_crossentropy(y, model(x)))
    np.testing.assert_allclose(conv_problem.loss(params, x, y), expected, rtol=1e-5)
    assert 1.5 < float(expected) < 3.5  # near log(10) at initialisation


def test_second_order_gradient_in_a_while_loop(conv_problem):
    """Differentiate a 2-step SGD unroll (tf.while_loop) through the gradients it uses."""
    params = conv_problem.init_params(seed=1)
    x, y = map(tf.constant, conv_problem.sample(2, np.random.default_rng(1)))

    @tf.function
    def meta_grad(lr, params):
        with tf.GradientTape() as outer:
            outer.watch(lr)

            def body(i, *p):
                with tf.GradientTape() as inner:
                    inner.watch(p)
                    loss = conv_problem.loss(list(p), x[i], y[i])
                grads = inner.gradient(loss, p)
                return (i + 1,) + tuple(w - lr * g for w, g in zip(p, grads))

            final = tf.while_loop(lambda i, *p: i < 2, body, (tf.constant(0),) + tuple(params))
            meta_loss = conv_problem.loss(list(final[1:]), x[0], y[0])
        return meta_loss, outer.gradient(meta_loss, lr)

    loss, grad = meta_grad(tf.constant(0.1), params)
    assert np.isfinite(loss) and np.isfinite(grad) and grad != 0.0


def test_gradient_of_gradient_norm_is_finite_and_nonzero(mlp_problem):
    params = mlp_problem.init_params(seed=2)
    x, y = mlp_problem.sample(1, np.random.default_rng(2))

    @tf.function
    def hessian_vector(params):
        with tf.GradientTape() as outer:
            outer.watch(params)
            with tf.GradientTape() as inner:
                inner.watch(params)
                loss = mlp_problem.loss(params, x[0], y[0])
            grads = inner.gradient(loss, params)
            norm = tf.add_n([tf.reduce_sum(g * g) for g in grads])
        return outer.gradient(norm, params)

    second = hessian_vector(params)
    assert all(np.all(np.isfinite(g)) for g in second)
    assert any(np.any(g != 0) for g in second)


def test_sample_draws_a_big_batch_without_replacement(mlp_problem):
    x, y = mlp_problem.sample(5, np.random.default_rng(7))
    assert x.shape == (5, 16, 28, 28, 1) and y.shape == (5, 16)
    assert x.dtype == np.float32 and y.dtype == np.int32
    flat = x.reshape(80, -1)
    assert len(np.unique(flat, axis=0)) == 80  # no digit drawn twice
    x2, _ = mlp_problem.sample(5, np.random.default_rng(7))
    np.testing.assert_array_equal(x, x2)


def test_sample_larger_than_the_split_chains_permutations():
    problem = Problem("mlp_classifier", dataset="mnist_5k", batch_size=1000, layers=[4])
    x, y = problem.sample(5, np.random.default_rng(0))
    assert y.shape == (5, 1000)
    assert np.bincount(y[:4].ravel()).tolist() == [400] * 10  # first 4000 = one full pass


def test_prepared_tfds_dataset_loads_in_bulk_without_network(tmp_path):
    """A dataset already in data_dir is read as one batch, scaled to [0, 1]."""
    import tensorflow_datasets as tfds

    class L2oTinyDigits(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(4, 4, 1)),
                "label": tfds.features.ClassLabel(num_classes=3)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "test": self._generate_examples(3)}

        def _generate_examples(self, n):
            for i in range(n):
                yield i, {"image": np.full((4, 4, 1), 51 * (i % 6), np.uint8), "label": i % 3}

    L2oTinyDigits(data_dir=str(tmp_path)).download_and_prepare()
    data = load_dataset("l2o_tiny_digits", "train", data_dir=str(tmp_path))
    assert data.x.shape == (6, 4, 4, 1) and data.x.dtype == np.float32
    assert data.num_classes == 3 and data.y.dtype == np.int32
    assert sorted(np.round(data.x[:, 0, 0, 0] * 5).astype(int).tolist()) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(L2OError, match="unknown split 'valid'.*test, train"):
        load_dataset("l2o_tiny_digits", "valid", data_dir=str(tmp_path))


def test_conv_avg_builds_with_its_ignored_zero_filter_head():
    """conv_avg's last spec [0, 3, 1]: the average head ignores the filter count."""
    from l2o.evaluate import get_eval_problem
    from l2o.problems.models import build_model

    spec = get_eval_problem("conv_avg")
    model = build_model(spec["target"], (28, 28, 1), 10, **spec["config"])
    assert model.output_shape == (None, 10)
    assert model.layers[-2].filters == 10
