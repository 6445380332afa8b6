"""SimpleStrategy: a fixed number of periods, each continuing from the previous one."""

from l2o.strategy.base import VALIDATION_KEYS, BaseStrategy, _schedule, _whole, register

# name: (whole number?, minimum)
_RANGES = {
    "unroll_len": (True, 1), "depth": (True, 1), "epochs": (True, 1), "warmup": (True, 0),
    "warmup_rate": (False, 0.0), "annealing_schedule": (False, 0.0),
}


def parse_period_schedules(settings, indices, keys=tuple(_RANGES)):
    """Schedule functions for the training keys and the optional validation keys."""
    schedules = {}
    for key in keys:
        whole, minimum = _RANGES[key]
        schedules[key] = _schedule(key, settings[key], whole, minimum, indices)
    for key, source in VALIDATION_KEYS.items():
        if key in settings and settings[key] is not None:
            whole, minimum = _RANGES[source]
            schedules[key] = _schedule(key, settings[key], whole, minimum, indices)
    return schedules


@register
class SimpleStrategy(BaseStrategy):
    """Train periods 0..num_periods-1, every one from the weights of the one before.

    Every schedule is indexed by the period. Validation uses the ``validation_*`` settings;
    one left as None takes the training schedule's value for that period (the reference
    copied the raw schedule spec instead). The default checkpoint is the latest period (the
    reference always used period 0).
    """

    METADATA = ("period",)
    SETTINGS = {
        "num_periods": 100,
        "unroll_len": 200,
        "depth": 1,
        "epochs": 1,
        "annealing_schedule": 0.1,
        "warmup": 0,
        "warmup_rate": 0.01,
        "validation_epochs": None,
        "validation_unroll": None,
        "validation_depth": None,
        "validation_warmup": 0,
        "validation_warmup_rate": 0.01,
    }

    @classmethod
    def _parse(cls, settings):
        num_periods = _whole("num_periods", settings["num_periods"], 1)
        return {"num_periods": num_periods,
                "schedules": parse_period_schedules(settings, range(num_periods))}

    # -- hyperparameters -----------------------------------------------------------------

    def _index(self, metadata):
        return metadata["period"]

    def _last_index(self):
        return self.num_periods - 1

    def header(self, metadata):
        return f"Period {metadata['period']}"

    # -- decisions -----------------------------------------------------------------------

    def _next(self):
        if len(self.summary) == 0:
            return {"period": 0}
        period = int(self.summary["period"].iloc[-1]) + 1
        return {"period": period} if period < self.num_periods else None

    def _previous(self, metadata):
        period = metadata["period"]
        return {"period": period - 1} if period > 0 else None
