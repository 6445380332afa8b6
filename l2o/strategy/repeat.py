"""RepeatStrategy: simple periods, but a period whose validation explodes is run again."""

from l2o.results import REPEAT_RULE
from l2o.strategy.base import _real, _whole, register
from l2o.strategy.simple import SimpleStrategy


@register
class RepeatStrategy(SimpleStrategy):
    """Simple periods with checkpoint reversion.

    After period (p, r) the validation loss V is compared with V_prev, the validation of
    the accepted attempt of period p - 1: if V > V_prev + |V_prev| * repeat_threshold, or V
    is not finite, the period exploded and runs again as (p, r + 1) from that accepted
    attempt. Period 0 never repeats; with ``max_repeat`` > 0 the attempt r = max_repeat is
    accepted whatever its loss (0 means no limit).

    A period's accepted attempt (:func:`l2o.results.accepted_attempts`) is the one that did
    not explode, which is also its lowest-validation attempt. When an attempt is accepted
    only because ``max_repeat`` was reached and an earlier attempt validated better, the
    earlier one is the period's accepted attempt: training continues from it (the
    reference continued from the last attempt but evaluated the best one). The default
    checkpoint is the accepted attempt of the latest period that has one (not a rejected
    attempt whose repeat is pending).
    """

    METADATA = ("period", "repeat")
    SETTINGS = dict(SimpleStrategy.SETTINGS, **REPEAT_RULE)

    @classmethod
    def _parse(cls, settings):
        parsed = super()._parse(settings)
        parsed["max_repeat"] = _whole("max_repeat", settings["max_repeat"], 0)
        parsed["repeat_threshold"] = _real("repeat_threshold", settings["repeat_threshold"])
        return parsed

    def header(self, metadata):
        return f"Period {metadata['period']}.{metadata['repeat']}"

    def _next(self):
        if len(self.summary) == 0:
            return {"period": 0, "repeat": 0}
        last = self.summary.iloc[-1]
        period, repeat = int(last["period"]), int(last["repeat"])
        if period >= self.num_periods:
            return None
        if len(self._accepted(period=period)) == 0:  # it exploded: repeat
            return {"period": period, "repeat": repeat + 1}
        if period + 1 >= self.num_periods:
            return None
        return {"period": period + 1, "repeat": 0}

    def _previous(self, metadata):
        period = metadata["period"]
        return self._accepted_attempt(period=period - 1) if period > 0 else None
