"""What every training strategy shares: settings, the period loop, resume, and evaluation.

A strategy owns an experiment folder (:class:`l2o.results.Experiment`) and drives a meta
trainer through *periods*. One period trains, validates, writes the checkpoint, writes the
log and finally appends its summary.csv row. The row is the commit point: a run killed at
any moment resumes from the last period that has a row; a checkpoint without a row is
simply written again.

The strategies differ only in three pure decisions taken from summary.csv:

* ``_next()``: the metadata of the next period, or None when training is finished;
* ``_previous(meta)``: the checkpoint the period ``meta`` starts from (None: the initial
  weights);
* the training and validation hyperparameters of a period.

Because the live loop and a resumed run both call the same ``_next()`` on the same table,
a resumed run takes exactly the decisions an uninterrupted one would have taken (the
reference re-decided only part of them on resume). Before each period the trainer is
rewound to ``_previous(meta)`` unless it already holds those weights, so repeats, stage
advances and resumes all go through one code path.

Only accepted attempts count (:func:`l2o.results.accepted_attempts`): explosions are
judged against them, periods and stages start from them and the default checkpoint is one
of them; an attempt the repeat rule rejected is never used, however well it validated.
"Best" always means the lowest finite validation loss among them (the latest row when none
is finite).
"""

import contextlib
import json
import math
import numbers
import os
import time

import numpy as np

from l2o.config.schedules import float_schedule, integer_schedule
from l2o.errors import L2OError, unknown
from l2o.results import (REPEAT_RULE, Experiment, accepted_attempts, base_name, best_row,
                         complete_checkpoint, describe_settings)

_REGISTRY = {}

#: The keys every strategy accepts, with their library defaults (None: per class name).
COMMON_SETTINGS = {"validation_problems": None, "validation_seed": 12345, "name": None,
                   "seed": None, "validation_teachers": True}

#: Hyperparameter names of a period, in summary.csv (and header) order.
HYPER = ("warmup", "warmup_rate", "p_teacher", "depth", "unroll_len", "epochs")

_DEFAULT_STATS = ("meta_loss", "imitation_loss")


#: The optional validation schedules (a strategy setting) and the training key each replaces.
VALIDATION_KEYS = {
    "validation_warmup": "warmup",
    "validation_warmup_rate": "warmup_rate",
    "validation_depth": "depth",
    "validation_unroll": "unroll_len",
    "validation_epochs": "epochs",
}


def register(cls):
    """Class decorator: make a strategy constructible by its class name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def strategy_names():
    return sorted(_REGISTRY)


def get_strategy_class(name):
    """The strategy class called ``name`` (``SimpleStrategy``, ``RepeatStrategy``, ...)."""
    if isinstance(name, type) and issubclass(name, BaseStrategy):
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise unknown("strategy", name, _REGISTRY)
    return _REGISTRY[name]


# -- setting checks ------------------------------------------------------------------------


def _whole(name, value, minimum):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not float(value).is_integer() or value < minimum):
        raise L2OError(f"strategy setting '{name}' must be a whole number >= {minimum}, "
                       f"got {value!r}")
    return int(value)


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise L2OError(f"strategy setting '{name}' must be a finite number, got {value!r}")
    return float(value)


def _schedule(name, spec, whole, minimum, indices):
    """Build a schedule and check its values over the indices the strategy will use."""
    try:
        fn = integer_schedule(spec) if whole else float_schedule(spec)
    except L2OError as err:
        raise L2OError(f"strategy setting '{name}': {err}") from None
    if not callable(spec):
        for i in indices:
            value = fn(i)
            if value < minimum:
                raise L2OError(f"strategy setting '{name}' must be >= {minimum}, but it is "
                               f"{value!r} at index {i}")
    return fn


# -- summary helpers -----------------------------------------------------------------------


def select(frame, **match):
    """The rows of ``frame`` whose columns equal the given values."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in match.items():
        mask &= frame[column].to_numpy() == value
    return frame[mask]


#: Columns of summary.csv that measure the learner's validation run; they share the
#: ``validation_`` prefix of the teachers' columns but are not teachers.
VALIDATION_STEP_MS = "validation_step_ms"
VALIDATION_DURATION = "validation_duration"
_TEACHER_PREFIX = "validation_"


