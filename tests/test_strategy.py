"""Strategies: the period loop, repeat / stage decisions, resume after a kill, evaluation,
build checks and packaging.

The decision logic runs against a scripted fake trainer (losses chosen by the test, weights
a counter saved to tiny files), so every decision is deterministic and instant. One
integration test trains each strategy for real on the embedded mnist_5k data.
"""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from l2o.config import apply_presets, default_config
from l2o.errors import L2OError
from l2o.results import Experiment, read_evaluation_settings
from l2o.strategy import (CurriculumLearningStrategy, RepeatStrategy, SimpleStrategy, build,
                          build_from_config, get_strategy_class, package)

# The package exports the function build, which hides the module of the same name.
strategy_build = importlib.import_module("l2o.strategy.build")

NAN = float("nan")


class Killed(Exception):
    """Stands for the process dying (SIGKILL) in the middle of a period."""


class FakePolicy:
    debug = False


class FakeTrainer:
    """Scripted meta trainer: ``train`` pops losses, save/restore a weight counter.

    ``state`` is the id of the current weights: training bumps it, ``save`` writes it to
    ``<prefix>.index`` and ``restore`` reads it back, so tests can see which checkpoint a
    period started from. ``train_losses`` / ``val_losses`` are consumed in order (training
    meta loss and validation loss of each period).
    """

    mean_stats = ["meta_loss", "imitation_loss"]

    def __init__(self, train_losses=(), val_losses=(), kill_at=None, teacher_scores=None):
        self.policy = FakePolicy()
        self.train_losses = list(train_losses)
        self.val_losses = list(val_losses)
        self.kill_at = kill_at  # number of training calls after which to "die"
        self.teacher_scores = teacher_scores  # validation's {label: score}, with a step_ms
        self.state = 0
        self.counter = 0
        self.events = []  # ("restore", base) / ("train", start_state, kwargs) / ("save", base)
        self.calls = 0
        self.switches = []  # per training call: (deterministic kernels, arithmetic optimizer)

    def train(self, problems, unroll_len, p_teacher, epochs, depth, validation=False, seed=None,
              warmup=0, warmup_rate=0.01, progress=True, score_teachers=True):
        args = dict(unroll_len=unroll_len, p_teacher=p_teacher, epochs=epochs, depth=depth,
                    validation=validation, seed=seed, warmup=warmup, warmup_rate=warmup_rate)
        if validation:
            loss = self.val_losses.pop(0) if self.val_losses else -1.0
            self.events.append(("validate", self.state, args))
            mean = {"meta_loss": loss, "imitation_loss": 0.0, "skipped": 0}
            if self.teacher_scores:
                mean.update(teacher_meta_loss=dict(self.teacher_scores), step_ms=2.0)
            return {"mean": mean, "stack": {}}
        if self.kill_at is not None and self.calls >= self.kill_at:
            raise Killed()
        self.calls += 1
        self.events.append(("train", self.state, args))
        self.switches.append(_determinism_switches())
        self.counter += 1
        self.state = self.counter  # new, unique weights
        loss = self.train_losses.pop(0) if self.train_losses else -1.0
        rows = len(problems)
        return {"mean": {"meta_loss": loss, "imitation_loss": 0.5, "skipped": 1},
                "stack": {"meta_loss": np.full((rows, epochs * depth), loss, np.float32)}}

    def save(self, prefix):
        Path(prefix).parent.mkdir(parents=True, exist_ok=True)
        Path(prefix + ".index").write_text(json.dumps(self.state))
        self.events.append(("save", Path(prefix).name))

    def restore(self, prefix):
        self.state = json.loads(Path(prefix + ".index").read_text())
        self.events.append(("restore", Path(prefix).name))

    def of(self, kind):
        return [e[1:] if len(e) > 2 else e[1] for e in self.events if e[0] == kind]


def _determinism_switches():
    """(TensorFlow's deterministic kernels on, Grappler's arithmetic optimizer on)."""
    import tensorflow as tf
    from tensorflow.python.framework import config

    arithmetic = tf.config.optimizer.get_experimental_options().get("arithmetic_optimization")
    return config.is_op_determinism_enabled(), arithmetic is None or arithmetic


