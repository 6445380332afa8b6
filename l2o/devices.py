"""Device selection (``--gpus``, ``--cpu``, ``--vgpu``, ``--vram``) and the tf.distribute strategy.

Call :func:`create_strategy` first, before anything else touches TensorFlow: visible
devices, memory growth and virtual devices can only be configured while the TF runtime is
still uninitialised (no tensor created, no op run). Build models and optimizers inside
``strategy.scope()`` afterwards.

Multi-machine training: when the ``TF_CONFIG`` environment variable describes a cluster
(``{"cluster": {...}, "task": {...}}``), :func:`create_strategy` returns a
``tf.distribute.MultiWorkerMirroredStrategy`` that spans every worker's visible GPUs (or
CPUs); ``--gpus`` still selects the local GPUs of each worker.
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


def _configure(action):
    try:
        action()
    except RuntimeError as err:
        raise L2OError(
            "devices must be configured before TensorFlow runs anything; call "
            f"create_strategy first ({err})") from None


def create_strategy(gpus=None, cpu=False, vgpu=1, vram=12000, verbose=False):
    """Configure the devices and return a ``tf.distribute`` strategy.

    * ``TF_CONFIG`` describes a cluster: ``MultiWorkerMirroredStrategy``.
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

    if _cluster_config() is not None:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
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
