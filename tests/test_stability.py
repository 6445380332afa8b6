"""Stability-aware amalgamation from its presets: each preset builds the perturbation it
names, and one preset trained end to end records its attack steps in summary.csv.

What each perturbation does to a meta-step is tested in ``test_train.py`` (every class, and
size zero as the control); a Gaussian preset trains end to end, seeded and resumed, in
``test_resume.py``. Here only the preset-to-training path is left to check.
"""

import json

import pandas as pd
import pytest

from l2o.config import apply_presets, default_config, preset_dir
from l2o.config.overrides import apply_overrides
from l2o.perturbations import Perturbation
from l2o.policies import build_policy
from l2o.strategy import build

BASE = "conv_train,adam,rmsprop,il_more,{},offline,debug_tiny"
SMALL = [(["strategy", "num_periods"], 1), (["problems", 0, "kwargs", "batch_size"], 32)]
PRESETS = ("fgsm", "pgd", "cgd", "gaussian", "gaussian_rel")


def _config(preset, overrides=()):
    config = apply_presets(default_config("repeat", "rnnprop"), BASE.format(preset))
    return apply_overrides(config, SMALL + list(overrides))


@pytest.mark.parametrize("preset", PRESETS)
def test_each_perturbation_preset_builds_the_perturbation_it_names(preset):
    with open(preset_dir() / "perturbations.json") as file:
        (path, wanted), = json.load(file)[preset]["overrides"]
    assert path == ["policy", "perturbation"]
    config = _config(preset)
    policy = build_policy(config["policy_constructor"], config["policy"])
    perturbation = policy.perturbation
    assert isinstance(perturbation, Perturbation)
    assert type(perturbation).__name__ == wanted["class_name"]
    got = perturbation.get_config()
    assert {k: got[k] for k in wanted["config"]} == wanted["config"]
    # a random perturbation never attacks; an adversarial one ascends `steps` times (FGSM once)
    attacks = {"fgsm": 1, "gaussian": 0, "gaussian_rel": 0}.get(preset)
    assert perturbation.adversarial_attack_steps == (
        wanted["config"]["steps"] if attacks is None else attacks)


def test_a_preset_with_an_override_trains_and_records_its_attack_steps(tmp_path):
    config = _config("pgd", [(["policy", "perturbation", "config", "steps"], 2)])
    build(config, directory=str(tmp_path), info=False).train(progress=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 1
    assert summary["attack_steps"].iloc[0] == 2  # one meta-step per period here, 2 ascents
    assert summary["skipped"].iloc[0] == 0
    assert summary[["validation", "meta_loss", "imitation_loss"]].notna().all().all()