PROBLEMS = ["problem-a"]  # anything that is not a dict passes through unbuilt


def rows(strategy, *columns):
    columns = columns or strategy.METADATA
    return [tuple(int(v) for v in r) for r in strategy.summary[list(columns)].to_numpy()]


def simple(tmp_path, trainer, **settings):
    base = dict(num_periods=3, unroll_len=4, depth={"type": "list", "values": [1, 2, 3]},
                epochs=1, annealing_schedule=0.0)
    return SimpleStrategy(trainer, PROBLEMS, directory=tmp_path / "exp", **dict(base, **settings))


def repeat(tmp_path, trainer, folder="exp", **settings):
    base = dict(num_periods=3, unroll_len=4, depth=1, epochs=1, annealing_schedule=0.0,
                max_repeat=2, repeat_threshold=0.8)
    return RepeatStrategy(trainer, PROBLEMS, directory=tmp_path / folder, **dict(base, **settings))


def curriculum(tmp_path, trainer, folder="exp", **settings):
    base = dict(num_stages=2, num_periods=1, num_chances=0, unroll_len=4, depth=1, epochs=1,
                annealing_schedule=0.0, max_repeat=2, repeat_threshold=0.5)
    return CurriculumLearningStrategy(trainer, PROBLEMS, directory=tmp_path / folder,
                                      **dict(base, **settings))


# -- simple --------------------------------------------------------------------------------


def test_simple_trains_every_period_and_writes_columns_in_order(tmp_path, capsys):
    trainer = FakeTrainer(train_losses=[-1.0, -2.0, -3.0], val_losses=[-1.5, -2.5, -3.5])
    strategy = simple(tmp_path, trainer, validation_depth=None, validation_unroll=7)
    strategy.train(progress=False)

    assert rows(strategy) == [(0,), (1,), (2,)]
    header = (tmp_path / "exp" / "summary.csv").read_text().splitlines()[0]
    assert header.split(",") == [
        "validation", "time", "duration", "period", "warmup", "warmup_rate", "p_teacher",
        "depth", "unroll_len", "epochs", "meta_loss", "imitation_loss", "skipped",
        "validation_duration"]
    assert list(strategy.summary["validation"]) == [-1.5, -2.5, -3.5]
    assert list(strategy.summary["skipped"]) == [1, 1, 1]
    for p in range(3):
        assert (tmp_path / "exp" / "checkpoint" / f"period_{p}.index").exists()
        log = np.load(tmp_path / "exp" / "log" / f"period_{p}.npz")
        assert log["meta_loss"].shape == (1, p + 1)
    # Validation: fixed seed, no imitation, and depth None -> the training depth of that period
    validations = trainer.of("validate")
    assert [v[1]["depth"] for v in validations] == [1, 2, 3]
    assert {(v[1]["unroll_len"], v[1]["p_teacher"], v[1]["seed"]) for v in validations} == {
        (7, 0.0, 12345)}
    out = capsys.readouterr().out
    assert "Period 1: warmup=0, warmup_rate=0.01, p_teacher=0, depth=2, unroll_len=4, epochs=1" \
        in out
    assert "imitation: 0.5000 | meta: -2.0000 | validation: -2.5000" in out
    assert "Saved training state: " in out
    # Continuing periods never reload; the default checkpoint is the latest period.
    assert trainer.of("restore") == []
    assert strategy.default_metadata() == {"period": 2}

    again = simple(tmp_path, FakeTrainer(), validation_depth=None, validation_unroll=7)
    again.train(progress=False)
    assert "is finished" in capsys.readouterr().out
    assert again.trainer.of("train") == []


