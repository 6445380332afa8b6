"""Evaluation fits: train a fresh Keras classifier with a given optimizer and record the curves.

``evaluate_model`` runs a custom epoch loop (as the reference does, rather than ``Model.fit``)
so that it can log the loss and wall time of every training batch. With ``dp_args`` it trains
DP-SGD style: per-example gradients clipped and noised before the optimizer sees them.

Deviations from the reference, both deliberate:

* In DP mode ``batch_loss`` holds the batch *mean* loss, one scalar per batch, so every mode has
  the same shapes (the reference stored the vector of per-example losses there).
* Per-example gradients come from ``tf.vectorized_map`` over single examples instead of a full
  Jacobian, which needs far less memory.
"""

import threading
import time

import keras
import numpy as np
import tensorflow as tf

from l2o.errors import L2OError
from l2o.problems.datasets import load_dataset
from l2o.problems.models import build_model

#: Held while a fit seeds the process-wide generators and draws from them (model
#: initialisation, shuffle seeds): runs spread over devices by ``run_repeats`` set them up one
#: at a time, so a seeded run initialises exactly as it would alone.
_SEEDED_SETUP = threading.Lock()

RESULT_KEYS = ("batch_loss", "batch_time", "loss", "sparse_categorical_accuracy", "val_loss",
               "val_sparse_categorical_accuracy", "epoch_time")


def clip_per_example_gradients(grads, clip_norm):
    """Scale each example's gradient so its global L2 norm (over all tensors) is <= clip_norm.

    ``grads`` is a list of tensors whose leading axis indexes the examples; the list returned has
    the same shapes. Examples already inside the ball are left unchanged.
    """
    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1)
               for g in grads]
    norms = tf.sqrt(tf.add_n(squares))
    scale = clip_norm / tf.maximum(norms, clip_norm)
    return [g * tf.reshape(tf.cast(scale, g.dtype), [-1] + [1] * (g.shape.rank - 1))
            for g in grads]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise L2OError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_dp_args(dp_args):
    needed = {"clip_norm", "noise_multiplier"}
    if set(dp_args) != needed:
        raise L2OError(f"dp_args must have exactly the keys clip_norm, noise_multiplier; "
                       f"got {', '.join(sorted(dp_args)) or 'none'}")
    clip_norm, noise = float(dp_args["clip_norm"]), float(dp_args["noise_multiplier"])
    if clip_norm <= 0 or noise < 0:
        raise L2OError(f"dp_args need clip_norm > 0 and noise_multiplier >= 0, got {dp_args}")
    return clip_norm, noise


def _debug_method(optimizer):
    return getattr(optimizer, "debug_summary", None) or getattr(
        optimizer, "get_debug_summary", None)


