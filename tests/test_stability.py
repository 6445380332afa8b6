"""Stability-aware amalgamation end to end: each perturbation preset trains, K is recorded."""

import pandas as pd
import pytest

from l2o.config import apply_presets, default_config
from l2o.config.overrides import apply_overrides
from l2o.strategy import build

BASE = "conv_train,adam,rmsprop,il_more,{},offline,debug_tiny"
SMALL = [(["strategy", "num_periods"], 1), (["problems", 0, "kwargs", "batch_size"], 32)]


def _run(tmp_path, preset, overrides=()):
    config = apply_presets(default_config("repeat", "rnnprop"), BASE.format(preset))
    config = apply_overrides(config, SMALL + list(overrides))
    directory = tmp_path / preset
    build(config, directory=str(directory), info=False).train(progress=False)
    return pd.read_csv(directory / "summary.csv")


@pytest.mark.parametrize("preset,attacks", [("fgsm", 1), ("pgd", 1), ("cgd", 1),
                                            ("gaussian", 0), ("gaussian_rel", 0)])
def test_each_perturbation_preset_trains(tmp_path, preset, attacks):
    summary = _run(tmp_path, preset)
    assert len(summary) == 1
    assert summary["attack_steps"].iloc[0] == attacks  # one meta-step per period here
    assert summary["skipped"].iloc[0] == 0
    assert summary[["validation", "meta_loss", "imitation_loss"]].notna().all().all()


def test_attack_steps_override_reaches_training(tmp_path):
    summary = _run(tmp_path, "pgd", [(["policy", "perturbation", "config", "steps"], 3)])
    assert summary["attack_steps"].iloc[0] == 3