def test_a_seeded_run_trains_with_repeatable_arithmetic_and_switches_it_back(tmp_path):
    """While a seeded run trains: deterministic kernels on and the arithmetic optimizer off
    (it made a 100-step meta-gradient differ in its last bits between calls; measured by
    benchmarks/determinism.py, too slow for a test); both as they were afterwards, and
    untouched by an unseeded run."""
    before = _determinism_switches()
    assert before == (False, True)
    seeded = FakeTrainer()
    simple(tmp_path, seeded, num_periods=2, seed=7).train(progress=False)
    assert seeded.switches == [(True, False)] * 2
    assert _determinism_switches() == before
    unseeded = FakeTrainer()
    simple(tmp_path / "unseeded", unseeded, num_periods=2).train(progress=False)
    assert unseeded.switches == [before] * 2


# -- repeat --------------------------------------------------------------------------------


def test_repeat_reverts_exploded_periods_up_to_max_repeat(tmp_path, capsys):
    # threshold 0.8: after V_prev = -2.0 a period explodes above -0.4.
    val = [-2.0,            # (0, 0): period 0 never repeats
           -0.1, -1.0,      # (1, 0) explodes, (1, 1) accepted
           0.1, NAN, 0.0]   # (2, 0..2): all explode; r = max_repeat = 2 is accepted anyway
    trainer = FakeTrainer(val_losses=val)
    strategy = repeat(tmp_path, trainer)
    strategy.train(progress=False)

    assert rows(strategy) == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
    # Every repeat restarts from the best attempt of the period before.
    assert trainer.of("restore") == ["period_0.0", "period_1.1", "period_1.1"]
    starts = [e[0] for e in trainer.of("train")]
    assert starts[1] == starts[2]  # (1, 0) and (1, 1) start from the same weights
    assert starts[3] == starts[4] == starts[5]
    out = capsys.readouterr().out
    assert "Period 1.1: warmup=0" in out and "Loaded training state: " in out
    # Best repeat = lowest finite validation, everywhere.
    assert strategy.default_metadata() == {"period": 2, "repeat": 2}
    assert strategy.complete_metadata({"period": 1}) == {"period": 1, "repeat": 1}
    with pytest.raises(L2OError, match="available periods: 0, 1, 2"):
        strategy.complete_metadata({"period": 7})


def test_forced_acceptance_continues_from_the_best_attempt(tmp_path):
    val = [-2.0, 0.3, 0.2, 0.5, -3.0]  # (1, 0..2) all explode; (1, 1) validated best
    trainer = FakeTrainer(val_losses=val)
    strategy = repeat(tmp_path, trainer)
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert trainer.of("restore")[-1] == "period_1.1"
    assert strategy.default_metadata() == {"period": 2, "repeat": 0}


def test_unlimited_repeats_when_max_repeat_is_zero(tmp_path):
    trainer = FakeTrainer(val_losses=[-2.0, 0.0, 0.0, 0.0, -2.0, -2.0])
    strategy = repeat(tmp_path, trainer, max_repeat=0)
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]


# -- resume --------------------------------------------------------------------------------


def test_repeat_resume_after_kill_matches_an_uninterrupted_run(tmp_path, capsys):
    val = [-2.0, -0.1, -1.0, -1.2, 0.5, -1.1]
    whole = repeat(tmp_path, FakeTrainer(val_losses=list(val)), folder="whole",
                   num_periods=4)
    whole.train(progress=False)
    expected = rows(whole)
    assert expected == [(0, 0), (1, 0), (1, 1), (2, 0), (3, 0), (3, 1)]

    # Die while training (3, 0): the four periods before it are committed.
    first = FakeTrainer(val_losses=list(val), kill_at=4)
    with pytest.raises(Killed):
        repeat(tmp_path, first, folder="cut", num_periods=4).train(progress=False)
    resumed_trainer = FakeTrainer(val_losses=val[4:])
    resumed = repeat(tmp_path, resumed_trainer, folder="cut", num_periods=4)
    assert rows(resumed) == expected[:4]
    assert resumed._next() == {"period": 3, "repeat": 0}
    capsys.readouterr()
    resumed.train(progress=False)
    assert "Resuming RepeatStrategy" in capsys.readouterr().out
    assert rows(resumed) == expected
    # It reloaded the accepted period 2 before (3, 0), then again for the repeat (3, 1).
    assert resumed_trainer.of("restore")[:2] == ["period_2.0", "period_2.0"]
    assert resumed_trainer.of("train")[0][0] == json.loads(
        (tmp_path / "cut" / "checkpoint" / "period_2.0.index").read_text())


