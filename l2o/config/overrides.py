"""Command-line parsing into script flags and ``--a/b/c=value`` config overrides.

An override is a ``(path, value)`` pair. ``apply_overrides`` walks the path through the
config: dicts by key, lists by integer index (at every level, the last one included).
Special path elements:

* ``*`` as the last element appends the value to a list (teachers, callbacks, stats);
* a key ending in ``?`` is optional: if that key (or list index) does not exist, the
  whole override is skipped instead of failing. Presets use this to set keys that only
  some strategies have (see ``debug_tiny``).

Typos fail: a key that does not exist is an error naming the valid keys, except for new
keys inside dicts reached through a ``config`` or ``kwargs`` key, which are free-form
constructor arguments checked later by the constructor itself, and the optional strategy
settings of :data:`ADDABLE`.

So do values of the wrong kind: a value must be of the kind of the value it replaces (true
or false, a whole number, a number, text, a list or a dict; a whole number may replace a
float and is stored as one), so that
``--training/epsilon=abc`` is one clear error here rather than a failed conversion deep in
a constructor. A replaced ``None`` takes anything (``policy/perturbation``), the few keys
of :data:`ALSO_ACCEPTS` take one more kind, and the strategy block is left to the
strategy's ``check_settings``, whose schedules take a number, a list or a dict.

Values are read with ``ast.literal_eval`` (never ``eval``); text that is not a Python
literal stays a string, and the JSON spellings ``true``/``false``/``null`` are accepted
as ``True``/``False``/``None`` so a lower-case bool cannot silently become a string.
"""

import ast
import copy
import numbers

from l2o.errors import L2OError

_JSON_WORDS = {"true": True, "false": False, "null": None}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_FREE_FORM = ("config", "kwargs")
#: Settings every strategy accepts that the default configs leave out (so that config.json
#: files written before they existed still match): an override may add them.
ADDABLE = {("strategy", "seed"), ("strategy", "validation_teachers")}
#: Keys whose value may be of one more kind than the value it replaces.
ALSO_ACCEPTS = {
    ("optimizer",): None,                        # the default meta-optimizer (Adam)
    ("training", "gradient_clipping"): None,     # no clipping
    ("policy", "activation"): None,              # Keras: linear
    ("policy", "recurrent_activation"): None,
    ("policy", "kernel_initializer"): dict,      # a serialised Keras initializer
    ("policy", "recurrent_initializer"): dict,
    ("policy", "bias_initializer"): dict,
}
#: Top-level blocks whose values their consumer checks instead (see above).
_KIND_CHECKED_ELSEWHERE = ("strategy",)


def parse_value(text, name=None):
    """The Python value of a command-line value string; None for a bare flag.

    Plain text that is no literal stays a string (``mnist_5k``); text that starts like a
    list, dict, tuple or quoted string but does not parse (``[20,``) is an L2OError naming
    the override ``name``, rather than a string that breaks a constructor later.
    """
    if text is None or not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped in _JSON_WORDS:
        return _JSON_WORDS[stripped]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if stripped[:1] in ("[", "{", "(", "'", '"'):
            where = f"--{name}" if name else "a value"
            raise L2OError(f"{where}={text} is not a valid Python literal (e.g. [20, 20], "
                           "{'type': 'list', 'values': [1, 2]}, 0.1, true, or plain text)"
                           ) from None
        return text


def _convert(name, kind, raw):
    """Convert the raw text of a known flag to its declared type."""
    if kind is bool:
        if raw is None:
            return True
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise L2OError(f"--{name} expects true or false (or yes/no, 1/0), got '{raw}'")
    if raw is None:
        raise L2OError(f"--{name} needs a value: --{name}=...")
    if kind is str or kind is None:
        return raw
    labels = {int: "an integer", float: "a number"}
    try:
        return kind(raw.strip())
    except (TypeError, ValueError):
        label = labels.get(kind, getattr(kind, "__name__", str(kind)))
        raise L2OError(f"--{name} expects {label}, got '{raw}'") from None


def split_path(path):
    """A path given as ``"a/b/0"`` or a list/tuple, as a list of keys; L2OError if empty."""
    if isinstance(path, str):
        parts = path.split("/")
    elif isinstance(path, (list, tuple)):
        parts = list(path)
    else:
        raise L2OError(f"an override path must be 'a/b/c' or a list of keys, got {path!r}")
    if not parts or any(p == "" or p is None for p in parts):
        shown = "/".join("" if p is None else str(p) for p in parts)
        raise L2OError(f"override path '{shown}' has an empty element")
    return parts


def parse_flags(argv, known):
    """Split argv into known flags and config overrides.

    ``known`` maps a flag name (without ``--``) to ``(type, default)``. Every token must be
    ``--key=value`` or a bare ``--key``; the value is everything after the first ``=``.
    Returns ``(flags, overrides)``: flags holds every known name (default when absent);
    overrides is a list of ``(path_list, value)`` in argv order.
    """
    known = {name.lstrip("-"): spec for name, spec in known.items()}
    flags = {name: default for name, (_, default) in known.items()}
    overrides = []
    for token in argv:
        if not token.startswith("--"):
            raise L2OError(
                f"unexpected argument '{token}': arguments are written --key=value or --key")
        key, sep, raw = token[2:].partition("=")
        if not sep:
            raw = None
        if not key:
            raise L2OError(f"argument '{token}' has no name: write --key=value")
        if key in known:
            flags[key] = _convert(key, known[key][0], raw)
        else:
            overrides.append((split_path(key), parse_value(raw, key)))
    return flags, overrides


