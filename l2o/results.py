"""The experiment folder: its paths, atomic file writes, config.json, summary.csv and logs.

Layout of ``<directory>``::

    config.json                       resolved config, written once
    summary.csv                       one row per finished period (repeats included)
    checkpoint/<base>.index|.data-*   tf.train.Checkpoint files
    log/<base>.npz                    per-period stacked training statistics
    eval/<problem>[_suffix][_dbg]/<base>.npz

Every file is written to a temporary file in the same folder, flushed to disk and then
renamed over the target, so a crash leaves either the old file or the new one, never half
of one.
"""

import contextlib
import io
import json
import numbers
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from l2o.config.check import diff_configs
from l2o.errors import L2OError

# -- atomic writes -----------------------------------------------------------------------


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, write):
    """Call ``write(binary_file)`` on a temp file next to ``path``, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path, data):
    """Write bytes to ``path`` atomically."""
    return _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text, encoding="utf-8"):
    """Write text to ``path`` atomically."""
    return _atomic_write(path, lambda f: f.write(text.encode(encoding)))


def atomic_write_json(path, obj, indent=4):
    """Write ``obj`` as JSON to ``path`` atomically (serialised before the file is opened)."""
    text = json.dumps(obj, indent=indent) + "\n"
    return atomic_write_text(path, text)


def atomic_savez(path, **arrays):
    """``np.savez`` to ``path`` atomically; the name is used as given (no ``.npz`` added)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


#: Key of the evaluation settings inside an evaluation ``.npz`` (a JSON string).
SETTINGS_KEY = "settings"


def save_evaluation(path, results, settings):
    """Write an evaluation record: the stacked result arrays plus ``settings`` as JSON.

    ``settings`` says how the numbers were made (problem, dataset, epochs, repeat, seed,
    warmup, warmup_rate, ...), so a table can state the protocol of every figure.
    """
    arrays = {k: np.asarray(v) for k, v in results.items()}
    arrays[SETTINGS_KEY] = np.asarray(json.dumps(settings, sort_keys=True))
    return atomic_savez(path, **arrays)


def evaluation_record(problem, spec, repeat, seed, warmup=0, warmup_rate=0.0, **extra):
    """The settings stored with an evaluation: what makes two evaluations comparable.

    ``spec`` is the evaluation problem dict (its dataset, epochs and batch size, or the
    steps of a function problem are recorded); ``extra`` adds what identifies the optimizer
    (``optimizer=``, ``learning_rate=``, ``source=``, ...).
    """
    record = {"problem": str(problem), "repeat": int(repeat),
              "seed": None if seed is None else int(seed),
              "warmup": int(warmup), "warmup_rate": float(warmup_rate)}
    if "steps" in spec:
        record["steps"] = int(spec["steps"])
    else:
        record.update(dataset=str(spec["dataset"]), epochs=int(spec["epochs"]),
                      batch_size=int(spec["batch_size"]))
    record.update(extra)
    return record


def describe_settings(settings):
    """One line such as ``dataset=mnist_5k, epochs=10, repeat=5, seed=0, warmup=0``."""
    if not settings:
        return "settings not recorded"
    keys = ("dataset", "epochs", "steps", "batch_size", "repeat", "seed", "warmup",
            "warmup_rate")
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)


def read_evaluation_settings(path):
    """The settings recorded in an evaluation ``.npz`` (None for files without them)."""
    with np.load(path, allow_pickle=False) as data:
        if SETTINGS_KEY not in data.files:
            return None
        return json.loads(str(data[SETTINGS_KEY]))


