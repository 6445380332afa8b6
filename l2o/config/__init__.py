"""Configuration: defaults, presets, the ``--a/b/c=value`` override engine, config checks
and schedules. See the module docstrings for the rules of each part."""

from l2o.config.check import diff_configs
from l2o.config.defaults import BASE, POLICIES, STRATEGIES, default_config
from l2o.config.overrides import apply_overrides, parse_flags, parse_value, split_path
from l2o.config.presets import (
    apply_presets, expand_presets, get_preset, list_presets, preset_dir)
from l2o.config.schedules import float_schedule, integer_schedule, unroll_weights

__all__ = [
    "BASE", "POLICIES", "STRATEGIES", "default_config",
    "apply_overrides", "parse_flags", "parse_value", "split_path",
    "apply_presets", "expand_presets", "get_preset", "list_presets", "preset_dir",
    "diff_configs", "float_schedule", "integer_schedule", "unroll_weights",
]