def test_resume_of_a_pending_repeat_reloads_the_previous_period(tmp_path):
    val = [-2.0, 0.0]  # (1, 0) explodes, then the process dies
    with pytest.raises(Killed):
        repeat(tmp_path, FakeTrainer(val_losses=val, kill_at=2)).train(progress=False)
    trainer = FakeTrainer(val_losses=[-2.0, -2.0])
    strategy = repeat(tmp_path, trainer)
    assert strategy._next() == {"period": 1, "repeat": 1}
    # The default checkpoint is the last accepted attempt, not the rejected (1, 0).
    assert strategy.default_metadata() == {"period": 0, "repeat": 0}
    strategy.train(progress=False)
    assert trainer.of("restore")[0] == "period_0.0"
    assert rows(strategy) == [(0, 0), (1, 0), (1, 1), (2, 0)]


def test_checkpoint_without_summary_row_is_redone(tmp_path, monkeypatch):
    trainer = FakeTrainer(val_losses=[-1.0, -2.0])
    strategy = simple(tmp_path, trainer)
    real_append = Experiment.append_summary
    calls = {"n": 0}

    def dying_append(self, row, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # killed after period 1's checkpoint and log, before its row
            raise Killed()
        return real_append(self, row, *args, **kwargs)

    monkeypatch.setattr(Experiment, "append_summary", dying_append)
    with pytest.raises(Killed):
        strategy.train(progress=False)
    folder = tmp_path / "exp"
    assert (folder / "checkpoint" / "period_1.index").exists()
    assert len(Experiment(folder).read_summary()) == 1

    resumed_trainer = FakeTrainer(val_losses=[-2.5, -3.0])
    resumed = simple(tmp_path, resumed_trainer)
    assert resumed._next() == {"period": 1}
    resumed.train(progress=False)
    assert rows(resumed) == [(0,), (1,), (2,)]
    assert resumed_trainer.of("restore")[0] == "period_0"
    assert resumed_trainer.of("save") == ["period_1", "period_2"]
    assert list(resumed.summary["validation"]) == [-1.0, -2.5, -3.0]


# -- curriculum ----------------------------------------------------------------------------


def test_curriculum_validates_with_the_next_stage_settings(tmp_path):
    trainer = FakeTrainer(val_losses=[-1.0, -2.0, -3.0, -4.0])
    strategy = curriculum(
        tmp_path, trainer, unroll_len={"type": "list", "values": [4, 6, 8]},
        depth={"type": "list", "values": [1, 2, 5]}, epochs={"type": "list", "values": [3, 4, 5]},
        warmup={"type": "list", "values": [0, 1, 2]},
        warmup_rate={"type": "list", "values": [0.1, 0.2, 0.3]},
        annealing_schedule={"type": "list", "values": [0.2, 0.1]})
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    trained = [e[1] for e in trainer.of("train")]
    checked = [e[1] for e in trainer.of("validate")]
    keys = ("unroll_len", "depth", "epochs", "warmup", "warmup_rate", "p_teacher")
    assert [tuple(t[k] for k in keys) for t in trained[1:3]] == [
        (4, 1, 3, 0, 0.1, 0.2), (6, 2, 4, 1, 0.2, 0.1)]
    assert [tuple(c[k] for k in keys) for c in checked[1:3]] == [
        (6, 2, 4, 1, 0.2, 0.0), (8, 5, 5, 2, 0.3, 0.0)]
    # Evaluation: warmup(num_stages) unrolls of unroll_len(num_stages) iterations.
    assert strategy.evaluation_settings() == {"warmup": 2 * 8, "warmup_rate": 0.3}

    # validation_epochs, when given, is used (the reference ignored it).
    other = FakeTrainer()
    curriculum(tmp_path, other, folder="other", validation_epochs=9,
               epochs={"type": "list", "values": [3, 4, 5]}).train(progress=False)
    assert {e[1]["epochs"] for e in other.of("validate")} == {9}
    assert {e[1]["epochs"] for e in other.of("train")} == {3, 4}


def test_curriculum_first_period_of_a_stage_compares_training_loss_with_stage_best(tmp_path):
    # Stage 0: validation -1, -2 (best -2 at period 1). threshold 0.5 -> bound -1.0.
    train = [-5.0, -5.0,
             -0.5,          # (1, 0, 0): training meta loss -0.5 > -1.0 -> repeat
             -1.5, -5.0]    # (1, 0, 1): -1.5 passes although its validation is high
    val = [-1.0, -2.0,
           -9.0,            # a good validation does not save (1, 0, 0)
           -0.1,
           -3.0]            # (1, 1, 0) is compared with the accepted (1, 0, 1): bound -0.05
    trainer = FakeTrainer(train_losses=train, val_losses=val, kill_at=len(train))
    strategy = curriculum(tmp_path, trainer, max_repeat=0)
    strategy.train(progress=False)
    # Against the rejected (1, 0, 0) (bound -4.5) -3.0 would explode and repeat.
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0)]
    # (1, 0, 0) continues from stage 0's best, which it holds; its repeat reloads it.
    # (1, 1, 0) starts from the accepted attempt of (1, 0), (1, 0, 1), which the trainer
    # still holds, not from the rejected (1, 0, 0) that has the lower validation.
    assert trainer.of("restore") == ["stage_0.1.0"]
    starts = [e[0] for e in trainer.of("train")]
    assert starts[2] == starts[3]
    # The rejected (1, 0, 0) validated best of stage 1, but the stage's best, which stays
    # loaded at the end and is packaged, is its best accepted attempt.
    assert strategy.default_metadata() == {"stage": 1, "period": 1, "repeat": 0}
    assert strategy.complete_metadata({"stage": 1, "period": 0}) == {
        "stage": 1, "period": 0, "repeat": 1}
    # A rejected attempt can still be named explicitly.
    assert strategy.complete_metadata({"stage": 1, "period": 0, "repeat": 0})["repeat"] == 0


