"""Named presets: lists of config overrides stored as JSON under ``presets/``.

Each ``*.json`` file in the preset folder maps preset names to
``{"description": str, "overrides": [[path, value], ...]}``. A path is a list of keys and
list indices; ``"*"`` as the last element appends, and a trailing ``?`` on a key makes
the override optional (skipped when the key does not exist, see ``overrides.py``).

The folder is looked up, in order, in ``$L2O_PRESETS``, in ``<checkout>/presets`` and in
``<sys.prefix>/share/l2o/presets`` (where an installed package puts it).
"""

import functools
import json
import os
import sys
from pathlib import Path

from l2o.errors import L2OError, unknown

ENV_VAR = "L2O_PRESETS"


def preset_dir():
    """The folder the presets are read from; an L2OError if none can be found."""
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates.append(Path(__file__).resolve().parents[2] / "presets")
    candidates.append(Path(sys.prefix) / "share" / "l2o" / "presets")
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    raise L2OError(
        "no preset folder found; looked in " + ", ".join(str(c) for c in candidates)
        + f" (set {ENV_VAR} to the folder holding the preset .json files)")


@functools.lru_cache(maxsize=None)
def _load(folder):
    table = {}
    for file in sorted(Path(folder).glob("*.json")):
        try:
            content = json.loads(file.read_text())
        except ValueError as err:
            raise L2OError(f"preset file {file} is not valid JSON: {err}") from None
        for name, preset in content.items():
            if name in table:
                raise L2OError(f"preset '{name}' is defined twice (again in {file})")
            if (not isinstance(preset, dict) or not isinstance(preset.get("description"), str)
                    or not isinstance(preset.get("overrides"), list)):
                raise L2OError(
                    f"preset '{name}' in {file} must be an object with a 'description' "
                    "string and an 'overrides' list")
            overrides = []
            for entry in preset["overrides"]:
                if (not isinstance(entry, list) or len(entry) != 2
                        or not isinstance(entry[0], list) or not entry[0]):
                    raise L2OError(
                        f"preset '{name}' in {file}: each override must be [[path, ...], value], "
                        f"got {entry!r}")
                overrides.append((tuple(entry[0]), entry[1]))
            table[name] = (preset["description"], tuple(overrides))
    return table


def _presets():
    return _load(str(preset_dir()))


def list_presets():
    """Every preset name mapped to its one-line description, in file order."""
    return {name: description for name, (description, _) in _presets().items()}


def get_preset(name):
    """The overrides of one preset as a list of ``(path_list, value)`` pairs (fresh copies)."""
    table = _presets()
    if name not in table:
        raise unknown("preset", name, table)
    # Round-trip through JSON so callers can never mutate the cached preset values.
    return [(list(path), json.loads(json.dumps(value))) for path, value in table[name][1]]


def split_names(names):
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; a list or tuple is passed through cleaned."""
    if names is None:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n and n.strip()]


def expand_presets(names):
    """All overrides of a comma-separated preset list, in the given order."""
    selected = split_names(names)
    table = _presets()
    for name in selected:
        if name not in table:
            raise unknown("preset", name, table)
    overrides = []
    for name in selected:
        overrides.extend(get_preset(name))
    return overrides


def apply_presets(config, names):
    """Apply presets one by one; an error message says which preset failed."""
    from l2o.config.overrides import apply_overrides

    selected = split_names(names)
    table = _presets()
    for name in selected:
        if name not in table:
            raise unknown("preset", name, table)
    for name in selected:
        try:
            config = apply_overrides(config, get_preset(name))
        except L2OError as err:
            raise L2OError(f"preset '{name}' does not fit this config: {err}") from None
    return config


def presets_setting(path):
    """Names of the presets that assign exactly ``path`` (used for error hints)."""
    path = [str(p) for p in path]
    return [name for name, (_, overrides) in _presets().items()
            if any([str(p) for p in ov_path] == path for ov_path, _ in overrides)]