def teacher_column(label):
    """The summary.csv column of a teacher's validation meta-loss (``validation_adam``)."""
    return _TEACHER_PREFIX + label


def teacher_scores(row):
    """``{label: validation meta-loss}`` of the teachers in a summary.csv row."""
    return {column[len(_TEACHER_PREFIX):]: float(row[column]) for column in row.index
            if column.startswith(_TEACHER_PREFIX)
            and column not in (VALIDATION_STEP_MS, VALIDATION_DURATION)}


def require(row, what):
    """``row``, or an L2OError when a lookup in summary.csv found nothing."""
    if row is None:
        raise L2OError(f"summary.csv has no row for {what}")
    return row


def _format(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- the base class ------------------------------------------------------------------------



@contextlib.contextmanager
def _deterministic_ops(on):
    """A seeded run's repeatable arithmetic, while it trains and only then (both switches are
    process-wide, and a notebook's later ``model.fit`` should not pay for them):
    TensorFlow's deterministic op kernels, and Grappler's arithmetic optimizer off. With the
    optimizer on, a 100-step meta-step's updated weights differ in their last bits from call
    to call and process to process (the forward unroll does not), presumably because its
    rewrites of the backward unroll's long sums are not the same in every function
    instantiation; with it off they are the same bit for bit, at no measurable cost
    (``benchmarks/determinism.py``, ``benchmarks/seeded_rerun.py``)."""
    import tensorflow as tf
    from tensorflow.python.framework import config  # the switch back is not public API

    switch = on and not config.is_op_determinism_enabled()
    arithmetic = tf.config.optimizer.get_experimental_options().get("arithmetic_optimization")
    if switch:
        tf.config.experimental.enable_op_determinism()
    if on:
        tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    try:
        yield
    finally:
        if switch:
            config.disable_op_determinism()
        if on:  # unset means TensorFlow's default, on
            tf.config.optimizer.set_experimental_options(
                {"arithmetic_optimization": arithmetic is None or arithmetic})


class BaseStrategy:
    """A meta-training schedule writing one experiment folder.

    Parameters
    ----------
    trainer : the meta trainer (``l2o.train.MetaTrainer``); None builds an evaluation-only
        strategy, which then needs ``policy``.
    problems : training problems, as :class:`l2o.problems.Problem` objects or their specs
        (``{"target", "args", "kwargs"}``). A spec is built by ``l2o.problems.build_problem``.
    directory : the experiment folder.
    policy : the policy to evaluate when there is no trainer (default: ``trainer.policy``).
    lazy_problems : build problem specs on first use instead of now (evaluation only needs
        the policy, not the training datasets).
    **settings : the strategy keys of the config (``SETTINGS`` of each class, plus
        ``validation_problems``, ``validation_seed``, ``name``, ``seed`` and
        ``validation_teachers``: whether validation also scores each teacher on the learner's
        unrolls for the ``validation_<teacher>`` columns; with the seeded validation of every
        period the scores are computed once per validation setting, which with two teachers
        costs about as much again as that validation); unknown keys are an error.
    """

    #: Metadata columns of summary.csv, which also name the checkpoints.
    METADATA = ()
    #: Strategy-specific settings and their library defaults.
    SETTINGS = {}

    def __init__(self, trainer, problems, directory="weights", policy=None,
                 lazy_problems=False, **settings):
        resolved = self.check_settings(settings)
        self.settings = resolved
        self.name = resolved["name"]
        self.validation_seed = resolved["validation_seed"]
        self.seed = resolved["seed"]
        self._apply_settings(resolved)

        self.trainer = trainer
        self.policy = policy if policy is not None else getattr(trainer, "policy", None)
        if self.policy is None:
            raise L2OError(f"{type(self).__name__} needs a trainer or a policy")

        if isinstance(problems, (str, dict)) or not hasattr(problems, "__len__") or not problems:
            raise L2OError(f"{type(self).__name__} needs a non-empty list of training problems, "
                           f"got {problems!r}")
        self._problem_specs = list(problems)
        self._validation_specs = resolved["validation_problems"]
        self._problems = None
        self._validation_problems = None
        if not lazy_problems:
            self.problems  # noqa: B018  (build now: errors surface at construction)
            self.validation_problems  # noqa: B018

        stats = list(getattr(trainer, "mean_stats", None) or _DEFAULT_STATS)
        self.stat_columns = [s for s in stats if s != "skipped"]
        self.experiment = Experiment(directory, self.METADATA, self.stat_columns)
        self.directory = self.experiment.directory
        self.summary = self.experiment.read_summary()
        missing = [c for c in ("validation",) + tuple(self.METADATA) if c not in self.summary]
        if missing:
            raise L2OError(f"{self.experiment.summary_path} lacks the columns "
                           f"{', '.join(missing)} of {type(self).__name__}; it was written by "
                           "another strategy")
        self._in_memory = None  # metadata of the checkpoint the trainer holds, if known
        self._acceptance_of = self._acceptance_mask = None  # see _acceptance

    # -- settings ------------------------------------------------------------------------

    @classmethod
    def valid_settings(cls):
        return dict(COMMON_SETTINGS, **cls.SETTINGS)

    @classmethod
    def check_settings(cls, settings):
        """Complete ``settings`` with the defaults and check every value; returns a dict.

        Raises :class:`L2OError` for unknown keys (naming the valid ones) and bad values.
        Pure: builds no problem and touches no file.
        """
        valid = cls.valid_settings()
        extra = sorted(set(settings) - set(valid))
        if extra:
            raise L2OError(
                f"unknown {cls.__name__} setting{'s' if len(extra) > 1 else ''} "
                f"{', '.join(repr(k) for k in extra)}; valid: {', '.join(sorted(valid))}")
        resolved = dict(valid, **settings)
        if resolved["name"] is None:
            resolved["name"] = cls.__name__
        if not isinstance(resolved["name"], str):
            raise L2OError(f"strategy setting 'name' must be a string, got {resolved['name']!r}")
        for key in ("validation_seed", "seed"):
            if resolved[key] is not None:
                resolved[key] = _whole(key, resolved[key], 0)
        if not isinstance(resolved["validation_teachers"], bool):
            raise L2OError("strategy setting 'validation_teachers' must be true or false, got "
                           f"{resolved['validation_teachers']!r}")
        vp = resolved["validation_problems"]
        if vp is not None and (isinstance(vp, (str, dict)) or not hasattr(vp, "__len__")
                               or not vp):
            raise L2OError("strategy setting 'validation_problems' must be null or a non-empty "
                           f"list of problem specs, got {vp!r}")
        cls._parse(resolved)
        return resolved

    @classmethod
    def _parse(cls, settings):
        """Build and check the schedules; returns ``{name: value or function}``."""
        raise NotImplementedError

    def _apply_settings(self, settings):
        for key, value in self._parse(settings).items():
            setattr(self, key, value)

    # -- problems ------------------------------------------------------------------------

    @staticmethod
    def _build_problems(specs):
        from l2o.problems import build_problem

        return [build_problem(s) if isinstance(s, dict) else s for s in specs]

    @property
    def problems(self):
        """The training problems (built on first use)."""
        if self._problems is None:
            self._problems = self._build_problems(self._problem_specs)
        return self._problems

    @property
    def validation_problems(self):
        """The validation problems: the training problems themselves unless configured."""
        if self._validation_specs is None:
            return self.problems
        if self._validation_problems is None:
            self._validation_problems = self._build_problems(self._validation_specs)
        return self._validation_problems

    # -- the decisions (per strategy) ------------------------------------------------------

    def _next(self):
        """Metadata of the next period to run, or None when training is finished."""
        raise NotImplementedError

    def _previous(self, metadata):
        """Metadata of the checkpoint the period ``metadata`` starts from (None: initial)."""
        raise NotImplementedError

    def _index(self, metadata):
        """The schedule index of a period (period for simple/repeat, stage for curriculum)."""
        raise NotImplementedError

    def _last_index(self):
        """Schedule index of the last training period (used for the evaluation settings)."""
        raise NotImplementedError

    #: Validation of schedule index i uses the schedules at i + this (curriculum: 1, the
    #: next stage's difficulty).
    VALIDATION_LOOKAHEAD = 0

    def train_args_at(self, index):
        """``{warmup, warmup_rate, p_teacher, depth, unroll_len, epochs}`` of training, from
        the schedules (``self.schedules``, indexed by :meth:`_index`)."""
        s = self.schedules
        return {"warmup": s["warmup"](index), "warmup_rate": s["warmup_rate"](index),
                "p_teacher": s["annealing_schedule"](index), "depth": s["depth"](index),
                "unroll_len": s["unroll_len"](index), "epochs": s["epochs"](index)}

    def validation_args_at(self, index):
        """The same keys for validation: the training schedules at ``index`` +
        :attr:`VALIDATION_LOOKAHEAD`, each ``validation_*`` schedule that is set taking the
        place of its key (:data:`VALIDATION_KEYS`), and ``p_teacher`` always 0."""
        index += self.VALIDATION_LOOKAHEAD
        args = self.train_args_at(index)
        for key, source in VALIDATION_KEYS.items():
            if key in self.schedules:
                args[source] = self.schedules[key](index)
        args["p_teacher"] = 0.0
        return args

    def train_args(self, metadata):
        return self.train_args_at(self._index(metadata))

    def validation_args(self, metadata):
        return self.validation_args_at(self._index(metadata))

    def header(self, metadata):
        raise NotImplementedError

    # -- shared metadata helpers -----------------------------------------------------------

    def _check_partial(self, metadata):
        metadata = dict(metadata or {})
        extra = sorted(set(metadata) - set(self.METADATA))
        if extra:
            raise L2OError(f"unknown checkpoint key(s) {', '.join(extra)} for {self.name}; "
                           f"valid: {', '.join(self.METADATA)}")
        if len(self.summary) == 0:
            raise L2OError(f"{self.directory} has no finished period yet (no summary.csv rows); "
                           "train first")
        out = {}
        for key, value in metadata.items():
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not float(value).is_integer()):
                raise L2OError(f"checkpoint '{key}' must be a whole number, got {value!r}")
            out[key] = int(value)
        return out

    def _metadata_of(self, row):
        return {k: int(row[k]) for k in self.METADATA}

    def _repeat_rule(self):
        """The settings of the repeat rule, for the strategies that have them."""
        return {key: getattr(self, key) for key in REPEAT_RULE if key in self.valid_settings()}

    def _acceptance(self):
        """:func:`l2o.results.accepted_attempts` of summary.csv (once per new row)."""
        if self._acceptance_of is not self.summary:
            self._acceptance_mask = accepted_attempts(self.summary, self._repeat_rule())
            self._acceptance_of = self.summary
        return self._acceptance_mask

    def _accepted(self, **match):
        """The accepted attempts (summary.csv rows) among those matching ``match``."""
        return select(self.summary[self._acceptance()], **match)

    def _accepted_attempt(self, **match):
        """Metadata of the best accepted attempt among the rows matching ``match``."""
        what = " ".join(f"{key} {value}" for key, value in match.items())
        return self._metadata_of(require(best_row(self._accepted(**match)),
                                         f"an accepted attempt of {what}"))

    def complete_metadata(self, metadata=None):
        """Fill the missing keys of a checkpoint description from summary.csv.

        A missing stage (curriculum) or period (simple, repeat) is the latest one; the other
        missing keys are those of its best accepted attempt
        (:func:`l2o.results.complete_checkpoint`).
        """
        return complete_checkpoint(self.summary, self._check_partial(metadata),
                                   self._acceptance(), source=self.experiment.summary_path)

    def default_metadata(self):
        """The checkpoint evaluated and packaged by default (the best accepted attempt of
        the latest stage or period); ``__load__`` teachers read the same one as "best"
        (:func:`l2o.results.default_checkpoint`)."""
        return self.complete_metadata({})

    @property
    def finished(self):
        return self._next() is None

    # -- training --------------------------------------------------------------------------

    def _require_trainer(self):
        if self.trainer is None:
            raise L2OError(f"this {self.name} was built for evaluation only (no trainer); "
                           "build it with l2o.strategy.build to train")

    def _hold(self, metadata):
        """Make the trainer hold the checkpoint ``metadata`` (policy and meta-optimizer)."""
        if metadata is None or metadata == self._in_memory:
            return
        prefix = self.experiment.checkpoint_prefix(metadata)
        self.trainer.restore(prefix)
        self._in_memory = dict(metadata)
        print(f"Loaded training state: {prefix}", flush=True)

    def _period(self, metadata, progress=True):
        start = time.time()
        self._hold(self._previous(metadata))
        self._in_memory = None  # training changes the weights
        train_args = self.train_args(metadata)
        validation_args = dict(self.validation_args(metadata), p_teacher=0.0)
        print(self.header(metadata) + ": " + ", ".join(
            f"{k}={_format(train_args[k])}" for k in HYPER), flush=True)

        result = self.trainer.train(self.problems, validation=False, progress=progress,
                                    seed=self._period_seed(), **train_args)
        validation_start = time.time()
        checked = self.trainer.train(self.validation_problems, validation=True,
                                     seed=self.validation_seed, progress=progress,
                                     score_teachers=self.settings["validation_teachers"],
                                     **validation_args)
        validation_duration = time.time() - validation_start
        mean = dict(result.get("mean", {}))
        validation = float(checked["mean"]["meta_loss"])
        teachers = checked["mean"].get("teacher_meta_loss", {})
        skipped = int(mean.pop("skipped", 0) or 0)
        print(f"imitation: {mean.get('imitation_loss', float('nan')):.4f} | "
              f"meta: {mean.get('meta_loss', float('nan')):.4f} | "
              f"validation: {validation:.4f}" + "".join(
                  f" | {name}: {value:.4f}" for name, value in teachers.items())
              + (f" | skipped: {skipped}" if skipped else ""), flush=True)

        prefix = self.experiment.checkpoint_prefix(metadata)
        self.trainer.save(prefix)
        self._in_memory = dict(metadata)
        print(f"Saved training state: {prefix}", flush=True)
        self.experiment.write_log(metadata, result.get("stack") or {})

        row = {"validation": validation, "time": None, "duration": None}
        row.update(metadata)
        # the teachers' own validation meta-loss, beside the learner's: lower is better
        row.update({teacher_column(name): value for name, value in teachers.items()})
        if "step_ms" in checked["mean"]:  # wall time per inner step, beside training's step_ms
            row[VALIDATION_STEP_MS] = float(checked["mean"]["step_ms"])
        row.update({k: train_args[k] for k in HYPER})
        for key in self.stat_columns:
            row[key] = float(mean.pop(key, float("nan")))
        row.update({k: float(v) for k, v in mean.items() if np.ndim(v) == 0})
        row["skipped"] = skipped
        row["time"] = time.time()
        row["duration"] = row["time"] - start
        row[VALIDATION_DURATION] = validation_duration  # its part of duration
        self.summary = self.experiment.append_summary(row)
        self._tensorboard(row, step=len(self.summary) - 1)
        return row

    def _period_seed(self):
        """With a ``seed`` setting, the training randomness of the next period (lifetimes,
        minibatches, scales, loss-weight draws, input noise) is a function of the seed and of
        the number of summary rows alone, so a resumed run draws exactly what an
        uninterrupted one would; without it, fresh entropy."""
        if self.seed is None:
            return None
        return int(np.random.SeedSequence([self.seed, len(self.summary)]).generate_state(1)[0])

    def _tensorboard(self, row, step):
        """Per-period scalars for TensorBoard, under ``log/tensorboard`` (one step per row)."""
        import tensorflow as tf

        if getattr(self, "_writer", None) is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.experiment.log_dir, "tensorboard"))
        with self._writer.as_default():
            for key, value in row.items():
                if key not in ("time",) and isinstance(value, (int, float, np.number)):
                    tf.summary.scalar(key, float(value), step=step)
        self._writer.flush()

    def train(self, progress=True):
        """Run periods until the strategy is finished; resumes from summary.csv.

        Returns the summary as a DataFrame. Calling it on a finished folder only prints so.
        """
        self._require_trainer()
        upcoming = self._next()
        if upcoming is not None and len(self.summary):
            print(f"Resuming {self.name} in {self.directory}: {len(self.summary)} period(s) "
                  f"done, next {self.header(upcoming)}", flush=True)
        with _deterministic_ops(self.seed is not None):
            while upcoming is not None:
                self._period(upcoming, progress=progress)
                upcoming = self._next()
        if len(self.summary):
            self._hold(self.default_metadata())
        print(f"{self.name} in {self.directory} is finished "
              f"({len(self.summary)} period(s) in summary.csv)", flush=True)
        return self.summary

    # -- evaluation ------------------------------------------------------------------------

    def evaluation_settings(self):
        """The warmup of evaluation: ``{"warmup": iterations, "warmup_rate": rate}``.

        It is the validation warmup of the last period, converted from unrolls to SGD
        iterations (warmup x unroll length); the reference used the unroll count as an
        iteration count when packaging.
        """
        args = self.validation_args_at(self._last_index())
        return {"warmup": int(args["warmup"]) * int(args["unroll_len"]),
                "warmup_rate": float(args["warmup_rate"])}

    def evaluation_warmup(self, warmup="none", warmup_rate=None):
        """The warmup an evaluation applies: ``{"warmup": iterations, "warmup_rate": rate}``.

        ``warmup`` is the protocol: ``"none"`` (the default) is what a user of ``l2o.load``
        gets from an optimizer validated without warmup, 0 SGD iterations; ``"config"`` is
        the paper's protocol, the validation warmup of the config
        (:meth:`evaluation_settings`, 100 SGD iterations at 0.05 for the paper's curriculum);
        a whole number is that many iterations. ``warmup_rate`` overrides the config's rate.
        """
        settings = self.evaluation_settings()
        if warmup == "none":
            settings["warmup"] = 0
        elif warmup != "config":
            if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
                raise L2OError(f"evaluation warmup must be 'none', 'config' or a whole number "
                               f">= 0 of SGD iterations, got {warmup!r}")
            settings["warmup"] = int(warmup)
        if warmup_rate is not None:
            settings["warmup_rate"] = _real("warmup_rate", warmup_rate)
        return settings

    def evaluate(self, metadata=None, repeat=10, problem="conv_train", suffix="", dataset=None,
                 progress=True, warmup="none", warmup_rate=None, seed=None, overwrite=False):
        """Evaluate a checkpoint (default: :meth:`default_metadata`) on a named problem.

        Restores the policy only, builds a fresh :class:`l2o.optimizer.LearnedOptimizer` per
        run with the warmup of :meth:`evaluation_warmup` (none for function problems), and
        saves the stacked results and their settings (problem, dataset, epochs, repeat, seed,
        warmup, warmup_rate) to ``eval/<problem>[_suffix][_dbg]/<base>.npz``. A file there
        that holds other settings is never replaced silently: that is an L2OError unless
        ``overwrite``. Returns the path.
        """
        from l2o import evaluate as evaluation
        from l2o.optimizer import LearnedOptimizer
        from l2o.results import check_evaluation_file, evaluation_record, save_evaluation
        from l2o.saving import restore_policy

        if not isinstance(problem, str):
            raise L2OError(f"evaluate needs a problem name, got {problem!r}; valid: "
                           f"{', '.join(sorted(evaluation.EVAL_PROBLEMS))}")
        spec = evaluation.get_eval_problem(problem, dataset=dataset)
        metadata = self.complete_metadata(metadata)
        warmup_settings = self.evaluation_warmup(warmup, warmup_rate)
        if evaluation.is_function_problem(spec):
            warmup_settings["warmup"] = 0
        debug = bool(getattr(self.policy, "debug", False))
        path = self.experiment.eval_path(problem, metadata, suffix=suffix, debug=debug)
        record = evaluation_record(problem, spec, repeat, seed, **warmup_settings)
        check_evaluation_file(path, record, overwrite,
                              hint="pass a suffix to write beside it, or overwrite it explicitly")

        prefix = self.experiment.checkpoint_prefix(metadata)
        restore_policy(self.policy, prefix)
        self._in_memory = None  # the meta-optimizer was not restored with it
        print(f"Loaded policy: {prefix}", flush=True)
        policy = self.policy

        def make_optimizer():
            return LearnedOptimizer(policy, warmup=warmup_settings["warmup"],
                                    warmup_rate=warmup_settings["warmup_rate"],
                                    name="OptimizerEvaluation")

        print(f"Evaluating {base_name(metadata)} on {problem}: {describe_settings(record)}",
              flush=True)
        results = evaluation.run_repeats(make_optimizer, spec, repeat, debug=debug,
                                         progress=progress, seed=seed)
        save_evaluation(path, results, record)
        print(f"Saved evaluation: {path}", flush=True)
        return path

    def __repr__(self):
        return f"{type(self).__name__}({str(self.directory)!r}, {json.dumps(self.name)})"
