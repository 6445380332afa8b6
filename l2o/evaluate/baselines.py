"""Fixed analytical optimizers to compare against (``baseline.py --optimizer``), and the repeat
loop shared by every evaluation.

Deviation from the reference: with the Keras path on (the default) the l2o-only rules
(Momentum, AddSign, PowerSign) are built from the l2o analytical policies instead of failing.
"""

import contextlib
import contextvars
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from l2o.errors import L2OError, unknown
from l2o.evaluate.fit import evaluate_model
from l2o.evaluate.functions import evaluate_function
from l2o.evaluate.problems import check_problem, get_eval_problem, is_function_problem


def _entry(class_name, **config):
    return {"class_name": class_name, "config": config}


BASELINES = {
    "adam": _entry("Adam", learning_rate=0.005, beta_1=0.9, beta_2=0.999),
    "rmsprop": _entry("RMSProp", learning_rate=0.005, rho=0.9),
    "sgd": _entry("SGD", learning_rate=0.2),
    "momentum": _entry("SGD", learning_rate=0.5, momentum=0.9),
    "momentum_custom": _entry("Momentum", learning_rate=0.5, beta_1=0.9),
    "addsign": _entry("AddSign", learning_rate=0.1, beta_1=0.9, beta_2=0.999),
    "powersign": _entry("PowerSign", learning_rate=0.1, beta_1=0.9, beta_2=0.999),
    "adam_deep": _entry("Adam", learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    "rmsprop_deep": _entry("RMSProp", learning_rate=0.0005, rho=0.9),
    "sgd_deep": _entry("SGD", learning_rate=0.2),
    "momentum_deep": _entry("Momentum", learning_rate=0.2, beta_1=0.9),
    "addsign_deep": _entry("AddSign", learning_rate=0.05, beta_1=0.9, beta_2=0.999),
    "powersign_deep": _entry("PowerSign", learning_rate=0.05, beta_1=0.9, beta_2=0.999),
}

# Table class names that Keras implements; the others exist only as l2o analytical policies.
KERAS_CLASSES = {
    "Adam": keras.optimizers.Adam,
    "RMSProp": keras.optimizers.RMSprop,
    "SGD": keras.optimizers.SGD,
}


def make_baseline(key, use_keras=True):
    """A fresh optimizer for baseline ``key`` (a key of :data:`BASELINES`).

    ``use_keras=True``: stock Keras classes for Adam, RMSProp and SGD, l2o analytical rules for
    the rest. ``use_keras=False``: always the l2o analytical rule (time-independent bias
    correction); the Keras-only ``momentum`` entry (SGD with momentum) is then an error.
    """
    if key not in BASELINES:
        raise unknown("baseline optimizer", key, BASELINES)
    class_name, config = BASELINES[key]["class_name"], dict(BASELINES[key]["config"])
    if use_keras and class_name in KERAS_CLASSES:
        return KERAS_CLASSES[class_name](**config)
    if "momentum" in config:
        raise L2OError(f"baseline '{key}' exists only as a Keras optimizer (the l2o SGD rule "
                       "has no momentum); use it with keras enabled, or use 'momentum_custom'")
    try:
        from l2o import build_analytical_optimizer
    except ImportError as error:
        raise L2OError(f"baseline '{key}' needs l2o.build_analytical_optimizer, which cannot be "
                       f"imported: {error}") from None
    return build_analytical_optimizer(class_name, config)


_SPREAD_DEVICES = contextvars.ContextVar("l2o_spread_devices", default=())


@contextlib.contextmanager
def spread_repeats(devices):
    """Within the block, :func:`run_repeats` spreads its runs over ``devices``.

    ``devices`` are TensorFlow device names (``"/GPU:1"``, or a strategy's
    ``extended.worker_devices``). Run ``i`` goes to device ``i mod n``; the devices work
    concurrently, one thread each, with its runs one after another. Every run is a whole
    independent fit (its own model, optimizer and seed ``seed + i``) placed with
    ``tf.device``, outside any ``tf.distribute`` strategy: not data-parallel replicas of one
    fit. The results are stacked in run order, so a seeded spread evaluation gives the same
    arrays, up to float noise, as the same evaluation on one device. An empty list leaves
    :func:`run_repeats` as it is; one device runs the repeats in turn on it.

    The scripts enter it through :func:`l2o.cli.problem_scope` when ``--gpus``/``--vgpu``
    select several devices.
    """
    names = tuple(str(d) for d in devices or ())
    token = _SPREAD_DEVICES.set(names)
    try:
        yield names
    finally:
        _SPREAD_DEVICES.reset(token)


def run_repeats(make_optimizer, problem, repeat, data_dir=None, debug=False, seed=None,
                progress=True, dataset=None):
    """Evaluate ``repeat`` fresh optimizers from ``make_optimizer()`` on ``problem``.

    ``problem`` is a key of the evaluation table or a problem dict; function problems (those
    with ``steps``) go to :func:`evaluate_function`, the rest to :func:`evaluate_model`
    (``dataset`` overrides their dataset). Each result key is stacked over the runs on a new
    axis 0. With ``seed``, run ``i`` uses ``seed + i``. ``data_dir`` and ``debug`` only
    concern model problems; ``progress`` shows a bar per model fit, or with several devices
    one line per finished run.

    Inside :func:`spread_repeats` with several devices the runs go to the devices
    concurrently (run ``i`` on device ``i mod n``, ``make_optimizer()`` called in that
    device's thread and scope) and are stacked in the same order, so the arrays have the same
    layout and, seeded, the same values up to float noise. ``make_optimizer`` must then be
    safe to call from several threads and its optimizers may only *read* shared state (the
    learned optimizers read their policy's weights, never assign them; that policy must be
    built outside any ``tf.distribute`` scope, see :func:`l2o.cli.experiment_scope`). The
    wall-clock
    columns ``batch_time`` and ``epoch_time`` then time each run while the others share the
    host (Python, input pipelines, and on logical devices of one CPU or GPU the hardware
    too): compare them only between evaluations spread the same way.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise L2OError(f"repeat must be a positive integer, got {repeat!r}")
    problem = check_problem(get_eval_problem(problem, dataset=dataset))

    devices = _SPREAD_DEVICES.get()

    def one_run(i, progress):
        run_seed = None if seed is None else int(seed) + i
        optimizer = make_optimizer()
        if len(devices) > 1:
            _check_unmirrored(optimizer)
        if is_function_problem(problem):
            return evaluate_function(optimizer, problem["target"], problem["config"],
                                     problem["steps"], seed=run_seed)
        return evaluate_model(
            optimizer, problem["target"], problem["dataset"], problem["epochs"],
            problem["batch_size"], problem["config"], dp_args=problem.get("dp_args"),
            data_dir=data_dir, debug=debug, seed=run_seed, progress=progress)

    if len(devices) > 1:
        runs = _spread(one_run, int(repeat), devices, seed, progress)
    else:
        with tf.device(devices[0]) if devices else contextlib.nullcontext():
            runs = [one_run(i, progress) for i in range(int(repeat))]
    return {key: np.stack([run[key] for run in runs]) for key in runs[0]}


def _check_unmirrored(optimizer):
    """Spread runs read a learned optimizer's policy outside any strategy, where Keras' update
    step cannot read a ``MirroredVariable`` (TensorFlow's default strategy passes the updated
    variable where the replica id belongs): say so instead of an obscure TypeError."""
    policy = getattr(optimizer, "policy", None)
    if isinstance(policy, tf.Module) and any(
            isinstance(v, tf.distribute.DistributedValues) for v in policy.variables):
        raise L2OError("runs spread over several devices cannot use a policy whose weights were "
                       "created inside a tf.distribute strategy scope; build it outside the "
                       "scope (l2o.cli.experiment_scope)")


def _short(device):
    """``"GPU:1"`` from ``"/job:localhost/replica:0/task:0/device:GPU:1"``."""
    spec = tf.DeviceSpec.from_string(device)
    return f"{spec.device_type}:{spec.device_index}" if spec.device_type else device


def _spread(run, repeat, devices, seed, progress):
    """``[run(i, False) for i in range(repeat)]``, with run ``i`` on ``devices[i % n]``.

    One thread per device (TensorFlow releases the GIL inside its ops); each thread takes its
    runs in order. With ``progress``, one line per finished run instead of the per-epoch
    bars, which would interleave. The first failure (lowest run index) is re-raised once
    every thread has stopped; the other threads start no new run after it.
    """
    count = min(len(devices), repeat)
    runs = [None] * repeat
    failures = []
    stop = threading.Event()
    lock = threading.Lock()
    start = time.perf_counter()
    if progress:
        print(f"Spreading {repeat} runs over {count} devices: "
              + ", ".join(_short(d) for d in devices[:count]), flush=True)

    def worker(k):
        with tf.device(devices[k]):
            for i in range(k, repeat, count):
                if stop.is_set():
                    return
                began = time.perf_counter()
                try:
                    runs[i] = run(i, False)
                except BaseException as error:  # noqa: BLE001 (re-raised in the caller)
                    with lock:
                        failures.append((i, error))
                    stop.set()
                    return
                if progress:
                    with lock:
                        finished = sum(r is not None for r in runs)
                        label = f"run {i + 1}/{repeat}" + ("" if seed is None
                                                          else f" (seed {int(seed) + i})")
                        print(f"  {label} on {_short(devices[k])}: final loss "
                              f"{float(runs[i]['loss'][-1]):.4g}, "
                              f"{time.perf_counter() - began:.1f} s "
                              f"[{finished}/{repeat} done, {time.perf_counter() - start:.0f} s]",
                              flush=True)

    threads = [threading.Thread(target=worker, args=(k,), name=f"l2o-repeat-{k}", daemon=True)
               for k in range(count)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    finally:
        stop.set()  # Ctrl-C: the threads start no further run
    if failures:
        raise min(failures, key=lambda f: f[0])[1]
    return runs