def check_evaluation_file(path, settings, overwrite=False, hint=None):
    """Whether ``path`` already holds an evaluation recorded with exactly ``settings``.

    An evaluation file is never replaced silently: one that holds other settings (or none)
    is an L2OError saying which settings differ, with ``hint`` on what to do, unless
    ``overwrite`` (then False: the caller replaces it). False when there is no file.
    """
    hint = hint or "write it elsewhere, or overwrite it explicitly"
    path = Path(path)
    if not path.exists():
        return False
    held = read_evaluation_settings(path)
    if held == settings:
        return True
    if overwrite:
        return False
    if held is None:
        differences = "it records none"
    else:
        keys = [k for k in sorted(set(held) | set(settings)) if held.get(k) != settings.get(k)]
        differences = ", ".join(f"{k}={held.get(k)} there, {settings.get(k)} now" for k in keys)
    raise L2OError(f"{path} holds an evaluation with other settings ({differences}); {hint}")


# -- a worker's copy of the folder ------------------------------------------------------

@contextlib.contextmanager
def private_copy(directory):
    """A temporary copy of the experiment folder ``directory``, removed on exit.

    It holds what resuming needs (config.json, summary.csv, checkpoint/) when they exist.
    A non-chief worker of a multi-worker run trains in it: it resumes from exactly what
    the chief resumes from, and nothing it writes reaches the shared folder.
    """
    source = Experiment(directory)
    copy = Experiment(tempfile.mkdtemp(prefix="l2o-worker-"))
    try:
        for path in ("config_path", "summary_path"):
            if getattr(source, path).is_file():
                shutil.copy2(getattr(source, path), getattr(copy, path))
        if source.checkpoint_dir.is_dir():
            shutil.copytree(source.checkpoint_dir, copy.checkpoint_dir)
        yield str(copy.directory)
    finally:
        shutil.rmtree(copy.directory, ignore_errors=True)


# -- names -------------------------------------------------------------------------------