def evaluate_model(optimizer, target, dataset, epochs, batch_size, config, dp_args=None,
                   data_dir=None, debug=False, seed=None, progress=True):
    """Train a fresh ``target`` model on ``dataset`` with ``optimizer`` and return its curves.

    ``optimizer`` is a fresh (never applied) ``keras.optimizers.Optimizer``. The train split is
    used for training, the test split for validation; both are cut into whole batches only
    (B_tr and B_val batches per epoch). Returned float32 arrays:

    - ``batch_loss``, ``batch_time`` [epochs * B_tr]: loss of each training batch, and wall
      seconds since the start of the fit taken after it;
    - ``loss``, ``sparse_categorical_accuracy`` [epochs]: training loss (mean of the epoch's
      batch losses) and accuracy;
    - ``val_loss``, ``val_sparse_categorical_accuracy`` [epochs]: on the test split after each
      epoch;
    - ``epoch_time`` [epochs]: wall seconds since the start, at the end of each epoch's training.

    With ``debug=True`` and an optimizer that has ``debug_summary(variables) -> dict`` (the l2o
    learned optimizer), that dict is recorded after every training step and each of its keys is
    added with shape [epochs * B_tr, ...] (e.g. the choice policies' ``_choices_<variable>``).

    ``dp_args={"clip_norm": c, "noise_multiplier": z}`` switches to DP training (module doc).
    ``seed`` seeds Keras' global generators (model initialisation), the shuffle order and the DP
    noise. Runs under the active ``tf.distribute`` strategy, if any, and on the current
    ``tf.device``. Fits may run in parallel threads (see :func:`l2o.evaluate.spread_repeats`):
    the set-up that seeds and draws from the process-wide generators is done one fit at a time.
    """
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    dp = None if dp_args is None else _check_dp_args(dp_args)
    if getattr(optimizer, "built", False):
        raise L2OError("the optimizer was already used; pass a fresh optimizer to each evaluation")
    with _SEEDED_SETUP:
        train = load_dataset(dataset, "train", data_dir=data_dir)
        test = load_dataset(dataset, "test", data_dir=data_dir)
        batches_train = train.y.shape[0] // batch_size
        batches_val = test.y.shape[0] // batch_size
        if batches_train == 0 or batches_val == 0:
            raise L2OError(f"batch_size {batch_size} is larger than dataset '{dataset}' "
                           f"({train.y.shape[0]} train / {test.y.shape[0]} test examples)")

        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        strategy = tf.distribute.get_strategy()
        replicas = strategy.num_replicas_in_sync
        with strategy.scope():
            model = build_model(target, input_shape=train.x.shape[1:],
                                num_classes=train.num_classes, **dict(config or {}))
            variables = model.trainable_variables
            optimizer.build(variables)
            train_accuracy = keras.metrics.SparseCategoricalAccuracy()
            val_accuracy = keras.metrics.SparseCategoricalAccuracy()
        train_data = (tf.data.Dataset.from_tensor_slices((train.x, train.y))
                      .shuffle(100 * batch_size, seed=seed, reshuffle_each_iteration=True)
                      .batch(batch_size, drop_remainder=True)
                      .prefetch(tf.data.AUTOTUNE))
        val_data = (tf.data.Dataset.from_tensor_slices((test.x, test.y))
                    .batch(batch_size, drop_remainder=True)
                    .prefetch(tf.data.AUTOTUNE))
        train_data = strategy.experimental_distribute_dataset(train_data)
        val_data = strategy.experimental_distribute_dataset(val_data)
    noise_seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**31))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    summarize = _debug_method(optimizer) if debug else None

    def debug_values():
        if summarize is None:
            return {}
        return {k: tf.cast(v, tf.float32) for k, v in summarize(variables).items()}

    def replica_train(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            # Pre-divided by the replica count: summing over replicas gives the global mean,
            # and the optimizer's cross-replica gradient sum gives the global-mean gradient.
            loss = tf.reduce_mean(cross_entropy(y, probs)) / replicas
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        train_accuracy.update_state(y, probs)
        return loss, debug_values()

    def replica_train_dp(x, y, step):
        clip_norm, noise_multiplier = dp

        def one_example(example):
            xi, yi = example
            with tf.GradientTape() as tape:
                prob = model(xi[None], training=True)
                loss = cross_entropy(yi[None], prob)[0]
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
            return loss, prob[0], grads

        losses, probs, grads = tf.vectorized_map(one_example, (x, y))
        grads = clip_per_example_gradients(grads, clip_norm)
        global_batch = tf.cast(tf.shape(x)[0] * replicas, tf.float32)
        # Each replica adds its share of the noise so the summed noise has the requested std.
        noise_std = clip_norm * noise_multiplier / np.sqrt(replicas)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        step_seed = tf.random.experimental.stateless_fold_in(
            tf.constant([noise_seed, 0], tf.int64), step * replicas + tf.cast(replica, tf.int64))
        noisy = []
        for i, g in enumerate(grads):
            var_seed = tf.random.experimental.stateless_fold_in(step_seed, i)
            noise = tf.random.stateless_normal(tf.shape(g)[1:], var_seed, stddev=noise_std,
                                               dtype=g.dtype)
            noisy.append((tf.reduce_sum(g, axis=0) + noise) / tf.cast(global_batch, g.dtype))
        optimizer.apply_gradients(zip(noisy, variables))
        train_accuracy.update_state(y, probs)
        return tf.reduce_mean(losses) / replicas, debug_values()

    def replica_val(x, y):
        probs = model(x, training=False)
        val_accuracy.update_state(y, probs)
        return tf.reduce_mean(cross_entropy(y, probs)) / replicas

    def first_replica(values):
        return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], values)

    @tf.function
    def train_step(x, y, step):
        if dp is None:
            loss, summary = strategy.run(replica_train, args=(x, y))
        else:
            loss, summary = strategy.run(replica_train_dp, args=(x, y, step))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None), first_replica(summary)

    @tf.function
    def val_step(x, y):
        loss = strategy.run(replica_val, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    total = epochs * batches_train
    result = {key: np.zeros(total if key.startswith("batch_") else epochs, np.float32)
              for key in RESULT_KEYS}
    summaries = []
    bar = keras.utils.Progbar(epochs, stateful_metrics=["train", "val"], unit_name="epoch") \
        if progress else None

    step = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        train_accuracy.reset_state()
        first = step
        for x, y in train_data:
            loss, summary = train_step(x, y, tf.constant(step, tf.int64))
            result["batch_loss"][step] = loss.numpy()
            result["batch_time"][step] = time.perf_counter() - start
            if summary:
                summaries.append({k: v.numpy() for k, v in summary.items()})
            step += 1
        result["epoch_time"][epoch] = time.perf_counter() - start
        result["loss"][epoch] = result["batch_loss"][first:step].mean()
        result["sparse_categorical_accuracy"][epoch] = train_accuracy.result().numpy()

        val_accuracy.reset_state()
        val_losses = [val_step(x, y).numpy() for x, y in val_data]
        result["val_loss"][epoch] = np.mean(val_losses)
        result["val_sparse_categorical_accuracy"][epoch] = val_accuracy.result().numpy()
        if bar is not None:
            bar.update(epoch + 1, values=[("train", result["loss"][epoch]),
                                          ("val", result["val_loss"][epoch])])

    for key in summaries[0] if summaries else ():
        result[key] = np.stack([s[key] for s in summaries]).astype(np.float32)
    return result
