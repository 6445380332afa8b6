"""CurriculumLearningStrategy: stages of growing difficulty, each trained until it stalls."""

from l2o.strategy.base import (BaseStrategy, _real, _whole, best_row, exploded,
                               register, require, select)
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

    1. Repeat, as (s, p, r + 1) from the previous checkpoint, when the losses explode,
       unless r >= max_repeat > 0 or (s, p) = (0, 0). For p > 0 this period's validation is
       compared with the best validation of period p - 1; for p = 0 this period's training
       meta loss is compared with the best validation of stage s - 1 (both measured with
       stage s's settings). A non-finite loss always explodes.
    2. Otherwise continue the stage with period p + 1 while p < num_periods or, after that,
       while fewer than num_chances periods have passed since the stage's best validation.
    3. Otherwise advance to stage s + 1, starting from the best checkpoint of stage s.

    A period starts from the accepted attempt of the period before in its stage (p > 0: the
    repeat that did not explode; the reference took the lowest-validation repeat, which can
    be an attempt the explosion check itself rejected) or from the best checkpoint of the
    previous stage (p = 0). Resuming re-takes all three decisions
    on the last summary row, so a finished stage is never extended and a resumed repeat of
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
        "max_repeat": 0,
        "repeat_threshold": 0.1,
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

    def train_args_at(self, index):
        s = self.schedules
        return {"warmup": s["warmup"](index), "warmup_rate": s["warmup_rate"](index),
                "p_teacher": s["annealing_schedule"](index), "depth": s["depth"](index),
                "unroll_len": s["unroll_len"](index), "epochs": s["epochs"](index)}

    def validation_args_at(self, index):
        args = self.train_args_at(index + 1)
        for key, arg in (("validation_epochs", "epochs"), ("validation_warmup", "warmup"),
                         ("validation_warmup_rate", "warmup_rate")):
            if key in self.schedules:
                args[arg] = self.schedules[key](index + 1)
        args["p_teacher"] = 0.0
        return args

    def _index(self, metadata):
        return metadata["stage"]

    def _last_index(self):
        return self.num_stages - 1

    def header(self, metadata):
        return f"Stage {metadata['stage']}.{metadata['period']}.{metadata['repeat']}"

    # -- summary lookups -----------------------------------------------------------------

    def _best_of_stage(self, stage):
        row = require(best_row(select(self.summary, stage=stage)), f"stage {stage}")
        return self._metadata_of(row)

    def _best_repeat(self, stage, period):
        row = require(best_row(select(self.summary, stage=stage, period=period)),
                      f"stage {stage} period {period}")
        return self._metadata_of(row)

    def _validation_of(self, metadata):
        return select(self.summary, **metadata).iloc[-1]["validation"]

    # -- decisions -----------------------------------------------------------------------

    def _repeats(self, stage, period, repeat):
        if self.max_repeat > 0 and repeat >= self.max_repeat:
            return False
        return self._exploded(stage, period, repeat)

    def _exploded(self, stage, period, repeat):
        """The explosion rule of step 1 (repeat limits aside); (0, 0) never explodes."""
        if stage == 0 and period == 0:
            return False
        row = select(self.summary, stage=stage, period=period, repeat=repeat).iloc[-1]
        if period == 0:
            reference = self._validation_of(self._best_of_stage(stage - 1))
            current = row["meta_loss"] if "meta_loss" in row else float("nan")
        else:
            reference = self._validation_of(self._best_repeat(stage, period - 1))
            current = row["validation"]
        return exploded(current, reference, self.repeat_threshold, row["validation"])

    def _continues(self, stage, period):
        if period < self.num_periods:
            return True
        best = self._best_of_stage(stage)
        return period - best["period"] < self.num_chances

    def _next(self):
        if len(self.summary) == 0:
            return {"stage": 0, "period": 0, "repeat": 0}
        last = self._metadata_of(self.summary.iloc[-1])
        stage, period, repeat = last["stage"], last["period"], last["repeat"]
        if stage >= self.num_stages:
            return None
        if self._repeats(stage, period, repeat):
            return {"stage": stage, "period": period, "repeat": repeat + 1}
        if self._continues(stage, period):
            return {"stage": stage, "period": period + 1, "repeat": 0}
        if stage + 1 >= self.num_stages:
            return None
        return {"stage": stage + 1, "period": 0, "repeat": 0}

    def _accepted_repeat(self, stage, period):
        """The attempt of (stage, period) that training went on from.

        Repeats stop at the first attempt that did not explode: that one carries on, even
        when a rejected attempt had a lower validation. When every attempt exploded (the
        repeat limit was reached), the lowest-validation one does.
        """
        rows = select(self.summary, stage=stage, period=period)
        last = self._metadata_of(rows.iloc[-1])
        if not self._exploded(**last):
            return last
        return self._best_repeat(stage, period)

    def _previous(self, metadata):
        stage, period = metadata["stage"], metadata["period"]
        if period > 0:
            return self._accepted_repeat(stage, period - 1)
        if stage > 0:
            return self._best_of_stage(stage - 1)
        return None

    def complete_metadata(self, metadata=None):
        """``{"stage", "period", "repeat"}``: by default the latest stage's best checkpoint.

        A missing period is the stage's best one; a missing repeat is that period's best.
        """
        metadata = self._check_partial(metadata)
        stage = metadata.get("stage", int(self.summary["stage"].max()))
        rows = self._pick(self.summary, "stage", stage, f"stage {stage}")
        period = metadata.get("period", int(best_row(rows)["period"]))
        rows = self._pick(rows, "period", period, f"period {period} in stage {stage}")
        if "repeat" in metadata:
            self._pick(rows, "repeat", metadata["repeat"],
                       f"repeat {metadata['repeat']} of stage {stage} period {period}")
            repeat = metadata["repeat"]
        else:
            repeat = int(best_row(rows)["repeat"])
        return {"stage": stage, "period": period, "repeat": repeat}
