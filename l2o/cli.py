"""What the command-line scripts (train.py, resume.py, evaluate.py, baseline.py, ...) share.

* :class:`Script` holds one description of a script's arguments, used both to parse argv
  (through :func:`l2o.config.parse_flags`) and to print the ``--help`` table, so the two
  never drift apart.
* :func:`main_wrapper` turns every failure into exactly one line on stderr and an exit
  status: 2 for user errors, 1 for internal errors, 130 for Ctrl-C.
* :func:`quiet_native_logs` keeps TensorFlow's C++ start-up chatter off the terminal.
* The ``check_*`` helpers validate arguments without importing TensorFlow, so a typo fails
  in well under a second instead of after the multi-second TensorFlow import.

Nothing here imports TensorFlow at module level.
"""

import argparse
import contextlib
import difflib
import importlib.util
import io
import os
import sys
import types
from pathlib import Path
from typing import NamedTuple

from l2o.errors import L2OError

VERBOSE_ENV = "L2O_VERBOSE"
TF_LOG_ENV = "L2O_TF_LOG"

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


class UsageError(L2OError):
    """A malformed command line (unknown flag, stray positional, bad flag value)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the ``python -m l2o.*`` tools: a bad argument raises an L2OError, which
    ``main_wrapper`` (or the tool's own main) prints as one ``error:`` line, exit status 2."""

    def error(self, message):
        raise L2OError(message)


def whole_number(minimum):
    """An argparse ``type``: a whole number >= ``minimum`` (``--seeds=0`` or ``--seeds=two``
    is the parser's one error line, not a traceback or a silent zero)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got '{text}'")
        return value
    return parse


def whole_numbers(minimum):
    """An argparse ``type``: a comma list of whole numbers >= ``minimum`` (``--epochs=10,25``),
    returned sorted, each once."""
    def parse(text):
        try:
            values = sorted({int(item) for item in text.split(",") if item.strip()})
        except ValueError:
            values = []
        if not values or values[0] < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a comma list of whole numbers >= {minimum}, got '{text}'")
        return values
    return parse


def verbose():
    """True when ``$L2O_VERBOSE`` asks for native logs and full tracebacks."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# -- native log silencing --------------------------------------------------------------------

_quieted = False


def quiet_native_logs():
    """Send what native code writes to file descriptor 2 to /dev/null (or ``$L2O_TF_LOG``).

    Why: TensorFlow's C++ runtime prints start-up lines (absl's "WARNING: All log messages
    before absl::InitializeLog()", "I0000 ... oneDNN custom operations are on", the cuda stub
    notice) straight to fd 2 while it is imported, before ``TF_CPP_MIN_LOG_LEVEL`` applies.
    A user error must be a single line on stderr, so those lines have to go elsewhere.

    How: fd 2 is duplicated first and ``sys.stderr`` is pointed at the duplicate, so Python
    tracebacks, warnings, progress output and our own messages still reach the terminal;
    only then is fd 2 itself replaced, which silences native writers alone. Call this before
    TensorFlow is imported. ``$L2O_VERBOSE=1`` turns it off; ``$L2O_TF_LOG=<file>`` keeps the
    native log in that file instead of discarding it. Also sets ``TF_CPP_MIN_LOG_LEVEL=2``
    unless it is already set.
    """
    global _quieted
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _quieted or verbose():
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, AttributeError, ValueError):
        return  # no usable fd 2 (embedded interpreter): nothing to protect
    target = os.environ.get(TF_LOG_ENV) or os.devnull
    try:
        sink = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        sink = os.open(os.devnull, os.O_WRONLY)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = io.TextIOWrapper(io.FileIO(real, "w"), encoding=encoding,
                                  errors="backslashreplace", line_buffering=True)
    os.dup2(sink, 2)
    os.close(sink)
    _quieted = True


# -- one-line errors -------------------------------------------------------------------------


def one_line(text):
    """``text`` with its lines joined, so a message is always a single line."""
    return " ".join(str(text).split())


