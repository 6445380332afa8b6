"""Teachers: the fixed policies a learner imitates.

An analytical teacher is ``{"class_name": "Adam", "config": {...}}`` (the l2o rule
``AdamOptimizer``, not Keras's). ``{"class_name": "__load__", "directory": D,
"checkpoint": C}`` is a policy trained by another experiment: its config.json names the
policy and ``D/checkpoint/C`` holds the weights (``C = "best"``: the experiment's default
checkpoint, its best accepted attempt, the one ``l2o.package`` exports). ``D`` may also be
a packaged optimizer folder (``weights.index`` beside its config.json, as ``l2o.package``
writes and ``pre-trained/teachers/`` ships), whose one set of weights is the teacher; its
``checkpoint`` is then omitted or "best". A relative ``D`` is found in the working directory
or, failing that, in the checkout (where ``pre-trained/`` ships). This is how choice
amalgamation distils a trained choice policy into RNNProp. Reading it needs l2o.saving only,
never the strategies (which build the trainer).
"""

import os

from l2o.errors import L2OError
from l2o.policies.base import build_policy, get_policy_class
from l2o.saving import load_experiment_policy, load_policy


def build_teacher(spec):
    """A teacher policy from its config entry."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise L2OError(f"a teacher is {{'class_name': ..., 'config': {{...}}}}, got {spec!r}")
    name = spec["class_name"]
    if name == "__load__":
        return _load_teacher(spec)
    cls = name if name.endswith("Optimizer") else name + "Optimizer"
    get_policy_class(cls)  # a clear error naming the valid classes
    return build_policy(cls, spec.get("config", {}))


def _load_teacher(spec):
    """A trained policy; ``checkpoint`` "best" is the experiment's default checkpoint."""
    directory = _located(spec.get("directory"))
    checkpoint = spec.get("checkpoint")
    if directory and _is_package(directory):
        if checkpoint not in (None, "best"):
            raise L2OError(f"__load__ teacher: {directory} is a packaged optimizer (one set of "
                           f"weights); omit its checkpoint or give 'best', not {checkpoint!r}")
        return load_policy(directory)
    if not directory or not checkpoint:
        raise L2OError("a __load__ teacher needs 'directory' and 'checkpoint' (a checkpoint "
                       "name such as period_4.0, or 'best'; no checkpoint for a packaged "
                       "optimizer folder)")
    config_path = os.path.join(directory, "config.json")
    if not os.path.exists(config_path):
        raise L2OError(f"__load__ teacher: {config_path} does not exist (train that experiment "
                       "first, or fix the teacher's directory)")
    return load_experiment_policy(directory, checkpoint)


def _is_package(directory):
    """A packaged optimizer folder: weights at its top, no experiment checkpoints."""
    return (os.path.exists(os.path.join(directory, "weights.index"))
            and not os.path.isdir(os.path.join(directory, "checkpoint")))


#: The checkout's root, where ``pre-trained/`` ships.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _located(directory):
    """``directory`` as given if it exists (or is absolute or empty), else the same path
    inside the checkout if it exists there, else as given (for the error message)."""
    if not directory or os.path.isabs(directory) or os.path.exists(directory):
        return directory
    inside = os.path.join(CHECKOUT, directory)
    return inside if os.path.exists(inside) else directory
