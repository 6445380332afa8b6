"""Loading evaluation records for plots: experiment folders, replicate folders, baselines.

An evaluation record is a dict of numpy arrays read from one ``.npz`` file, every array stacked
over the evaluation runs on axis 0 (see :mod:`l2o.evaluate`). The files live at

    <experiment>/eval/<problem>/<base>.npz        a trained optimizer, one file per checkpoint
    <baseline root>/<optimizer>/<problem>.npz      an analytical baseline
    <gridsearch root>/<policy>/<problem>/<lr>.npz  a grid-search point

Which checkpoint a folder stands for, when none is named: the only file present; otherwise the
checkpoint the strategy itself evaluates by default, read from ``summary.csv`` and the folder's
repeat rule (Simple: the last period; Repeat: the last period's accepted attempt; Curriculum:
the last stage's lowest-validation accepted attempt; see :func:`l2o.results.accepted_attempts`);
otherwise the latest file. Deviation
from the reference plots: they took the *highest* repeat of a curriculum period, which is not
the checkpoint the library treats as best; here both agree. The grid-search path is the one the
grid-search script writes (the reference plot loader swapped policy and problem).
"""

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from l2o.errors import L2OError
from l2o.results import (SETTINGS_KEY, Experiment, accepted_attempts, base_name,
                         complete_checkpoint, repeat_rule)

_BASE = re.compile(r"^(?P<kind>[A-Za-z]+)_(?P<numbers>[0-9.]+)$")


def _listing(names, limit=12):
    names = list(names)
    if not names:
        return "none"
    shown = ", ".join(str(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _natural_key(name):
    """Sort key for base names: stage_10.0.0 after stage_2.5.1, numbers compared as numbers."""
    match = _BASE.match(name)
    if not match:
        return (1, name, ())
    numbers = tuple(float(n) for n in match["numbers"].split(".") if n)
    return (0, match["kind"], numbers)


def _lr_key(name):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def load_npz(path):
    """All arrays of one ``.npz`` file as a plain dict; one L2OError when it is absent or bad.

    The recorded evaluation settings (see :func:`l2o.results.save_evaluation`) are not an
    array of runs; they are left out here and read with :func:`read_evaluation_settings`.
    """
    path = Path(path)
    if not path.is_file():
        raise L2OError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            result = {key: np.asarray(data[key]) for key in data.files
                      if key != SETTINGS_KEY}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise L2OError(f"{path} is not a readable .npz file: {error}") from None
    if not result:
        raise L2OError(f"{path} holds no arrays")
    return result


# -- experiment folders ------------------------------------------------------------------


def eval_problems(directory):
    """The problem folders under ``<directory>/eval``, sorted."""
    folder = Path(directory) / "eval"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def eval_checkpoints(directory, problem):
    """Base names of the evaluation files of ``problem`` in an experiment, oldest first."""
    folder = Path(directory) / "eval" / str(problem)
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob("*.npz") if p.is_file()), key=_natural_key)


def read_summary(directory):
    """``<directory>/summary.csv`` as a DataFrame, or None when it is absent."""
    path = Path(directory) / "summary.csv"
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise L2OError(f"{path} cannot be read: {error}") from None


def default_metadata(summary, rule=None):
    """The checkpoint metadata a strategy evaluates by default, from its summary frame: the
    lowest-validation accepted attempt of the latest stage or period
    (:func:`l2o.results.complete_checkpoint`; ``rule``: the folder's repeat rule, see
    :func:`l2o.results.repeat_rule`). None for an empty frame, one without metadata
    columns, or one whose last period has no accepted attempt yet.
    """
    if summary is None or summary.empty or "period" not in summary.columns:
        return None
    try:
        return complete_checkpoint(summary, {}, accepted_attempts(summary, rule))
    except L2OError:  # a repeat is pending
        return None


def folder_rule(directory):
    """The repeat rule of an experiment folder's config.json ({} without one)."""
    return repeat_rule(Experiment(directory).read_config())


def _match_checkpoint(available, checkpoint):
    """The base name among ``available`` that ``checkpoint`` names, or None."""
    if isinstance(checkpoint, dict):
        checkpoint = base_name(checkpoint)
    name = str(checkpoint)
    if name.endswith(".npz"):
        name = name[:-4]
    if name in available:
        return name
    # Reference-style bare numbers: "3.7.0" for stage_3.7.0, "4.0" for period_4.0.
    numbered = [a for a in available if _BASE.match(a) and _BASE.match(a)["numbers"] == name]
    return numbered[0] if len(numbered) == 1 else None