def main_wrapper(fn, argv=None):
    """Run ``fn(argv)`` as a script body and exit with its status.

    ``L2OError`` (usage errors included) prints ``error: <message>`` and exits 2;
    ``OSError`` (unwritable folder, full disk) prints ``error: ...`` and exits 1;
    KeyboardInterrupt exits 130; any other exception prints one ``internal error`` line and
    exits 1, or propagates with its traceback when ``$L2O_VERBOSE=1``.
    """
    quiet_native_logs()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        status = fn(argv)
    except L2OError as err:
        _report(f"error: {one_line(err)}")
        status = EXIT_USER_ERROR
    except OSError as err:
        if verbose():
            raise
        _report(f"error: {one_line(err)}")
        status = EXIT_INTERNAL_ERROR
    except KeyboardInterrupt:
        _report("interrupted")
        status = EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 (the last line of defence of a script)
        if verbose():
            raise
        _report(f"internal error: {type(err).__name__}: {one_line(err)} "
                f"(set {VERBOSE_ENV}=1 for the traceback)")
        status = EXIT_INTERNAL_ERROR
    sys.stdout.flush()
    sys.exit(status or 0)


def _report(line):
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(line, file=sys.stderr, flush=True)


# -- argument descriptions -------------------------------------------------------------------


class Flag(NamedTuple):
    """One ``--name[=value]`` argument: its type, default and a one-line meaning.

    ``kind`` is ``str``, ``int``, ``float`` or ``bool`` (bool flags may be given bare);
    ``shown`` replaces the default in the help table when the raw default says little.
    """

    name: str
    kind: type
    default: object
    help: str
    shown: str = None

    @property
    def default_text(self):
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "—"
        if self.kind is bool:
            return "true" if self.default else "false"
        if self.default == "":
            return '""'
        return str(self.default)


HELP = Flag("help", bool, False, "print this table and exit (also -h)")

#: The flag of the scripts that write evaluation files (evaluate, baseline, gridsearch); see
#: :func:`l2o.results.check_evaluation_file`.
OVERWRITE = Flag("overwrite", bool, False,
                 "replace an evaluation file that holds other settings (otherwise refused)")
OVERWRITE_HINT = "pass --overwrite to replace it, or write elsewhere with another --directory"


def device_flags(vram=12000, repeats=False):
    """The device flags every script takes (see :func:`l2o.devices.create_strategy`).

    ``repeats``: the script evaluates ``--repeat`` runs, which :func:`problem_scope` spreads
    over the selected devices (the help says so).
    """
    spread = "; with several, the --repeat runs are spread over them, one run per device"
    return (
        Flag("gpus", str, None, "comma list of physical GPU indices to use"
             + (spread if repeats else ""), shown="all"),
        Flag("cpu", bool, False, "run on the CPU only (bare flag, or =true/false)"),
        Flag("vgpu", int, 1, "split GPU 0 (or the CPU) into this many virtual devices; "
                             + ("a multi-device debug aid" if repeats
                                else "a multi-replica debug aid")),
        Flag("vram", int, vram, "MB of memory per virtual GPU (only with --vgpu > 1)"),
    )


