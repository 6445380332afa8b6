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

#: The files that take longest (subprocess trainings), collected first. The README's command
#: (``pytest -n 2 --dist loadfile --no-loadscope-reorder``) gives each file to one of two
#: workers in this order, so the long files start at once instead of one of them running
#: alone at the end (xdist's own reorder would put the files with the most tests first).
SLOW_FIRST = ("test_cli.py", "test_resume.py", "test_multiworker.py", "test_train.py")


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept


PRETRAINED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "pretrained")


@pytest.fixture
def pretrained():
    """The folder of the paper's released optimizers; skip where it is absent."""
    if not os.path.isdir(PRETRAINED):
        pytest.skip("../shared/reference/pretrained is not present")
    return os.path.abspath(PRETRAINED)


@pytest.fixture(scope="session")
def two_cpus():
    """One MirroredStrategy over the two logical CPUs, shared by every test of the session.

    Several MirroredStrategy objects in one process reuse collective instance keys, and their
    all-reduces then collide ("Shape mismatch in the collective instance"): share one.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPUs (configured in conftest before TF starts)")
    return tf.distribute.MirroredStrategy(devices[:2])


@pytest.fixture(scope="session")
def mnist_small():
    """256 real digits of the embedded offline sample (x in [0, 1], integer labels)."""
    from l2o.problems import load_dataset

    data = load_dataset("mnist_5k", "train")
    return data.x[:256], data.y[:256]