def test_curriculum_advances_and_counts_chances_from_accepted_attempts(tmp_path):
    # num_chances=1: a stage goes on while its best accepted period is the latest one.
    train = [-5.0, -5.0,
             -0.5,          # (1, 0, 0) rejected (bound -1.0) ...
             -1.5, -5.0, -5.0,
             -2.0, -5.0, -5.0]  # (2, 0, 0): -2.0 against stage 1's best accepted, -1.2
    val = [-2.0, -1.9,      # stage 0's best is period 0: no chance left after period 1
           -9.0,            # ... although it validates best of stage 1
           -1.0, -1.2, -1.1,  # (1, 1, 0) is stage 1's best: one more chance, then advance
           -3.0, -3.5, -3.4]
    trainer = FakeTrainer(train_losses=train, val_losses=val, kill_at=len(train))
    strategy = curriculum(tmp_path, trainer, num_stages=3, num_chances=1, max_repeat=0)
    strategy.train(progress=False)
    # Had the rejected (1, 0, 0) counted, stage 1 would stop after period 1 (no chance
    # left since "its best"), stage 2 would start from it, and (2, 0, 0) would explode
    # against its -9.0.
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0),
                              (1, 2, 0), (2, 0, 0), (2, 1, 0), (2, 2, 0)]
    assert trainer.of("restore") == ["stage_0.0.0", "stage_0.0.0", "stage_1.1.0",
                                     "stage_2.1.0"]
    assert strategy.default_metadata() == {"stage": 2, "period": 1, "repeat": 0}


def test_curriculum_later_periods_compare_validation_with_the_accepted_repeat(tmp_path):
    val = [-2.0, -0.5, -2.1, -3.0]  # (0, 1, 0) explodes (bound -1.0), (0, 1, 1) passes
    trainer = FakeTrainer(val_losses=val)
    strategy = curriculum(tmp_path, trainer, num_stages=1, num_periods=2)
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 2, 0)]
    assert trainer.of("restore") == ["stage_0.0.0"]  # (0, 2, 0) continues in memory


