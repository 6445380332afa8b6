"""Shared test set-up: quiet TensorFlow, two logical CPUs for the tf.distribute tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # the runtime was already initialised by an earlier import
    pass

PRETRAINED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "pretrained")


@pytest.fixture
def pretrained():
    """The folder of the paper's released optimizers; skip where it is absent."""
    if not os.path.isdir(PRETRAINED):
        pytest.skip("../shared/reference/pretrained is not present")
    return os.path.abspath(PRETRAINED)
