"""The optimizers shipped in pre-trained/: each loads with l2o.load and trains a model."""

import json
import os
import re

import numpy as np
import pytest

import l2o

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pre-trained")
KINDS = ("min-max", "mean", "choice-large", "choice-small")
#: The choice teachers the students were distilled from: pre-trained/teachers/<policy>/<n>.
TEACHERS = ("less_choice", "more_choice")
SHIPPED_KINDS = KINDS + tuple(os.path.join("teachers", t) for t in TEACHERS)


def shipped():
    return sorted(os.path.join(ROOT, kind, name) for kind in SHIPPED_KINDS
                  if os.path.isdir(os.path.join(ROOT, kind))
                  for name in os.listdir(os.path.join(ROOT, kind)) if name.isdigit())


def test_shipped_replicates_are_numbered_from_one_without_gaps():
    assert shipped(), "pre-trained/ ships no optimizer"
    assert sorted(os.listdir(os.path.join(ROOT, "teachers"))) == sorted(TEACHERS)
    found = [k for k in os.listdir(ROOT) if k != "teachers"] + [
        os.path.join("teachers", t) for t in TEACHERS]
    for kind in found:
        folder = os.path.join(ROOT, kind)
        if not os.path.isdir(folder):
            continue
        assert kind in SHIPPED_KINDS, kind
        numbers = sorted(int(n) for n in os.listdir(folder) if n.isdigit())
        assert numbers == list(range(1, len(numbers) + 1)), (kind, numbers)


@pytest.mark.parametrize("preset, members", [("less_choice_cpu", 2), ("more_choice_cpu", 6)])
def test_the_choice_presets_distil_the_shipped_teachers(preset, members, tmp_path,
                                                        monkeypatch):
    """Step 2 of a choice recipe runs on a fresh clone: its preset's teacher is shipped, and
    found from any working directory."""
    import tensorflow as tf

    from l2o.config import apply_presets, default_config
    from l2o.train import build_teacher

    monkeypatch.chdir(tmp_path)
    config = apply_presets(default_config("curriculum", "rnnprop"),
                           f"conv_train,{preset},il_more,offline,cpu")
    [spec] = config["training"]["teachers"]
    assert spec["directory"].startswith("pre-trained/teachers/")
    teacher = build_teacher(spec)
    assert type(teacher).__name__ == "AbstractChoiceOptimizer" and len(teacher.pool) == members
    param = tf.Variable(tf.random.stateless_normal([4, 3], seed=[1, 2]))
    grad = tf.random.stateless_normal([4, 3], seed=[3, 4])
    delta, _ = teacher.step(param, grad, teacher.init_state(param))
    assert np.all(np.isfinite(delta.numpy())) and np.any(delta.numpy() != 0)


def test_readme_quick_start_folder_exists():
    readme = open(os.path.join(os.path.dirname(ROOT), "README.md")).read()
    loaded = re.findall(r'l2o\.load\("(pre-trained/[^"]+)"\)', readme)
    assert loaded, "the README's quick start loads no pre-trained folder"
    for path in loaded:
        assert os.path.exists(os.path.join(os.path.dirname(ROOT), path, "weights.index")), path


@pytest.mark.parametrize("path", shipped(), ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_optimizer_loads_and_trains(path, mnist_small):
    import keras

    record = json.load(open(os.path.join(path, "record.json")))
    for key in ("command", "commit", "wall_time_minutes", "hardware", "final_validation"):
        assert record[key], key
    assert record["command"].startswith("python train.py ")
    assert os.path.exists(os.path.join(path, "config.json"))

    opt = l2o.load(path)
    assert isinstance(opt, keras.optimizers.Optimizer)
    x, y = mnist_small
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    before = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    after = float(model.evaluate(x, y, verbose=0))
    weights = np.concatenate([w.numpy().ravel() for w in model.trainable_variables])
    assert np.all(np.isfinite(weights)) and np.isfinite(after)
    assert after < before
