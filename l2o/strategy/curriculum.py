"""CurriculumLearningStrategy: stages of growing difficulty, each trained until it stalls."""

from l2o.results import REPEAT_RULE
from l2o.strategy.base import BaseStrategy, _real, _whole, register
from l2o.strategy.simple import parse_period_schedules


@register
class CurriculumLearningStrategy(BaseStrategy):
    """Train stages 0..num_stages-1; every schedule is indexed by the stage.

    Stage s trains with the schedules at s and validates with those at s + 1 (the next
    stage's difficulty), ``validation_epochs`` excepted: when set it gives the validation
    epochs (the reference ignored it and used epochs(s + 1)); None falls back to epochs(s + 1).
    Likewise ``validation_warmup`` / ``validation_warmup_rate`` (project additions), when
    set, give the validation warmup: 0 validates, and so selects and packages, checkpoints
    the way ``l2o.load`` runs them, with no SGD warmup, while training keeps its warmup.

    After period (s, p, r):

    1. Repeat, as (s, p, r + 1) from the same checkpoint, when the losses explode, unless
       r >= max_repeat > 0 or (s, p) = (0, 0). For p > 0 this period's validation is
       compared with the validation of the accepted attempt of period p - 1; for p = 0 this
       period's training meta loss is compared with the best validation of stage s - 1
       (both measured with stage s's settings). A non-finite loss always explodes.
    2. Otherwise continue the stage with period p + 1 while p < num_periods or, after that,
       while fewer than num_chances periods have passed since the stage's best validation.
    3. Otherwise advance to stage s + 1, starting from the best checkpoint of stage s.

    Only accepted attempts count (:func:`l2o.results.accepted_attempts`): a period's
    accepted attempt is the one that did not explode (when every attempt up to max_repeat
    exploded, the lowest-validation one), and a stage's best is its accepted attempt of
    lowest validation. A period starts from the accepted attempt of the period before in
    its stage (p > 0) or from the best checkpoint of the previous stage (p = 0), and the
    default checkpoint (evaluated, packaged, a ``__load__`` teacher's "best") is the best
    of the latest stage that has an accepted attempt. The reference took the lowest
    validation over all attempts, rejected ones included: a period 0 attempt rejected for
    its training loss could still set the bar of period 1, count as the stage's best for
    the chances and the advance, and be packaged. Resuming re-takes all three decisions on
    the last summary row, so a finished stage is never extended and a resumed repeat of
    period 0 starts from the previous stage's best checkpoint (both reference bugs).

    The evaluation warmup is warmup(num_stages) unrolls of unroll_len(num_stages) steps at
    warmup_rate(num_stages), as validation of the last stage.
    """

    METADATA = ("stage", "period", "repeat")
    SETTINGS = {
        "num_stages": 5,
        "num_periods": 10,
        "num_chances": 3,
        "unroll_len": 200,
        "depth": 1,
        "epochs": 1,
        "annealing_schedule": 0.1,
        "validation_epochs": None,
        "validation_warmup": None,
        "validation_warmup_rate": None,
        **REPEAT_RULE,
        "warmup": 0,
        "warmup_rate": 0.01,
    }

    @classmethod
    def _parse(cls, settings):
        num_stages = _whole("num_stages", settings["num_stages"], 1)
        stages = range(num_stages + 1)  # validation looks one stage ahead
        # the optional validation_* keys that are set become schedules of their own
        schedules = parse_period_schedules(settings, stages)
        return {
            "num_stages": num_stages,
            "num_periods": _whole("num_periods", settings["num_periods"], 0),
            "num_chances": _whole("num_chances", settings["num_chances"], 0),
            "max_repeat": _whole("max_repeat", settings["max_repeat"], 0),
            "repeat_threshold": _real("repeat_threshold", settings["repeat_threshold"]),
            "schedules": schedules,
        }

    # -- hyperparameters -----------------------------------------------------------------

    VALIDATION_LOOKAHEAD = 1  # a stage validates with the next stage's schedules

    def _index(self, metadata):
        return metadata["stage"]

    def _last_index(self):
        return self.num_stages - 1

    def header(self, metadata):
        return f"Stage {metadata['stage']}.{metadata['period']}.{metadata['repeat']}"

    # -- decisions -----------------------------------------------------------------------

    def _continues(self, stage, period):
        if period < self.num_periods:
            return True
        best = self._accepted_attempt(stage=stage)
        return period - best["period"] < self.num_chances

    def _next(self):
        if len(self.summary) == 0:
            return {"stage": 0, "period": 0, "repeat": 0}
        last = self._metadata_of(self.summary.iloc[-1])
        stage, period, repeat = last["stage"], last["period"], last["repeat"]
        if stage >= self.num_stages:
            return None
        if len(self._accepted(stage=stage, period=period)) == 0:  # it exploded: repeat
            return {"stage": stage, "period": period, "repeat": repeat + 1}
        if self._continues(stage, period):
            return {"stage": stage, "period": period + 1, "repeat": 0}
        if stage + 1 >= self.num_stages:
            return None
        return {"stage": stage + 1, "period": 0, "repeat": 0}

    def _previous(self, metadata):
        stage, period = metadata["stage"], metadata["period"]
        if period > 0:
            return self._accepted_attempt(stage=stage, period=period - 1)
        if stage > 0:
            return self._accepted_attempt(stage=stage - 1)
        return None
