"""The one exception type l2o raises for user mistakes and unusable inputs.

Scripts catch :class:`L2OError` and print its message as one line on stderr, with a
non-zero exit, instead of a traceback.
"""


class L2OError(ValueError):
    """A user-facing error: the message names what was wrong and what is valid."""


def unknown(kind, name, valid):
    """Build the standard "unknown <kind>" error listing the valid choices."""
    choices = ", ".join(sorted(str(v) for v in valid))
    return L2OError(f"unknown {kind} '{name}'; valid: {choices}")