def resolve_eval_path(directory, problem, checkpoint=None):
    """The ``.npz`` path of ``problem`` in an experiment folder, for ``checkpoint`` (see module)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise L2OError(f"experiment folder {directory} does not exist")
    problems = eval_problems(directory)
    if str(problem) not in problems:
        raise L2OError(f"{directory} has no evaluation of '{problem}'; evaluated problems: "
                       f"{_listing(problems)}")
    available = eval_checkpoints(directory, problem)
    folder = directory / "eval" / str(problem)
    if not available:
        raise L2OError(f"{folder} holds no .npz files")
    if checkpoint is not None:
        name = _match_checkpoint(available, checkpoint)
        if name is None:
            raise L2OError(f"{folder} has no checkpoint '{checkpoint}'; present: "
                           f"{_listing(available)}")
        return folder / f"{name}.npz"
    if len(available) == 1:
        return folder / f"{available[0]}.npz"
    metadata = default_metadata(read_summary(directory), folder_rule(directory))
    if metadata is not None:
        name = base_name(metadata)
        if name in available:
            return folder / f"{name}.npz"
    return folder / f"{available[-1]}.npz"


def load_eval(directory_or_npz, problem=None, checkpoint=None):
    """The evaluation record of an experiment folder for ``problem`` (or of one ``.npz`` file).

    ``checkpoint`` is a base name (``stage_3.7.0``, ``period_4.0``), its bare numbers
    (``3.7.0``) or a metadata dict; None picks the default described in the module docstring.
    """
    path = Path(directory_or_npz)
    if path.suffix == ".npz":
        return load_npz(path)
    if problem is None:
        raise L2OError(f"name the problem to load from {path}; evaluated problems: "
                       f"{_listing(eval_problems(path))}")
    return load_npz(resolve_eval_path(path, problem, checkpoint))


# -- replicate folders -------------------------------------------------------------------


def is_experiment(directory):
    """Whether a folder is one experiment (it has eval/, summary.csv or config.json)."""
    directory = Path(directory)
    return any((directory / name).exists() for name in ("eval", "summary.csv", "config.json"))


def replicate_dirs(folder):
    """The replicate sub-folders of ``folder`` (those that are experiments), in natural order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and is_experiment(p)]
    return sorted(found, key=lambda p: _lr_key(p.name))


def split_evaluated(replicates, problem, checkpoint=None):
    """``(evaluated, missing)``: the replicate folders that hold an evaluation of ``problem``
    (at ``checkpoint``, default each one's default checkpoint) and those that do not, e.g. a
    replicate still training while the others are compared."""
    evaluated, missing = [], []
    for replicate in replicates:
        try:
            resolve_eval_path(replicate, problem, checkpoint)
        except L2OError:
            missing.append(replicate)
        else:
            evaluated.append(replicate)
    return evaluated, missing


def load_replicates(folder, problem, checkpoint=None, replicates=None):
    """Every replicate's record of ``problem`` in ``folder``, runs concatenated on axis 0.

    Each replicate contributes its own runs (its default checkpoint unless ``checkpoint`` is
    given). ``replicates``: the replicate folders to read (default: all of
    :func:`replicate_dirs`). The extra int array ``replicate`` gives, per run, the position of
    its replicate in that list. Replicates whose arrays differ in shape beyond axis 0, or that
    lack a key another has, are refused.
    """
    folder = Path(folder)
    replicates = replicate_dirs(folder) if replicates is None else [Path(r) for r in replicates]
    if not replicates:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        where = f"holds {_listing(present)}" if folder.is_dir() else "does not exist"
        raise L2OError(f"{folder} has no replicate folders (it {where})")
    records = [load_eval(r, problem, checkpoint) for r in replicates]
    keys = set(records[0])
    for replicate, record in zip(replicates[1:], records[1:]):
        if set(record) != keys:
            raise L2OError(f"{replicate} holds the keys {_listing(sorted(record))}, but "
                           f"{replicates[0]} holds {_listing(sorted(keys))}")
    stacked = {}
    for key in records[0]:
        shapes = {r[key].shape[1:] for r in records}
        if len(shapes) > 1:
            raise L2OError(f"replicates in {folder} disagree on the shape of '{key}': "
                           f"{_listing(sorted(shapes))}")
        stacked[key] = np.concatenate([r[key] for r in records], axis=0)
    counts = [len(next(iter(r.values()))) for r in records]
    stacked["replicate"] = np.repeat(np.arange(len(records)), counts)
    return stacked