def test_curriculum_runs_min_periods_then_chances_and_advances_from_the_best(tmp_path):
    # num_periods=2 -> periods 0..2 at least; num_chances=2: stop 2 periods after the best.
    val = [-1.0, -2.0, -3.0, -2.9, -2.8,   # stage 0: best at p=2, p=3 and p=4 do not improve
           -4.0, -4.1, -4.2, -4.3, -4.4]   # stage 1: keeps improving until ...
    trainer = FakeTrainer(val_losses=val)
    strategy = curriculum(tmp_path, trainer, num_periods=2, num_chances=2, repeat_threshold=10.0)
    strategy.train(progress=False)
    # Stage 0: best at p=2, then two periods without improvement.
    # Stage 1: improves up to p=4 (scripted), then -1.0 twice: stops at p=6.
    assert rows(strategy) == [(0, p, 0) for p in range(5)] + [(1, p, 0) for p in range(7)]
    # Advancing loads the stage's best; at the end the last stage's best stays loaded.
    assert trainer.of("restore") == ["stage_0.2.0", "stage_1.4.0"]
    assert strategy.default_metadata() == {"stage": 1, "period": 4, "repeat": 0}


def test_curriculum_accepts_zero_chances(tmp_path):
    trainer = FakeTrainer(val_losses=[-1.0, -2.0, -1.5, -3.0, -3.1, -3.2])
    strategy = curriculum(tmp_path, trainer, num_periods=2, num_chances=0, repeat_threshold=10.0)
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (0, 2, 0), (1, 0, 0), (1, 1, 0), (1, 2, 0)]
    assert trainer.of("restore")[0] == "stage_0.1.0"


def test_curriculum_resume_never_extends_a_finished_stage(tmp_path, capsys):
    # Stage 0 (num_periods=1, num_chances=0) ends after (0, 1, 0); die as stage 1 starts.
    val = [-1.0, -2.0, -3.0, -4.0]
    with pytest.raises(Killed):
        curriculum(tmp_path, FakeTrainer(val_losses=val, kill_at=2)).train(progress=False)
    trainer = FakeTrainer(val_losses=val[2:])
    strategy = curriculum(tmp_path, trainer)
    assert strategy._next() == {"stage": 1, "period": 0, "repeat": 0}
    strategy.train(progress=False)
    assert rows(strategy) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    assert trainer.of("restore")[0] == "stage_0.1.0"

    # A finished experiment stays finished.
    capsys.readouterr()
    done = FakeTrainer()
    curriculum(tmp_path, done).train(progress=False)
    assert done.of("train") == []
    assert "is finished" in capsys.readouterr().out


def test_curriculum_resumed_repeat_of_period_zero_reloads_previous_stage(tmp_path):
    train = [-5.0, -5.0, 0.0]  # (1, 0, 0) explodes against stage 0's best (-2.0)
    val = [-1.0, -2.0, -2.5]
    with pytest.raises(Killed):
        curriculum(tmp_path, FakeTrainer(train, val, kill_at=3)).train(progress=False)
    trainer = FakeTrainer([-5.0, -5.0], [-3.0, -4.0])
    strategy = curriculum(tmp_path, trainer)
    assert strategy._next() == {"stage": 1, "period": 0, "repeat": 1}
    # Stopped here, the folder packages stage 0's best: stage 1 has no accepted attempt
    # yet, and its rejected (1, 0, 0) is never the default, though it validated lower.
    assert strategy.default_metadata() == {"stage": 0, "period": 1, "repeat": 0}
    with pytest.raises(L2OError, match="stage 1 in .* has no accepted attempt yet"):
        strategy.complete_metadata({"stage": 1})
    strategy.train(progress=False)
    assert trainer.of("restore")[0] == "stage_0.1.0"
    assert rows(strategy)[-2:] == [(1, 0, 1), (1, 1, 0)]


# -- record.json ---------------------------------------------------------------------------