class Script:
    """A script's arguments, parser and help table.

    ``overrides``: what leftover ``--a/b/c=value`` tokens are. ``"config"``: config
    overrides (train.py); ``"optional"``: overrides only when ``--override`` is given
    (evaluate.py); ``None``: errors (baseline.py, resume.py). ``positionals`` lists the
    required positional arguments as ``(name, meaning)`` pairs (resume.py's directory);
    any other positional is an error.
    """

    def __init__(self, prog, summary, flags, overrides=None, positionals=(), notes=""):
        self.prog = prog
        self.summary = summary
        self.flags = tuple(flags) + ((HELP,) if HELP.name not in {f.name for f in flags} else ())
        self.overrides = overrides
        self.positionals = tuple(name for name, _ in positionals)
        self.positional_help = dict(positionals)
        self.notes = notes
        names = [f.name for f in self.flags]
        if len(set(names)) != len(names):
            raise ValueError(f"{prog}: duplicate flag names in {names}")

    # help

    def usage(self):
        pos = "".join(f" <{p}>" for p in self.positionals)
        tail = {"config": " [--a/b/c=value ...]",
                "optional": " [--override --a/b/c=value ...]"}.get(self.overrides, "")
        return f"usage: {self.prog}{pos} [--flag=value ...]{tail}"

    def table(self):
        """The markdown table of the arguments (the README's table comes from here)."""
        rows = ["| Argument | Default | Meaning |", "| - | - | - |"]
        for name in self.positionals:
            rows.append(f"| `<{name}>` | required | {self.positional_help[name]} |")
        for flag in self.flags:
            rows.append(f"| `--{flag.name}` | {flag.default_text} | {flag.help} |")
        return "\n".join(rows)

    def help_text(self):
        parts = [self.usage(), "", self.summary, "", self.table()]
        if self.notes:
            parts += ["", self.notes.strip()]
        return "\n".join(parts) + "\n"

    def wants_help(self, argv):
        return any(a in ("-h", "--help") or a.startswith("--help=") for a in argv)

    @property
    def flag_names(self):
        return [f"--{f.name}" for f in self.flags]

    def suggest(self, name, extra=()):
        """``" (did you mean --x?)"`` for a near miss among the flags (and ``extra``)."""
        pool = [f.name for f in self.flags] + list(extra)
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.75)
        return f" (did you mean --{close[0]}?)" if close else ""

    # parsing

    def parse(self, argv):
        """``(args, positionals, overrides)`` from argv.

        ``args`` has one attribute per flag (``-`` becomes ``_``); ``overrides`` is a list of
        ``(path_list, value)``. Raises :class:`UsageError` for anything malformed.
        """
        from l2o.config.overrides import parse_flags

        positionals = [a for a in argv if not a.startswith("--")]
        tokens = [a for a in argv if a.startswith("--")]
        if len(positionals) > len(self.positionals):
            stray = positionals[len(self.positionals)]
            expected = (f"it takes {len(self.positionals)} positional argument(s): "
                        + " ".join(f"<{p}>" for p in self.positionals)) \
                if self.positionals else "it takes no positional arguments"
            raise UsageError(f"{self.prog}: unexpected argument '{stray}'; {expected}, and flags "
                             "written --key=value or --key")
        if len(positionals) < len(self.positionals):
            missing = self.positionals[len(positionals)]
            raise UsageError(f"{self.prog}: missing <{missing}>; {self.usage()[7:]}")
        known = {f.name: (f.kind, f.default) for f in self.flags}
        try:
            values, overrides = parse_flags(tokens, known)
        except L2OError as err:
            raise UsageError(f"{self.prog}: {err}") from None
        args = types.SimpleNamespace(**{k.replace("-", "_"): v for k, v in values.items()})
        if overrides and (self.overrides is None
                          or (self.overrides == "optional" and not args.override)):
            path = overrides[0][0]
            name = "/".join(str(p) for p in path)
            hint = self.suggest(name)
            if self.overrides == "optional" and not hint:
                hint = " (add --override to apply it to the saved config, unchecked and unsaved)"
            raise UsageError(f"{self.prog}: unknown argument --{name}{hint}; valid: "
                             f"{', '.join(self.flag_names)}")
        return args, positionals, overrides


# -- shared checks (no TensorFlow) -----------------------------------------------------------


def split_list(text):
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def check_at_least(flag, value, least=1):
    """A whole-number flag's value, or a UsageError when it is below ``least`` (None passes:
    the flag was not given)."""
    if value is not None and value < least:
        raise UsageError(f"--{flag} must be at least {least}, got {value}")
    return value


def check_repeat(repeat):
    return check_at_least("repeat", repeat)


def check_epochs(epochs):
    return check_at_least("epochs", epochs)


def check_vgpu(vgpu, vram):
    check_at_least("vgpu", vgpu)
    if vram < 1:
        raise UsageError(f"--vram must be a positive number of MB, got {vram}")


def check_device_flags(args):
    """``--vgpu/--vram`` ranges and ``--gpus`` syntax; normalises ``args.gpus`` in place."""
    check_vgpu(args.vgpu, args.vram)
    args.gpus = check_gpus(args.gpus)


def check_evaluation_flags(args):
    """The flags evaluate.py and baseline.py share; returns the ``--problem`` names."""
    check_repeat(args.repeat)
    check_epochs(args.epochs)
    check_device_flags(args)
    return check_problems(args.problem)


def check_gpus(gpus):
    """Syntax of ``--gpus`` (which indices exist is only known once TensorFlow runs)."""
    if gpus is None:
        return None
    parts = [p.strip() for p in gpus.split(",")]
    if not gpus.strip() or not all(p.isdigit() for p in parts):
        raise UsageError(f"--gpus expects a comma list of GPU indices such as 0,2; got '{gpus}'")
    return ",".join(parts)