def _general(value):
    """A number in general format: 3.0 -> '3', 0.5 -> '0.5'."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise L2OError(f"checkpoint metadata values must be numbers, got {value!r}")
    if float(value).is_integer():
        return str(int(value))
    return format(value, "g")


def base_name(metadata):
    """The file base name of a checkpoint: period_<p>, period_<p>.<r> or stage_<s>.<p>.<r>."""
    keys = set(metadata)
    values = {k: _general(v) for k, v in metadata.items()}
    if keys == {"period"}:
        return "period_{period}".format(**values)
    if keys == {"period", "repeat"}:
        return "period_{period}.{repeat}".format(**values)
    if keys == {"stage", "period", "repeat"}:
        return "stage_{stage}.{period}.{repeat}".format(**values)
    raise L2OError(
        f"checkpoint metadata {dict(metadata)!r} is incomplete; valid key sets: "
        "{period}, {period, repeat}, {stage, period, repeat}")


# -- summary.csv -------------------------------------------------------------------------

LEADING_COLUMNS = {"validation": "float64", "time": "float64", "duration": "float64"}
HYPER_COLUMNS = {
    "warmup": "int64",
    "warmup_rate": "float64",
    "p_teacher": "float64",
    "depth": "int64",
    "unroll_len": "int64",
    "epochs": "int64",
}


def summary_dtypes(metadata_columns=(), stat_columns=()):
    """Column name -> dtype for summary.csv, in file order."""
    dtypes = dict(LEADING_COLUMNS)
    dtypes.update({c: "int64" for c in metadata_columns})
    dtypes.update(HYPER_COLUMNS)
    dtypes.update({c: "float64" for c in stat_columns})
    return dtypes


def _typed(frame, dtypes):
    for column, dtype in dtypes.items():
        if column in frame.columns:
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):
                frame[column] = frame[column].astype("float64")
    ordered = [c for c in dtypes if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in dtypes]]


# -- the folder --------------------------------------------------------------------------


class Experiment:
    """Paths and file I/O of one experiment folder.

    ``metadata_columns`` (e.g. ``["stage", "period", "repeat"]``) and ``stat_columns`` (the
    ``mean_stats`` names) fix the summary.csv columns; the strategy passes them in.
    """

    def __init__(self, directory, metadata_columns=(), stat_columns=()):
        self.directory = Path(directory)
        self.metadata_columns = list(metadata_columns)
        self.stat_columns = list(stat_columns)

    def __repr__(self):
        return f"Experiment({str(self.directory)!r})"

    @property
    def config_path(self):
        return self.directory / "config.json"

    @property
    def summary_path(self):
        return self.directory / "summary.csv"

    @property
    def checkpoint_dir(self):
        return self.directory / "checkpoint"

    @property
    def log_dir(self):
        return self.directory / "log"

    @property
    def eval_dir(self):
        return self.directory / "eval"

    def checkpoint_prefix(self, metadata):
        """The prefix given to ``tf.train.Checkpoint.write`` / ``read`` (a string)."""
        return str(self.checkpoint_dir / base_name(metadata))

    def has_checkpoint(self, metadata):
        """Whether a complete checkpoint (its ``.index`` file) exists for ``metadata``."""
        return Path(self.checkpoint_prefix(metadata) + ".index").exists()

    def log_path(self, metadata):
        return self.log_dir / (base_name(metadata) + ".npz")

    def eval_path(self, problem, metadata, suffix="", debug=False):
        """``eval/<problem>[_suffix][_dbg]/<base>.npz``."""
        folder = str(problem)
        if suffix:
            folder += "_" + str(suffix).lstrip("_")
        if debug:
            folder += "_dbg"
        return self.eval_dir / folder / (base_name(metadata) + ".npz")

    # config.json

    def read_config(self):
        """The saved config, or None if there is none; L2OError if it is unreadable."""
        if not self.config_path.exists():
            return None
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, ValueError) as err:
            raise L2OError(f"{self.config_path} cannot be read as JSON: {err}") from None

    def write_or_check_config(self, config, strict=True):
        """Save config.json on the first run; on later runs compare with the saved one.

        Returns the list of differences (empty when they match or the file is new). With
        ``strict``, any difference raises one L2OError and the folder is left untouched.
        """
        try:
            text = json.dumps(config, indent=4) + "\n"
        except (TypeError, ValueError) as err:
            raise L2OError(f"the config cannot be saved as JSON: {err}") from None
        saved = self.read_config()
        if saved is None:
            atomic_write_text(self.config_path, text)
            return []
        diffs = diff_configs(saved, json.loads(text))
        if diffs and strict:
            shown = [d.replace(": saved ", " (saved ", 1) + ")" for d in diffs[:8]]
            more = f", and {len(diffs) - 8} more" if len(diffs) > 8 else ""
            raise L2OError(
                f"{self.directory} holds a different config.json: {'; '.join(shown)}{more}; "
                "use another --directory (or the same settings to resume)")
        return diffs

    # summary.csv

    def _columns(self, metadata_columns, stat_columns):
        return summary_dtypes(
            self.metadata_columns if metadata_columns is None else metadata_columns,
            self.stat_columns if stat_columns is None else stat_columns)

    def read_summary(self, metadata_columns=None, stat_columns=None):
        """summary.csv as a typed DataFrame; an empty typed frame when there is no file."""
        dtypes = self._columns(metadata_columns, stat_columns)
        if not self.summary_path.exists():
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
        try:
            frame = pd.read_csv(self.summary_path)
        except (OSError, ValueError) as err:
            raise L2OError(f"{self.summary_path} cannot be read: {err}") from None
        return _typed(frame, dtypes)

    def append_summary(self, row, metadata_columns=None, stat_columns=None):
        """Add one period's row and rewrite summary.csv atomically; returns the new frame."""
        dtypes = self._columns(metadata_columns, stat_columns)
        missing = [c for c in dtypes if c not in row]
        if missing:
            raise L2OError(f"summary row lacks the columns {', '.join(missing)}")
        frame = self.read_summary(metadata_columns, stat_columns)
        new = pd.DataFrame([{k: _plain(v) for k, v in row.items()}])
        frame = new if frame.empty else pd.concat([frame, new], ignore_index=True)
        frame = _typed(frame, dtypes)
        atomic_write_text(self.summary_path, frame.to_csv(index=False))
        return frame

    # log/<base>.npz

    def write_log(self, metadata, stats):
        """Save the stacked training statistics of a period; nothing when ``stats`` is empty."""
        if not stats:
            return None
        return atomic_savez(
            self.log_path(metadata), **{k: np.asarray(v) for k, v in stats.items()})


