"""Compare a saved config.json with the config of a new run.

Unlike the reference, the comparison goes both ways (keys only in the saved file count
too) and numbers compare by value, so ``1`` and ``1.0`` match; a bool never matches a
number, because ``True`` and ``1`` mean different things in a config.
"""

import math
import numbers

_MISSING = object()


def _show(value):
    if value is _MISSING:
        return "missing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _same_scalar(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    if _is_number(a) or _is_number(b):
        return False
    return type(a) is type(b) and a == b


def _diff(saved, new, path, out):
    where = "/".join(path) or "(whole config)"
    if isinstance(saved, dict) and isinstance(new, dict):
        for key in list(saved) + [k for k in new if k not in saved]:
            _diff(saved.get(key, _MISSING), new.get(key, _MISSING), path + [str(key)], out)
    elif isinstance(saved, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(saved) != len(new):
            out.append(f"{where}: saved {_show(list(saved))} ({len(saved)} items), "
                       f"now {_show(list(new))} ({len(new)} items)")
        else:
            for i, (a, b) in enumerate(zip(saved, new)):
                _diff(a, b, path + [str(i)], out)
    elif isinstance(saved, (dict, list, tuple)) or isinstance(new, (dict, list, tuple)):
        out.append(f"{where}: saved {_show(saved)}, now {_show(new)}")
    elif saved is _MISSING or new is _MISSING or not _same_scalar(saved, new):
        out.append(f"{where}: saved {_show(saved)}, now {_show(new)}")


def diff_configs(saved, new):
    """Every difference between two configs, one short ``path: saved X, now Y`` line each."""
    out = []
    _diff(saved, new, [], out)
    return out
