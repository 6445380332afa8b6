"""RepeatStrategy: simple periods, but a period whose validation explodes is run again."""

from l2o.strategy.base import _real, _whole, best_row, exploded, register, require, select
from l2o.strategy.simple import SimpleStrategy


@register
class RepeatStrategy(SimpleStrategy):
    """Simple periods with checkpoint reversion.

    After period (p, r) the validation loss V is compared with V_prev, the best validation of
    period p - 1: if V > V_prev + |V_prev| * repeat_threshold, or V is not finite, the
    period exploded and runs again as (p, r + 1) from the best checkpoint of period p - 1.
    Period 0 never repeats; with ``max_repeat`` > 0 the attempt r = max_repeat is accepted
    whatever its loss (0 means no limit).

    The checkpoint a period continues from is the best repeat (lowest validation) of the
    period before. When an attempt is accepted only because ``max_repeat`` was reached and an
    earlier attempt validated better, training therefore continues from that earlier one
    (the reference continued from the last attempt but evaluated the best one).
    """

    METADATA = ("period", "repeat")
    SETTINGS = dict(SimpleStrategy.SETTINGS, max_repeat=0, repeat_threshold=0.1)

    @classmethod
    def _parse(cls, settings):
        parsed = super()._parse(settings)
        parsed["max_repeat"] = _whole("max_repeat", settings["max_repeat"], 0)
        parsed["repeat_threshold"] = _real("repeat_threshold", settings["repeat_threshold"])
        return parsed

    def header(self, metadata):
        return f"Period {metadata['period']}.{metadata['repeat']}"

    def _best_of_period(self, period):
        row = require(best_row(select(self.summary, period=period)), f"period {period}")
        return {"period": period, "repeat": int(row["repeat"])}

    def _exploded(self, period, repeat):
        if period == 0:
            return False
        if self.max_repeat > 0 and repeat >= self.max_repeat:
            return False
        row = select(self.summary, period=period, repeat=repeat).iloc[-1]
        reference = require(best_row(select(self.summary, period=period - 1)),
                            f"period {period - 1}")["validation"]
        return exploded(row["validation"], reference, self.repeat_threshold)

    def _next(self):
        if len(self.summary) == 0:
            return {"period": 0, "repeat": 0}
        last = self.summary.iloc[-1]
        period, repeat = int(last["period"]), int(last["repeat"])
        if period >= self.num_periods:
            return None
        if self._exploded(period, repeat):
            return {"period": period, "repeat": repeat + 1}
        if period + 1 >= self.num_periods:
            return None
        return {"period": period + 1, "repeat": 0}

    def _previous(self, metadata):
        period = metadata["period"]
        return self._best_of_period(period - 1) if period > 0 else None

    def complete_metadata(self, metadata=None):
        """``{"period", "repeat"}``: the latest period and its best repeat by default."""
        metadata = self._check_partial(metadata)
        period = metadata.get("period", int(self.summary["period"].max()))
        rows = self._pick(self.summary, "period", period, f"period {period}")
        if "repeat" in metadata:
            self._pick(rows, "repeat", metadata["repeat"],
                       f"repeat {metadata['repeat']} of period {period}")
            return {"period": period, "repeat": metadata["repeat"]}
        return {"period": period, "repeat": int(best_row(rows)["repeat"])}