def test_training_record_takes_teachers_from_the_teacher_columns_only(tmp_path):
    trainer = FakeTrainer(val_losses=[-1.0, -2.0],
                          teacher_scores={"adam": -1.5, "rmsprop": -1.25})
    strategy = repeat(tmp_path, trainer, num_periods=2)
    strategy.train(progress=False)
    assert {"validation_adam", "validation_rmsprop", "validation_step_ms",
            "validation_duration"} <= set(strategy.summary.columns)
    record = strategy_build.training_record(strategy, strategy.default_metadata())
    assert record["checkpoint"] == "period_1.0"
    assert record["final_validation"] == {"learner": -2.0,
                                          "teachers": {"adam": -1.5, "rmsprop": -1.25}}


# -- settings and evaluation ---------------------------------------------------------------


def test_unknown_settings_and_strategies_name_the_valid_ones(tmp_path):
    with pytest.raises(L2OError, match=r"unknown RepeatStrategy setting 'num_stages'.*max_repeat"):
        repeat(tmp_path, FakeTrainer(), num_stages=3)
    with pytest.raises(L2OError, match="valid: CurriculumLearningStrategy, RepeatStrategy"):
        get_strategy_class("Repeat")
    with pytest.raises(L2OError, match="depth"):
        simple(tmp_path, FakeTrainer(), depth={"type": "list", "values": [1, 0]})
    assert not (tmp_path / "exp").exists()


def test_evaluation_warmup_is_in_iterations(tmp_path, monkeypatch):
    trainer = FakeTrainer(val_losses=[-2.0, -3.0])
    strategy = repeat(tmp_path, trainer, num_periods=2, validation_warmup=2,
                      validation_unroll=7, validation_warmup_rate=0.05)
    assert strategy.evaluation_settings() == {"warmup": 14, "warmup_rate": 0.05}
    strategy.train(progress=False)

    from l2o.policies import build_policy

    policy = build_policy("AdamOptimizer", {"learning_rate": 0.01})
    strategy.policy = policy
    restored, made = [], []
    monkeypatch.setattr("l2o.saving.restore_policy", lambda p, prefix: restored.append(prefix))

    def fake_run_repeats(make_optimizer, problem, repeat, debug=False, progress=True, **kw):
        made.extend(make_optimizer() for _ in range(repeat))
        return {"loss": np.zeros((repeat, 3), np.float32)}

    monkeypatch.setattr("l2o.evaluate.run_repeats", fake_run_repeats)
    path = strategy.evaluate(repeat=2, problem="conv_train", suffix="x", progress=False,
                             warmup="config")
    assert path == tmp_path / "exp" / "eval" / "conv_train_x" / "period_1.0.npz"
    assert np.load(path)["loss"].shape == (2, 3)
    assert restored == [str(tmp_path / "exp" / "checkpoint" / "period_1.0")]
    # the paper's protocol: the config's validation warmup, 2 unrolls of 7 steps at 0.05
    assert [(o.warmup, o.warmup_rate) for o in made] == [(14, 0.05), (14, 0.05)]
    assert made[0] is not made[1] and made[0].policy is policy
    settings = read_evaluation_settings(path)
    assert (settings["warmup"], settings["repeat"], settings["problem"]) == (14, 2, "conv_train")
    # The default protocol is what l2o.load gives: no warmup. It never silently replaces a
    # file that holds other settings.
    with pytest.raises(L2OError, match="other settings"):
        strategy.evaluate(repeat=2, problem="conv_train", suffix="x", progress=False)
    assert read_evaluation_settings(path)["warmup"] == 14
    path = strategy.evaluate(repeat=2, problem="conv_train", suffix="x", progress=False,
                             overwrite=True)
    assert made[-1].warmup == 0 and read_evaluation_settings(path)["warmup"] == 0
    # Function problems get no warmup.
    strategy.evaluate(repeat=1, problem="quadratic10", progress=False)
    assert made[-1].warmup == 0


# -- build ---------------------------------------------------------------------------------


class BuildTrainer(FakeTrainer):
    def __init__(self, policy, optimizer=None, teachers=(), mean_stats=("meta_loss",), **kw):
        super().__init__()
        self.policy = policy
        self.teachers = teachers
        self.mean_stats = list(mean_stats)