def load_entry(path, problem, checkpoint=None):
    """Load whatever ``path`` is: an ``.npz`` file, an experiment, or a folder of replicates."""
    path = Path(path)
    if path.suffix == ".npz" or path.is_file():
        return load_npz(path)
    if not path.is_dir():
        raise L2OError(f"{path} does not exist")
    if is_experiment(path):
        return load_eval(path, problem, checkpoint)
    return load_replicates(path, problem, checkpoint)


def describe_entry(path, problem, checkpoint=None):
    """The ``.npz`` files :func:`load_entry` reads for ``path``, as strings."""
    path = Path(path)
    if path.suffix == ".npz" or path.is_file():
        return [str(path)]
    if is_experiment(path):
        return [str(resolve_eval_path(path, problem, checkpoint))]
    return [str(resolve_eval_path(r, problem, checkpoint)) for r in replicate_dirs(path)]


# -- baselines and grid searches ---------------------------------------------------------


def _subfolders(folder):
    folder = Path(folder)
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def baseline_path(baseline_root, optimizer, problem):
    """``<baseline_root>/<optimizer>/<problem>.npz``, checked; errors list what exists."""
    root = Path(baseline_root)
    if not root.is_dir():
        raise L2OError(f"baseline folder {root} does not exist")
    if not (root / str(optimizer)).is_dir():
        raise L2OError(f"no baseline '{optimizer}' in {root}; present: "
                       f"{_listing(_subfolders(root))}")
    path = root / str(optimizer) / f"{problem}.npz"
    if not path.is_file():
        problems = sorted(p.stem for p in (root / str(optimizer)).glob("*.npz"))
        raise L2OError(f"baseline '{optimizer}' has no result for '{problem}' in {root}; "
                       f"its problems: {_listing(problems)}")
    return path


def load_baseline(baseline_root, optimizer, problem):
    """The record of analytical optimizer ``optimizer`` on ``problem``."""
    return load_npz(baseline_path(baseline_root, optimizer, problem))


def gridsearch_learning_rates(gridsearch_root, policy, problem):
    """The learning rates (file names, ascending) searched for ``policy`` on ``problem``."""
    folder = Path(gridsearch_root) / str(policy) / str(problem)
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob("*.npz")), key=_lr_key)


def load_gridsearch(gridsearch_root, policy, problem, learning_rate):
    """The record of ``<gridsearch_root>/<policy>/<problem>/<learning_rate>.npz``."""
    root = Path(gridsearch_root)
    if not (root / str(policy)).is_dir():
        raise L2OError(f"no grid search of '{policy}' in {root}; present: "
                       f"{_listing(_subfolders(root))}")
    rates = gridsearch_learning_rates(root, policy, problem)
    if not rates:
        raise L2OError(f"no grid search of '{policy}' on '{problem}' in {root}; its problems: "
                       f"{_listing(_subfolders(root / str(policy)))}")
    wanted = str(learning_rate)
    if wanted not in rates:
        same = [r for r in rates if _lr_key(r)[0] == 0 and _lr_key(wanted)[0] == 0
                and float(r) == float(wanted)]
        if not same:
            raise L2OError(f"grid search of '{policy}' on '{problem}' has no learning rate "
                           f"{wanted}; present: {_listing(rates)}")
        wanted = same[0]
    return load_npz(root / str(policy) / str(problem) / f"{wanted}.npz")


def load_training(directory):
    """``summary.csv`` of an experiment folder, for :func:`l2o.plot.figures.plot_training`."""
    directory = Path(directory)
    summary = read_summary(directory)
    if summary is None:
        what = "does not exist" if not directory.is_dir() else (
            f"holds {_listing(sorted(p.name for p in directory.iterdir()))}")
        raise L2OError(f"{directory} has no summary.csv (the folder {what})")
    if summary.empty:
        raise L2OError(f"{directory / 'summary.csv'} has no rows yet")
    if "period" not in summary.columns or "validation" not in summary.columns:
        raise L2OError(f"{directory / 'summary.csv'} lacks the period/validation columns; "
                       f"its columns: {_listing(list(summary.columns), 20)}")
    return summary
