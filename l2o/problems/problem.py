"""The optimizee of meta-training: a Keras classifier evaluated as a pure function of its weights.

A :class:`Problem` holds the training split of a dataset in memory and one Keras model. The
model's variables are never assigned during meta-training: parameters travel as a list of
plain tensors and :meth:`Problem.loss` runs the model through ``stateless_call``, so gradients
(and gradients of gradients) reach those tensors.
"""

import inspect

import numpy as np
import tensorflow as tf
import keras

from l2o.errors import L2OError, unknown
from l2o.problems.datasets import load_dataset
from l2o.problems.models import build_model


class Problem:
    """Meta-training optimizee: dataset ``dataset`` (train split) + model ``target``.

    ``builder_kwargs`` go to the model builder (layers, activation, head_type, ...).
    ``shuffle_buffer`` is accepted for config compatibility and unused: the whole split is in
    memory and :meth:`sample` shuffles all of it. ``config`` is the problem spec, kept for
    printing.
    """

    def __init__(self, target, dataset="mnist", batch_size=128, data_dir=None,
                 shuffle_buffer=None, config=None, **builder_kwargs):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise L2OError(f"batch_size must be a positive int, got {batch_size!r}")
        self.target = target
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.dataset = load_dataset(dataset, "train", data_dir=data_dir)
        self.model = build_model(target, self.dataset.input_shape, self.dataset.num_classes,
                                 **builder_kwargs)
        self.spec = dict(config) if config is not None else {
            "target": target, "args": [],
            "kwargs": {"dataset": dataset, "batch_size": batch_size, **builder_kwargs}}
        self.shapes = [tuple(v.shape) for v in self.model.trainable_variables]
        self.num_params = int(sum(np.prod(s, dtype=np.int64) for s in self.shapes))
        self._initializers = self._variable_initializers()
        # Constants: only BatchNorm statistics live here, and training=True never reads them.
        self._non_trainable = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]

    @property
    def size(self):
        """Number of training examples."""
        return self.dataset.size

    @property
    def input_shape(self):
        return self.dataset.input_shape

    @property
    def num_classes(self):
        return self.dataset.num_classes

    def __repr__(self):
        return f"Problem({self.spec})"

    # ------------------------------------------------------------------ parameters

    def _variable_initializers(self):
        """The initializer of every trainable variable, in ``model.trainable_variables`` order.

        Keras layers keep the initializer of variable ``v`` as ``<v.name>_initializer``
        (kernel_initializer, bias_initializer, gamma_initializer, ...).
        """
        owner = {}
        for layer in self.model.layers:
            for v in layer.trainable_variables:
                owner[id(v)] = layer
        result = []
        for v in self.model.trainable_variables:
            init = getattr(owner.get(id(v)), f"{v.name}_initializer", None)
            if init is None:
                raise L2OError(f"model '{self.target}': no initializer found for variable "
                               f"{v.path}")
            result.append(keras.initializers.get(init))
        return result

    def init_params(self, seed=None):
        """Fresh parameters: each variable's own initializer re-run with a seed derived from ``seed``.

        With an int ``seed`` the result is reproducible; every layer gets a distinct seed (the
        reference gave all layers the same one). With ``seed=None`` each call differs.
        Call it eagerly: seeds are drawn in Python.
        """
        seeds = np.random.SeedSequence(seed).generate_state(len(self.shapes), dtype=np.uint32)
        params = []
        for init, shape, v, s in zip(self._initializers, self.shapes,
                                     self.model.trainable_variables, seeds):
            config = init.get_config()
            if "seed" in config:
                init = type(init).from_config({**config, "seed": int(s) % (2 ** 31 - 1)})
            params.append(tf.convert_to_tensor(init(shape, dtype=v.dtype)))
        return params

    # ------------------------------------------------------------------ objective

    def call(self, params, x, training=True):
        """Class probabilities of the model with weights ``params`` on images ``x``."""
        outputs, _ = self.model.stateless_call(list(params), self._non_trainable, x,
                                               training=training)
        return outputs

    def loss(self, params, x, y):
        """Mean sparse categorical cross-entropy of the model's softmax output, as Keras computes it."""
        probs = self.call(params, x, training=True)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))

    # ------------------------------------------------------------------ data

    def sample(self, unroll_len, rng):
        """One big batch split into ``unroll_len`` minibatches: x [U, B, H, W, C], y [U, B].

        The ``B * U`` examples are drawn without replacement from a shuffle of the whole split.
        When ``B * U`` exceeds the split size, successive independent permutations are chained,
        so an example repeats only after every example has been drawn once.
        """
        if not isinstance(unroll_len, (int, np.integer)) or unroll_len < 1:
            raise L2OError(f"unroll_len must be a positive int, got {unroll_len!r}")
        count = self.batch_size * int(unroll_len)
        rounds = -(-count // self.size)
        index = np.concatenate([rng.permutation(self.size) for _ in range(rounds)])[:count]
        x = self.dataset.x[index].reshape((unroll_len, self.batch_size) + self.input_shape)
        y = self.dataset.y[index].reshape((unroll_len, self.batch_size))
        return x, y


def mlp_classifier(dataset="mnist", layers=(128,), activation="relu", **kwargs):
    """Problem: MLP classifier on ``dataset``; other kwargs go to :class:`Problem`."""
    return Problem("mlp_classifier", dataset=dataset, layers=layers, activation=activation,
                   **kwargs)


def conv_classifier(dataset="mnist", layers=((5, 32, 2),), head_type="dense",
                    activation="relu", **kwargs):
    """Problem: conv classifier on ``dataset``; other kwargs go to :class:`Problem`.

    The default ``layers`` mirror the reference and need images of at least 32x32; the
    ``conv_train`` preset passes ``[[16,3,1],2,[32,5,1],2]``.
    """
    return Problem("conv_classifier", dataset=dataset, layers=layers, head_type=head_type,
                   activation=activation, **kwargs)


PROBLEMS = {"mlp_classifier": mlp_classifier, "conv_classifier": conv_classifier}

_PROBLEM_ARGS = ("batch_size", "data_dir", "shuffle_buffer", "config")


def build_problem(spec):
    """A Problem from ``{"target": name, "args": [...], "kwargs": {...}}`` (a Problem passes through)."""
    if isinstance(spec, Problem):
        return spec
    if not isinstance(spec, dict) or "target" not in spec:
        raise L2OError(f"a problem spec is a dict with keys target, args, kwargs; got {spec!r}")
    extra = sorted(set(spec) - {"target", "args", "kwargs"})
    if extra:
        raise L2OError(f"unknown key(s) {', '.join(extra)} in problem spec; valid: args, "
                       "kwargs, target")
    target = spec["target"]
    if target not in PROBLEMS:
        raise unknown("problem target", target, PROBLEMS)
    args = list(spec.get("args") or [])
    kwargs = dict(spec.get("kwargs") or {})
    kwargs.setdefault("config", spec)
    try:
        inspect.signature(PROBLEMS[target]).bind(*args, **kwargs)
    except TypeError as e:
        raise L2OError(f"bad arguments for problem '{target}': {e}") from None
    return PROBLEMS[target](*args, **kwargs)