def fake_train_api(monkeypatch):
    from l2o.train import build_teacher
    monkeypatch.setattr(strategy_build, "_train_api", lambda: (BuildTrainer, build_teacher))


def tiny_config(strategy="repeat"):
    return apply_presets(default_config(strategy, "rnnprop"), "debug_tiny,offline")


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_build_checks_before_touching_the_folder(tmp_path, monkeypatch):
    fake_train_api(monkeypatch)
    folder = tmp_path / "exp"
    config = tiny_config()
    for bad in ([(["strategy", "max_repeats"], 1)],          # unknown override path
                [(["policy_constructor"], "NoSuchPolicy")],
                [(["strategy", "depth"], 0)],
                [(["problems", 0, "target"], "nope")],
                [(["training", "teachers", "*"], {"class_name": "Nadam", "config": {}})]):
        with pytest.raises(L2OError):
            build(config, bad, directory=str(folder), info=False)
        assert not folder.exists()

    strategy = build(config, directory=str(folder), info=False)
    assert isinstance(strategy, RepeatStrategy)
    assert strategy.trainer.policy is strategy.policy
    strategy.train(progress=False)
    before = snapshot(folder)
    with pytest.raises(L2OError, match="strategy/num_periods") as err:
        build(config, [(["strategy", "num_periods"], 3), (["strategy", "unroll_len"], 6)],
              directory=str(folder), info=False)
    assert "strategy/unroll_len" in str(err.value)
    assert snapshot(folder) == before

    # Exempt overrides are applied but neither checked nor saved.
    again = build(config, exempt_overrides=[(["strategy", "num_periods"], 3)],
                  directory=str(folder), info=False)
    assert again.num_periods == 3
    assert snapshot(folder) == before


def test_build_from_config_for_evaluation_loads_no_training_data(tmp_path, monkeypatch):
    fake_train_api(monkeypatch)
    folder = tmp_path / "exp"
    build(tiny_config("curriculum"), directory=str(folder), info=False).train(progress=False)
    with pytest.raises(L2OError, match="does not exist"):
        build_from_config(str(tmp_path / "missing"), info=False)

    config = json.loads((folder / "config.json").read_text())
    config["problems"][0]["kwargs"]["dataset"] = "no_such_dataset_anywhere"
    config["training"]["teachers"] = [{"class_name": "__load__", "directory": "/nowhere",
                                       "checkpoint": "x"}]
    (folder / "config.json").write_text(json.dumps(config))
    shell = build_from_config(str(folder), info=False, for_evaluation=True)
    assert shell.trainer is None and shell._problems is None
    assert shell.default_metadata()["stage"] == 1
    with pytest.raises(L2OError, match="evaluation only"):
        shell.train()


# -- the real thing ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["simple", "repeat", "curriculum"])
def test_real_training_of_each_strategy(tmp_path, name):
    import l2o

    folder = tmp_path / name
    strategy = build(tiny_config(name), directory=str(folder), info=False)
    summary = strategy.train(progress=False)
    expected = {"simple": 2, "repeat": 2, "curriculum": 6}[name]
    assert len(summary) >= expected
    assert np.isfinite(summary["validation"]).all()
    default = strategy.default_metadata()
    assert Experiment(folder).has_checkpoint(default)

    # Resume of a finished run: nothing more is trained.
    again = build_from_config(str(folder), info=False)
    assert len(again.train(progress=False)) == len(summary)

    if name == "curriculum":
        dst = tmp_path / "packaged"
        package(str(folder), str(dst))
        packaged = json.loads((dst / "config.json").read_text())
        assert packaged["metadata"] == default and packaged["source"] == str(folder)
        assert packaged["settings"] == strategy.evaluation_settings()
        optimizer = l2o.load(str(dst))
        assert optimizer.warmup == strategy.evaluation_settings()["warmup"]
        with pytest.raises(L2OError, match="already exists"):
            package(str(folder), str(dst))
        shell = build_from_config(str(folder), info=False, for_evaluation=True)
        path = shell.evaluate(repeat=1, problem="quadratic10", progress=False)
        assert np.load(path)["loss"].shape[0] == 1