def _plain(value):
    """A numpy / tensor scalar as a plain Python number, for pandas."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


# -- which attempts count, and the default checkpoint ------------------------------------
#
# The repeat rule and the choice of the default checkpoint live here, beside summary.csv,
# so that reading a trained policy out of an experiment folder (a "__load__" teacher's
# "best", l2o.saving.load_experiment_policy) needs no strategy: the strategies depend on
# the trainer, and they take their own decisions from these same functions.

#: Checkpoint metadata keys, outermost first; a summary.csv holds a subset of them.
CHECKPOINT_KEYS = ("stage", "period", "repeat")

#: Settings of the repeat rule (RepeatStrategy, CurriculumLearningStrategy) and their
#: library defaults.
REPEAT_RULE = {"max_repeat": 0, "repeat_threshold": 0.1}


def _finite(x):
    try:
        return bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def exploded(current, reference, threshold, validation=0.0):
    """The repeat rule: non-finite losses, or ``current`` above the reference by a margin."""
    if not _finite(current) or not _finite(validation):
        return True
    if not _finite(reference):
        return False
    return float(current) > float(reference) + abs(float(reference)) * float(threshold)


def _lowest(values):
    """Position of the lowest finite value (the last position when none is finite)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return len(values) - 1
    return int(np.argmin(np.where(finite, values, np.inf)))


def best_row(frame):
    """The row with the lowest finite validation (the latest row if none is finite)."""
    if len(frame) == 0:
        return None
    return frame.iloc[_lowest(frame["validation"].to_numpy(dtype=float))]


def accepted_attempts(summary, rule=None):
    """Which rows of summary.csv are accepted attempts: a boolean array, one per row.

    A row is attempt ``repeat`` of a period ``(stage, period)``; without a stage column
    every period is in stage 0, and without a repeat column (SimpleStrategy) every row is
    accepted. By the repeat rule (``rule``: ``max_repeat`` and ``repeat_threshold``, the
    defaults of :data:`REPEAT_RULE`) an attempt explodes when its validation is not finite
    or its loss lies above a reference by more than |reference| x repeat_threshold:

    * period p > 0: its validation, against the validation of period p - 1's accepted
      attempt;
    * period 0 of a stage s > 0 (curriculum): its training ``meta_loss``, against the best
      validation among stage s - 1's accepted attempts (validated with stage s's settings);
    * period 0 of stage 0 never explodes.

    A period's accepted attempt is the first that did not explode. When every attempt
    exploded and the period was left all the same (attempt ``max_repeat`` > 0 reached, or
    later periods follow), it is the lowest-validation attempt, which training went on
    from. The last period has none while its repeat is pending.

    Only accepted attempts are compared with, continued from, advanced from and packaged.
    A rejected attempt can validate best (period 0 attempts are judged by their training
    loss); the reference let such an attempt set the bar of the next period, count as its
    stage's best and be packaged.
    """
    rule = dict(REPEAT_RULE, **(rule or {}))
    max_repeat, threshold = int(rule["max_repeat"]), float(rule["repeat_threshold"])
    count = len(summary)
    if "repeat" not in summary.columns:
        return np.ones(count, dtype=bool)
    stages = (summary["stage"].to_numpy(dtype=int) if "stage" in summary.columns
              else np.zeros(count, dtype=int))
    periods = summary["period"].to_numpy(dtype=int)
    repeats = summary["repeat"].to_numpy(dtype=int)
    validation = summary["validation"].to_numpy(dtype=float)
    meta_loss = (summary["meta_loss"].to_numpy(dtype=float) if "meta_loss" in summary.columns
                 else np.full(count, np.nan))
    accepted = np.zeros(count, dtype=bool)
    for stage, period in dict.fromkeys(zip(stages.tolist(), periods.tolist())):
        attempts = np.flatnonzero((stages == stage) & (periods == period))
        if stage == 0 and period == 0:
            accepted[attempts[0]] = True
            continue
        before = accepted & (stages == stage) & (periods == period - 1) if period > 0 \
            else accepted & (stages == stage - 1)
        reference = validation[before][_lowest(validation[before])] if before.any() else np.nan
        current = validation if period > 0 else meta_loss
        passed = [i for i in attempts
                  if not exploded(current[i], reference, threshold, validation[i])]
        if passed:
            accepted[passed[0]] = True
        elif 0 < max_repeat <= repeats[attempts[-1]] or attempts[-1] < count - 1:
            accepted[attempts[_lowest(validation[attempts])]] = True
    return accepted


