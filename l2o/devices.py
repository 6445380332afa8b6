"""Device selection (``--gpus``, ``--cpu``, ``--vgpu``, ``--vram``) and the tf.distribute strategy.

Call :func:`create_strategy` first, before anything else touches TensorFlow: visible
devices, memory growth and virtual devices can only be configured while the TF runtime is
still uninitialised (no tensor created, no op run). Build models and optimizers inside
``strategy.scope()`` afterwards.

Multi-machine training: when the ``TF_CONFIG`` environment variable describes a cluster
(``{"cluster": {...}, "task": {...}}``), or the process is one task of a SLURM job step with
several tasks (``srun``), :func:`create_strategy` returns a
``tf.distribute.MultiWorkerMirroredStrategy`` that spans every worker's visible GPUs (or
CPUs); ``--gpus`` still selects the local GPUs of each worker. :func:`is_chief` tells the
one worker that writes the results tree; :func:`check_workers_agree` and
:func:`worker_failure` are the collective checks and the error a lost worker turns into.
"""

import json
import os

from l2o.errors import L2OError


def list_gpus():
    """The GPUs of this machine as dicts ``{index, name, memory_total_mb, memory_used_mb}``.

    Uses gpustat (the NVIDIA driver's view) when it works, else TensorFlow's physical
    device list (memory unknown: None). An empty list when there is no GPU.
    """
    try:
        import gpustat

        return [
            {"index": int(g.index), "name": g.name,
             "memory_total_mb": g.memory_total, "memory_used_mb": g.memory_used}
            for g in gpustat.new_query().gpus
        ]
    except Exception:  # no driver / NVML, or gpustat missing: ask TensorFlow instead
        pass
    import tensorflow as tf

    gpus = []
    for index, device in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            name = tf.config.experimental.get_device_details(device).get("device_name", device.name)
        except Exception:
            name = device.name
        gpus.append({"index": index, "name": name,
                     "memory_total_mb": None, "memory_used_mb": None})
    return gpus


def _parse_gpus(gpus):
    if gpus is None or gpus == "":
        return None
    if isinstance(gpus, int):
        return [gpus]
    parts = gpus.split(",") if isinstance(gpus, str) else list(gpus)
    indices = []
    for part in parts:
        try:
            indices.append(int(str(part).strip()))
        except ValueError:
            raise L2OError(
                f"--gpus={gpus}: '{part}' is not a GPU index; write e.g. --gpus=0,2") from None
    return indices


def _cluster_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        raise L2OError("the TF_CONFIG environment variable is not valid JSON") from None
    return config if isinstance(config, dict) and config.get("cluster") else None


def _slurm_tasks():
    """The number of tasks of the SLURM job step this process belongs to (0: not in one)."""
    if "SLURM_PROCID" not in os.environ:
        return 0
    try:
        return int(os.environ.get("SLURM_STEP_NUM_TASKS", "0"))
    except ValueError:
        return 0


def _multi_worker_strategy(num_gpus):
    import tensorflow as tf

    if _cluster_config() is not None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    # one task per node (srun --ntasks-per-node=1), each with all the GPUs it can see; the
    # workers listen on $L2O_SLURM_PORT (default 8888) of their node
    try:
        port = int(os.environ.get("L2O_SLURM_PORT", "8888"))
    except ValueError:
        raise L2OError("L2O_SLURM_PORT must be a port number") from None
    try:
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=num_gpus, auto_set_gpu=False)
    except RuntimeError as err:
        raise L2OError(f"cannot read the SLURM job step: {err}") from None
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def loopback_tf_configs(workers):
    """``TF_CONFIG`` values (JSON strings) for ``workers`` processes on 127.0.0.1, one per
    worker index, on ports free right now: a cluster on one machine for tests and benchmarks."""
    import socket

    sockets = [socket.socket() for _ in range(int(workers))]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]}
    for sock in sockets:
        sock.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            for index in range(len(sockets))]


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several processes (MultiWorkerMirroredStrategy)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the results: always, except for the non-chief workers of
    a multi-worker strategy (the chief is worker 0, or the task of type "chief")."""
    return not is_multi_worker(strategy) or bool(strategy.extended.should_checkpoint)


def worker_index(strategy):
    """This process's task index in the cluster of ``strategy`` (0 without a cluster)."""
    return strategy.cluster_resolver.task_id if is_multi_worker(strategy) else 0


def _gather(strategy, local):
    """Every replica's copy of the host array ``local``, stacked along axis 0 (numpy); a
    collective call."""
    import tensorflow as tf

    mine = tf.constant(local)
    return strategy.gather(strategy.run(lambda: tf.identity(mine)), axis=0).numpy()


