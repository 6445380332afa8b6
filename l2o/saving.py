"""Reading policy weights from checkpoints and experiment folders, exporting and loading
packaged optimizers.

A packaged optimizer is a folder::

    config.json                      policy_constructor, policy, settings (+ source info)
    weights.index                    TF object checkpoint of the policy under ``network/``
    weights.data-00000-of-00001

``settings`` holds the evaluation warmup in *iterations* (``warmup``) and its rate
(``warmup_rate``); the reference stored a number of unrolls there but read it back as
iterations, so its packaged optimizers warmed up for 1 step instead of 100 (fixed here).

The paper's released optimizers are the same two checkpoint files without config.json;
they are recognised and loaded as RNNProp with the reference defaults.
"""

import json
import os

import numpy as np
import tensorflow as tf

from l2o.errors import L2OError
from l2o.optimizer import LearnedOptimizer
from l2o.policies.base import build_policy

_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

#: The configuration the paper's released RNNProp optimizers were trained with. The
#: release carries no evaluation settings, so no warmup is applied by default; the paper's
#: evaluation protocol (curriculum: 1 unroll of 100 SGD steps at 0.05) is
#: ``l2o.load(path, warmup=100, warmup_rate=0.05)``.
REFERENCE_RELEASE = {
    "policy_constructor": "RNNPropOptimizer",
    "policy": {
        "layers": [20, 20], "beta_1": 0.9, "beta_2": 0.999, "alpha": 0.1, "epsilon": 1e-10,
        "warmup_lstm_update": False, "perturbation": None, "input_noise": 0.0,
        "name": "RNNPropOptimizer", "activation": "tanh", "recurrent_activation": "sigmoid",
        "use_bias": True, "kernel_initializer": "glorot_uniform",
        "recurrent_initializer": "orthogonal", "bias_initializer": "zeros",
        "unit_forget_bias": True,
    },
    "settings": {"warmup": 0, "warmup_rate": 0.05},
}


def read_network_weights(prefix):
    """``{"recurrent/0/kernel": array, ...}`` of the ``network`` object in a checkpoint.

    Works for checkpoints written by this project (``tf.train.Checkpoint(network=policy,
    optimizer=...)``) and for the reference's, which use the same object paths; the
    meta-optimizer's slots and state are ignored.
    """
    if not os.path.exists(prefix + ".index"):
        raise L2OError(f"no checkpoint at {prefix} ({prefix}.index does not exist)")
    try:
        reader = tf.train.load_checkpoint(prefix)
        out = {}
        for key in reader.get_variable_to_shape_map():
            if (key.startswith("network/") and key.endswith(_SUFFIX)
                    and "OPTIMIZER_SLOT" not in key and not key.startswith("network/perturbation/")):
                out[key[len("network/"):-len(_SUFFIX)]] = reader.get_tensor(key)
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise L2OError(f"checkpoint {prefix} is corrupt or truncated ({msg})") from None
    if not out:
        raise L2OError(f"checkpoint {prefix} holds no policy weights (no 'network/' entries)")
    return out


def restore_policy(policy, prefix):
    """Fill ``policy``'s weights from a checkpoint; names and shapes must match."""
    policy.set_weights(read_network_weights(prefix), source=f"checkpoint {prefix}")
    return policy


def load_experiment_policy(directory, checkpoint="best", debug=False):
    """The policy an experiment folder trained: its config.json's policy, with the weights
    of ``checkpoint`` (a name in ``checkpoint/`` such as ``period_4.0`` or ``stage_1.2.0``;
    ``"best"``: the folder's default checkpoint, the one ``l2o.package`` exports, see
    :func:`l2o.results.default_checkpoint`)."""
    from l2o.results import base_name, default_checkpoint, read_config

    config = read_config(directory)
    if checkpoint == "best":
        checkpoint = base_name(default_checkpoint(directory))
    policy = build_policy(config["policy_constructor"], config["policy"], debug=debug)
    return restore_policy(policy, os.path.join(directory, "checkpoint", checkpoint))


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise L2OError(f"cannot read {path}: {e}") from None


def read_package(path):
    """The package config of an optimizer folder (a released one gets the reference's)."""
    if not os.path.isdir(path):
        raise L2OError(f"no optimizer at {path}: the folder does not exist")
    config_path = os.path.join(path, "config.json")
    if os.path.exists(config_path):
        config = _read_json(config_path)
        if "policy_constructor" not in config or "policy" not in config:
            raise L2OError(f"{config_path} is not an l2o optimizer config "
                           "(needs 'policy_constructor' and 'policy')")
        return config
    if os.path.exists(os.path.join(path, "weights.index")):
        return json.loads(json.dumps(REFERENCE_RELEASE))
    raise L2OError(f"no optimizer at {path}: expected config.json and/or weights.index")


def load_policy(path, debug=False):
    """The policy stored in an optimizer folder, weights restored."""
    config = read_package(path)
    policy_config = dict(config["policy"])
    policy = build_policy(config["policy_constructor"], policy_config, debug=debug)
    return restore_policy(policy, os.path.join(path, "weights"))


def load(path, name=None, enable_warmup=True, warmup=None, warmup_rate=None):
    """Load a trained optimizer folder as a ``keras.optimizers.Optimizer``.

    ``path`` is a folder written by :func:`export` / :func:`package`, or one of the paper's
    released optimizers (``weights.index`` + ``weights.data-*`` only). The evaluation
    warmup stored with the optimizer is used unless ``enable_warmup`` is False or
    ``warmup`` / ``warmup_rate`` override it.
    """
    config = read_package(path)
    policy = load_policy(path)
    settings = config.get("settings", {})
    if warmup is None:
        warmup = settings.get("warmup", 0) if enable_warmup else 0
    if warmup_rate is None:
        warmup_rate = settings.get("warmup_rate", 0.01)
    return LearnedOptimizer(policy, warmup=warmup, warmup_rate=warmup_rate,
                            name=name or policy.name)


def export(policy, dst, warmup=0, warmup_rate=0.01, extra=None):
    """Write ``policy`` (weights and config) as an optimizer folder loadable by :func:`load`.

    ``extra`` adds keys to config.json (the source experiment's config and metadata).
    Refuses to overwrite an existing folder; writes into a temporary sibling first so an
    interrupted export leaves nothing half-written at ``dst``.
    """
    from l2o.results import atomic_write_json

    if os.path.exists(dst):
        raise L2OError(f"{dst} already exists; choose a new destination")
    for name, value in policy.get_weights().items():
        if not np.all(np.isfinite(value)):
            raise L2OError(f"refusing to export non-finite weights ({name})")
    tmp = dst.rstrip("/") + ".tmp-export"
    if os.path.exists(tmp):
        import shutil
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    tf.train.Checkpoint(network=policy).write(os.path.join(tmp, "weights"))
    config = dict(extra or {})
    config.update({
        "policy_constructor": type(policy).__name__,
        "policy": policy.get_config(),
        "settings": {"warmup": int(warmup), "warmup_rate": float(warmup_rate)},
    })
    atomic_write_json(os.path.join(tmp, "config.json"), config)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    os.replace(tmp, dst)
    return dst