def _describe(node):
    if node is None:
        return "None"
    text = repr(node)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a {type(node).__name__} ({text})"


def _kind(value):
    """The kind of a config value: bool, int, float (both numbers), str, list, dict, None."""
    if value is None:
        return None
    for kind in (bool, numbers.Integral, numbers.Real, str, (list, tuple), dict):
        if isinstance(value, kind):
            return kind
    return type(value)


_KIND_NAMES = {bool: "true or false", numbers.Integral: "a whole number",
               numbers.Real: "a number", str: "text", (list, tuple): "a list", dict: "a dict",
               None: "None"}


def _checked(path, old, new):
    """``new`` as it may replace ``old`` at ``path``, or an L2OError (see the module notes).

    A whole number that replaces a float is stored as a float (Keras' optimizers refuse
    ``learning_rate=1``)."""
    keys = tuple(str(p).rstrip("?") for p in path)
    if old is None or keys[0] in _KIND_CHECKED_ELSEWHERE:
        return new
    valid = [_kind(old)] + ([ALSO_ACCEPTS[keys]] if keys in ALSO_ACCEPTS else [])
    if numbers.Real in valid and _kind(new) is numbers.Integral:
        return float(new)
    if _kind(new) in valid:
        return new
    names = " or ".join(_KIND_NAMES.get(k, getattr(k, "__name__", str(k))) for k in valid)
    raise L2OError(f"override {'/'.join(keys)}: expected {names} (it replaces "
                   f"{_short(old)}), got {new!r}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint_missing(path):
    """Where a missing strategy/policy key does exist, e.g. 'it exists with --strategy=x'."""
    from l2o.config.defaults import POLICIES, STRATEGIES

    if len(path) != 2 or path[0] not in ("strategy", "policy"):
        return ""
    table = STRATEGIES if path[0] == "strategy" else POLICIES
    owners = [name for name, part in table.items() if path[1] in part[path[0]]]
    if not owners:
        return ""
    return f" ('{path[1]}' exists with --{path[0]}={' or '.join(owners)})"


def _hint_setter(path):
    """Name the presets that put a value at ``path``, if any."""
    try:
        from l2o.config.presets import presets_setting

        names = presets_setting(path)
    except L2OError:
        return ""
    if not names:
        return ""
    return f"; it is set by the preset {' / '.join(names)}"


def _apply_one(config, path, value):
    full = "/".join(str(p) for p in path)
    node = config
    free_form = False
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        here = [str(p) for p in path[:depth]]
        where = "/".join(here) or "the top level"
        optional = isinstance(element, str) and element.endswith("?") and element != "?"
        key = element[:-1] if optional else element
        if key == "*":
            if not last:
                raise L2OError(f"override {full}: '*' (append) may only be the last element")
            if not isinstance(node, list):
                raise L2OError(
                    f"override {full}: '*' appends to a list, but {where} is {_describe(node)}")
            node.append(copy.deepcopy(value))
            return
        if isinstance(node, dict):
            key = str(key)
            if key not in node:
                if optional:
                    return
                if last and (free_form or tuple(here + [key]) in ADDABLE):
                    node[key] = copy.deepcopy(value)
                    return
                valid = ", ".join(sorted(str(k) for k in node)) or "(none: the dict is empty)"
                raise L2OError(
                    f"override {full}: no key '{key}' in {where}; valid: {valid}"
                    + _hint_missing(here + [key]))
            if last:
                node[key] = copy.deepcopy(_checked(path, node[key], value))
                return
            free_form = free_form or key in _FREE_FORM
            node = node[key]
        elif isinstance(node, list):
            try:
                index = int(key)
            except (TypeError, ValueError):
                index = None
            if index is None or isinstance(key, bool) or (isinstance(key, float)):
                raise L2OError(
                    f"override {full}: {where} is a list, so '{key}' must be an index "
                    f"0..{len(node) - 1} or '*' to append")
            if not 0 <= index < len(node):
                if optional:
                    return
                valid = f"0..{len(node) - 1}" if node else "none, the list is empty"
                raise L2OError(
                    f"override {full}: index {index} is out of range for {where} "
                    f"(valid: {valid}; use '*' to append)")
            if last:
                node[index] = copy.deepcopy(_checked(path, node[index], value))
                return
            node = node[index]
        else:
            if optional:
                return
            raise L2OError(
                f"override {full}: {where} is {_describe(node)}, not a dict or list, so it "
                f"has no '{key}'" + _hint_setter(here))


def apply_overrides(config, overrides):
    """A new config with the ``(path, value)`` overrides applied in order (input untouched)."""
    config = copy.deepcopy(config)
    for entry in overrides:
        try:
            path, value = entry
        except (TypeError, ValueError):
            raise L2OError(f"an override must be a (path, value) pair, got {entry!r}") from None
        _apply_one(config, split_path(path), value)
    return config