def check_workers_agree(strategy, value, what):
    """Raise an L2OError unless every worker holds the same whole number ``value``.

    A collective call: every worker must make it. Used on where a run resumes, which
    differs when the workers do not see the same experiment folder.
    """
    if not is_multi_worker(strategy):
        return
    values = _gather(strategy, [int(value)])
    low, high = int(values.min()), int(values.max())
    if low != high:
        raise L2OError(f"the workers disagree on {what} ({low} to {high}): every worker must "
                       "see the same --directory, on a filesystem they share")


def worker_weight_difference(strategy, weights):
    """The largest absolute difference between any worker's ``weights`` (a dict of arrays)
    and the chief's; None for a single-process strategy. A collective call."""
    if not is_multi_worker(strategy):
        return None
    import numpy as np

    every = _gather(strategy, np.concatenate([np.ravel(weights[k]) for k in sorted(weights)])
                    [None].astype(np.float32))
    return float(np.max(np.abs(every - every[:1]))) if every.size else 0.0


#: TensorFlow errors that mean another worker of the cluster went away.
_LOST_WORKER_ERRORS = ("UnavailableError", "CancelledError", "DeadlineExceededError",
                       "AbortedError")


def worker_failure(strategy, err):
    """The one-line L2OError for ``err`` when it means a lost worker, else None."""
    if not is_multi_worker(strategy) or type(err).__name__ not in _LOST_WORKER_ERRORS:
        return None
    # TensorFlow's message lists the Python frames of the failed op; keep the reason only
    lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines()]
    reasons = [line for line in lines if line and not line.startswith(("File ", "Detected at",
                                                                        "Graph execution"))]
    detail = " ".join(" ".join(reasons[-2:]).split())[:240]
    return L2OError(
        "a worker of the cluster stopped or cannot be reached "
        f"({type(err).__name__}: {detail}); start the same command again on every worker to "
        "resume from the last complete period")


def _configure(action):
    try:
        action()
    except RuntimeError as err:
        raise L2OError(
            "devices must be configured before TensorFlow runs anything; call "
            f"create_strategy first ({err})") from None


def create_strategy(gpus=None, cpu=False, vgpu=1, vram=12000, verbose=False):
    """Configure the devices and return a ``tf.distribute`` strategy.

    * ``TF_CONFIG`` describes a cluster, or this is one of several tasks of a SLURM job step
      (``srun``; resolved by ``SlurmClusterResolver``): ``MultiWorkerMirroredStrategy``.
    * ``cpu``: GPUs are hidden; ``OneDeviceStrategy`` on /CPU:0.
    * ``gpus`` ("0,2"): only those physical GPUs stay visible; an index that does not
      exist is an L2OError naming the valid ones.
    * memory growth is switched on for every visible GPU.
    * ``vgpu > 1``: GPU 0 is split into ``vgpu`` logical GPUs of ``vram`` MB each (a debug
      aid for multi-replica code on one card); without GPUs, /CPU:0 is split into ``vgpu``
      logical CPUs instead.
    * otherwise ``MirroredStrategy`` over the visible GPUs, or ``OneDeviceStrategy`` on the
      CPU when there is none.
    """
    import tensorflow as tf

    vgpu = int(vgpu)
    if vgpu < 1:
        raise L2OError(f"--vgpu must be at least 1, got {vgpu}")
    physical = tf.config.list_physical_devices("GPU")
    wanted = _parse_gpus(gpus)

    if cpu:
        if physical:
            _configure(lambda: tf.config.set_visible_devices([], "GPU"))
        physical = []
    elif wanted is not None:
        bad = [i for i in wanted if not 0 <= i < len(physical)]
        if bad:
            valid = ", ".join(str(i) for i in range(len(physical))) or "none: no GPU visible"
            raise L2OError(f"--gpus={gpus}: no GPU with index {bad[0]}; valid: {valid}")
        physical = [physical[i] for i in wanted]
        _configure(lambda: tf.config.set_visible_devices(physical, "GPU"))

    if physical and vgpu > 1:
        _configure(lambda: tf.config.set_logical_device_configuration(
            physical[0],
            [tf.config.LogicalDeviceConfiguration(memory_limit=int(vram))] * vgpu))
    for device in physical[1:] if vgpu > 1 else physical:
        _configure(lambda: tf.config.experimental.set_memory_growth(device, True))
    if not physical and vgpu > 1:
        cpus = tf.config.list_physical_devices("CPU")
        _configure(lambda: tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * vgpu))

    if _cluster_config() is not None or _slurm_tasks() > 1:
        strategy = _multi_worker_strategy(len(physical))
    elif physical:
        strategy = tf.distribute.MirroredStrategy()
    elif vgpu > 1:
        names = [d.name for d in tf.config.list_logical_devices("CPU")][:vgpu]
        strategy = tf.distribute.MirroredStrategy(names)
    else:
        strategy = tf.distribute.OneDeviceStrategy("/CPU:0")
    if verbose:
        print(f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s): "
              + ", ".join(strategy.extended.worker_devices))
    return strategy