def _describe(metadata):
    return " ".join(f"{key} {value}" for key, value in metadata.items())


def complete_checkpoint(summary, partial, accepted, source="summary.csv"):
    """Complete the checkpoint description ``partial`` (``{}``, ``{"stage": 1}``, ...).

    ``accepted`` is :func:`accepted_attempts` of ``summary``. A missing outermost key (the
    stage of a curriculum, else the period) is the latest one that has an accepted
    attempt; a missing inner key is that of the lowest-validation accepted attempt among
    the rows chosen so far. Given keys are taken as given (a rejected attempt can still be
    named). ``{}`` gives the default checkpoint: the one evaluated and packaged, and a
    ``__load__`` teacher's ``"best"``. An L2OError names the choices when nothing matches.
    """
    if len(summary) == 0:
        raise L2OError(f"{source} has no finished period yet; train first")
    keys = [key for key in CHECKPOINT_KEYS if key in summary.columns]
    rows, accepted, chosen = summary, np.asarray(accepted, dtype=bool), {}
    for key in keys:
        values = rows[key].to_numpy(dtype=int)
        if key in partial:
            value = int(partial[key])
            if not (values == value).any():
                have = ", ".join(str(v) for v in sorted(set(values.tolist())))
                within = f" in {_describe(chosen)}" if chosen else ""
                raise L2OError(f"no {key} {value}{within} in {source}; available {key}s: {have}")
        elif not accepted.any():
            raise L2OError(f"{_describe(chosen)} in {source} has no accepted attempt yet (a "
                           "repeat is pending); only a named repeat can be read")
        elif key == keys[0]:
            value = int(values[accepted].max())
        else:
            scores = rows["validation"].to_numpy(dtype=float)[accepted]
            value = int(values[accepted][_lowest(scores)])
        mask = values == value
        rows, accepted = rows[mask], accepted[mask]
        chosen[key] = value
    return chosen


def read_config(directory):
    """The config.json of an experiment folder; an L2OError when there is none."""
    config = Experiment(directory).read_config()
    if config is None:
        raise L2OError(f"no experiment at {directory}: {os.path.join(directory, 'config.json')} "
                       "does not exist")
    return config


def repeat_rule(config):
    """The repeat rule's settings a config.json holds (the rest: :data:`REPEAT_RULE`)."""
    settings = (config or {}).get("strategy") or {}
    return {key: settings[key] for key in REPEAT_RULE if key in settings}


def default_checkpoint(directory):
    """The metadata of an experiment folder's default checkpoint, from its config.json (the
    repeat rule's settings) and summary.csv (:func:`complete_checkpoint` of ``{}``)."""
    rule = repeat_rule(read_config(directory))
    experiment = Experiment(directory)
    summary = experiment.read_summary()
    return complete_checkpoint(summary, {}, accepted_attempts(summary, rule),
                               source=experiment.summary_path)