def _pure_module(relative, name):
    """Load a TensorFlow-free module file of the l2o package on its own.

    ``l2o.evaluate``'s package ``__init__`` imports Keras (and so TensorFlow); its problem
    table lives in a plain-Python file, which is read directly here so that a mistyped
    ``--problem`` fails without the TensorFlow import. When the package is imported
    already, its own module is used.
    """
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / relative
    spec = importlib.util.spec_from_file_location(f"l2o._cli_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def eval_problem_names():
    """The keys of the evaluation problem table (``--problem`` values)."""
    return sorted(_pure_module("evaluate/problems.py", "l2o.evaluate.problems").EVAL_PROBLEMS)


def check_problems(text):
    """The ``--problem`` comma list as names, each one checked against the table."""
    from l2o.errors import unknown

    names = split_list(text)
    if not names:
        raise UsageError("--problem names no evaluation problem; e.g. --problem=conv_train")
    valid = eval_problem_names()
    for name in names:
        if name not in valid:
            raise unknown("evaluation problem", name, valid)
    return names


def is_function_problem(name):
    """True when the named evaluation problem is a synthetic function (it has ``steps``)."""
    table = _pure_module("evaluate/problems.py", "l2o.evaluate.problems").EVAL_PROBLEMS
    return "steps" in table[name]


def apply_cli_overrides(config, overrides, script):
    """Apply ``(path, value)`` overrides one by one to a config (a new dict is returned).

    A first path element that is not a config key is most likely a mistyped script flag,
    so that error also names the script's own flags (with a near match, if any).
    """
    from l2o.config.overrides import apply_overrides

    for path, value in overrides:
        try:
            config = apply_overrides(config, [(path, value)])
        except L2OError as err:
            head = str(path[0])
            if head.rstrip("?") not in config:
                raise UsageError(
                    f"{err}{script.suggest(head, extra=list(config))}; {script.prog}'s own "
                    f"flags: {', '.join(script.flag_names)}") from None
            raise
    return config


def check_strategy_settings(config):
    """Check the strategy block of a config (schedules, unknown keys); no TensorFlow."""
    from l2o.strategy.base import get_strategy_class

    cls = get_strategy_class(config.get("strategy_constructor"))
    if not isinstance(config.get("strategy"), dict):
        raise L2OError(f"config 'strategy' must be a dict, got {config.get('strategy')!r}")
    return cls.check_settings(dict(config["strategy"]))


class _NoPolicy:
    """Stands in for the policy of a strategy that only looks up checkpoints."""


def checkpoint_index(directory, config):
    """A strategy of ``config`` on ``directory`` that can only resolve checkpoint names.

    It is built without a policy or trainer (and so without TensorFlow): enough to run the
    strategy's own ``complete_metadata`` on summary.csv, to reject a missing period or
    stage before any work starts.
    """
    from l2o.strategy.base import get_strategy_class

    cls = get_strategy_class(config["strategy_constructor"])
    settings = cls.check_settings(dict(config["strategy"]))
    return cls(None, config["problems"], directory=directory, policy=_NoPolicy(),
               lazy_problems=True, **settings)


# -- TensorFlow-side helpers -----------------------------------------------------------------


def create_devices(args):
    """Configure devices from ``--gpus/--cpu/--vgpu/--vram``; returns the tf.distribute strategy.

    Must run before anything executes a TensorFlow op.
    """
    from l2o.devices import create_strategy

    strategy = create_strategy(gpus=args.gpus, cpu=args.cpu, vgpu=args.vgpu, vram=args.vram,
                               verbose=True)
    quiet_python_logs()
    return strategy


def train_on_workers(strategy, directory, build, initialize=False):
    """Build the experiment of ``directory`` with ``build(folder)`` and train it: what
    train.py and resume.py share, on one device, several, or several workers.

    Everything is built and trained inside ``strategy.scope()``. Several workers (TF_CONFIG,
    SLURM) run this same command: only the chief writes ``directory``; every other worker
    builds on a private copy of it (:func:`l2o.results.private_copy`), writes there, and
    says so. All workers must resume from the same period, and end with the same policy
    weights; a lost worker is one L2OError line. ``initialize``: stop once built (train.py
    ``--initialize``).
    """
    from l2o import devices
    from l2o.results import private_copy

    chief = devices.is_chief(strategy)
    folder = contextlib.nullcontext(directory) if chief else private_copy(directory)
    with strategy.scope(), folder as own:
        if not chief:
            print(f"Worker {devices.worker_index(strategy)}: not the chief, so nothing is "
                  f"written to {directory} (this worker's copy: {own})", flush=True)
        experiment = build(own)
        if initialize:
            if chief:
                print(f"Initialized {directory} (config.json written); run again without "
                      "--initialize to train")
            return
        devices.check_workers_agree(strategy, len(experiment.summary),
                                    "the number of finished periods in summary.csv")
        try:
            experiment.train()
        except Exception as err:
            lost = devices.worker_failure(strategy, err)
            if lost is None:
                raise
            raise lost from None
        difference = devices.worker_weight_difference(strategy, experiment.policy.get_weights())
        if difference is not None:
            if difference > 1e-6:
                raise L2OError(f"the workers ended with different policy weights (largest "
                               f"difference {difference:.3g}); the run is not synchronised")
            if chief:
                print(f"All {strategy.cluster_resolver.cluster_spec().num_tasks('worker')} "
                      f"workers hold the same policy weights (largest difference "
                      f"{difference:.1e})", flush=True)


def quiet_python_logs():
    """Keep the Python loggers of TensorFlow and absl (tensorflow-datasets uses absl) to errors.

    They report library-internal conditions ("Variant folder ... has no dataset_info.json",
    retracing notices) on stderr, which would add lines around a one-line error. Off with
    ``$L2O_VERBOSE=1``. Runs after TensorFlow is imported, so its loggers exist.
    """
    if verbose():
        return
    import logging

    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def repeat_devices(strategy):
    """The devices evaluation repeats are spread over: ``strategy``'s, when it has several.

    ``()`` for a single device, and for a multi-worker strategy (``TF_CONFIG``), whose
    workers evaluate together as replicas of one fit, as before.
    """
    from l2o.devices import is_multi_worker

    if is_multi_worker(strategy):
        return ()
    devices = tuple(strategy.extended.worker_devices)
    return devices if len(devices) > 1 else ()


def experiment_scope(strategy):
    """The context evaluate.py builds an experiment (its policy) in.

    ``strategy.scope()``, unless the evaluation runs are spread over several devices
    (:func:`repeat_devices`): then the policy's variables are built as plain ones on the
    default device, which the runs on every device read. A Keras update step outside the
    strategy cannot read a ``MirroredVariable``: TensorFlow's default strategy passes the
    variable being updated where the replica id belongs.
    """
    return contextlib.nullcontext() if repeat_devices(strategy) else strategy.scope()


def problem_scope(strategy, problem):
    """The context to evaluate the named problem in.

    Several devices (``--gpus=0,1``, ``--vgpu=2``): :func:`l2o.evaluate.spread_repeats` over
    the strategy's devices, so that ``run_repeats`` trains one independent run per device at
    a time (run ``i`` on device ``i mod n``), for model and function problems alike.
    Otherwise, model problems fit under ``strategy.scope()``. Function problems have no batch
    to split and their update loop runs in cross-replica context, which Keras'
    ``apply_gradients`` rejects inside a scope, so they run on the default device, outside it.
    """
    devices = repeat_devices(strategy)
    if devices:
        from l2o.evaluate import spread_repeats

        return spread_repeats(devices)
    if is_function_problem(problem):
        return contextlib.nullcontext()
    return strategy.scope()


@contextlib.contextmanager
def eval_epochs(problem, epochs):
    """Within the block, the named model problem trains for ``epochs`` epochs (None: as is).

    ``--epochs`` shortens an evaluation (smoke tests, quick looks) without a new problem
    name. The scripts are one-shot processes, so the table entry is swapped for a copy for
    the duration of the block and then put back.
    """
    from l2o.evaluate import problems as table

    entry = table.EVAL_PROBLEMS.get(problem)
    if epochs is None or entry is None or "steps" in entry:
        yield
        return
    table.EVAL_PROBLEMS[problem] = dict(entry, epochs=int(epochs))
    try:
        yield
    finally:
        table.EVAL_PROBLEMS[problem] = entry
