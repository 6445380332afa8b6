"""Write a SLURM batch script that trains one recipe and then evaluates it.

    python prepare.py --strategy=curriculum --policy=rnnprop \\
        --presets=conv_train,adam,rmsprop,il_more --directory=results/rnnprop/min-max/1 \\
        --evaluate=conv_train,conv_wider --time=2-00:00:00 --partition=gpu \\
        --modules=cuda/12.2,python/3.11 --setup="source venv/bin/activate"

The script runs train.py with the same recipe (any --a/b/c=value override is passed on
unchanged), then evaluate.py on the trained folder. Every site setting is an argument.
With --nodes above 1, srun starts one train.py per node, all with the same command and
folder (a shared filesystem); l2o then trains with MultiWorkerMirroredStrategy.

The recipe is checked the way train.py checks it (strategy, policy, presets, overrides, the
strategy settings, an existing folder's config.json), without TensorFlow, so a typo fails
here rather than in the queue.
"""

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import train
from l2o import cli
from l2o.errors import L2OError

REPO = Path(__file__).resolve().parent

SCRIPT = cli.Script(
    "prepare.py",
    "Write a SLURM batch script: train.py on a recipe, then evaluate.py on its folder. "
    "Without arguments it prints this help.",
    (
        cli.Flag("directory", str, None, "experiment folder train.py writes (relative to "
                                         "--chdir), e.g. results/rnnprop/min-max/1",
                 shown="required"),
        cli.Flag("strategy", str, "repeat", "training strategy: simple, repeat or curriculum"),
        cli.Flag("policy", str, "rnnprop", "policy to train (a key of the policy defaults)"),
        cli.Flag("presets", str, "", "comma list of presets, applied in order (train.py "
                                     "--list-presets)"),
        cli.Flag("seed", int, None, "train.py --seed", shown="random"),
        cli.Flag("evaluate", str, "", "comma list of evaluation problems to run after "
                                      "training (e.g. conv_train,conv_wider)", shown="none"),
        cli.Flag("repeat", int, 10, "evaluation runs per problem (evaluate.py --repeat)"),
        cli.Flag("job-name", str, None, "SLURM job name; also names the script",
                 shown="from --directory"),
        cli.Flag("script", str, None, "where to write the batch script",
                 shown="<chdir>/slurm/<job-name>.sh"),
        cli.Flag("output", str, "slurm/%x-%j.out", "SLURM log file (relative to --chdir; %x "
                                                   "job name, %j job id); its folder is "
                                                   "created"),
        cli.Flag("chdir", str, ".", "folder the job runs in (#SBATCH --chdir, made absolute)",
                 shown="current folder"),
        cli.Flag("time", str, "24:00:00", "wall-clock limit: MM, MM:SS, HH:MM:SS, D-HH, "
                                          "D-HH:MM or D-HH:MM:SS"),
        cli.Flag("nodes", int, 1, "nodes; above 1, one train.py worker per node via srun"),
        cli.Flag("gpus-per-node", int, 1, "GPUs per node (0: no GPU request)"),
        cli.Flag("cpus-per-task", int, None, "CPU cores per node's task", shown="site default"),
        cli.Flag("mem", str, None, "memory per node, e.g. 64G (units K, M, G, T)",
                 shown="site default"),
        cli.Flag("partition", str, None, "SLURM partition (queue)", shown="site default"),
        cli.Flag("account", str, None, "account to charge", shown="site default"),
        cli.Flag("sbatch", str, "", "comma list of extra #SBATCH options, e.g. "
                                    "--qos=high,--constraint=a100", shown="none"),
        cli.Flag("modules", str, "", "comma list of environment modules to load, in order",
                 shown="none"),
        cli.Flag("setup", str, None, "one shell line run before training, e.g. "
                                     "\"source venv/bin/activate\"", shown="none"),
        cli.Flag("python", str, "python", "Python command on the compute nodes"),
        cli.Flag("dry-run", bool, False, "print the script to stdout and write nothing"),
    ),
    overrides="config",
    notes="""Any other --a/b/c=value is a train.py config override: it is checked here and written
into the train.py command unchanged. The script stops at the first failing command, so a
failed training is not evaluated.""",
)

# SLURM's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds.
TIME_FORMAT = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?")
MEMORY_FORMAT = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
JOB_NAME_FORMAT = re.compile(r"[A-Za-z0-9._-]+")


# -- checks ----------------------------------------------------------------------------------


def check_time(text):
    valid = "valid: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. 24:00:00 or 2-00"
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return text.upper()
    match = TIME_FORMAT.fullmatch(text)
    if not match:
        raise cli.UsageError(f"--time={text} is not a SLURM time limit; {valid}")
    days, first, second, third = match.groups()
    if days is not None and int(first) >= 24:
        raise cli.UsageError(f"--time={text}: hours must be below 24 after 'D-'; {valid}")
    if any(part is not None and int(part) >= 60 for part in (second, third)):
        raise cli.UsageError(f"--time={text}: minutes and seconds must be below 60; {valid}")
    return text


def check_word(flag, value):
    """An #SBATCH or module value: one word (these lines are not parsed by a shell)."""
    if value is not None and (not value.strip() or any(c.isspace() for c in value.strip())):
        raise cli.UsageError(f"--{flag}='{value}' must be one word without spaces")
    return None if value is None else value.strip()


def check_memory(text):
    if text is not None and not MEMORY_FORMAT.fullmatch(text.strip()):
        raise cli.UsageError(f"--mem={text} is not a SLURM memory size; valid: a whole number "
                             "with an optional unit K, M, G or T, e.g. 64G or 16000M")
    return None if text is None else text.strip().upper()


def check_sbatch_options(text):
    options = cli.split_list(text)
    for option in options:
        check_word("sbatch", option)
        if not option.startswith("-"):
            raise cli.UsageError(f"--sbatch: '{option}' is not an sbatch option; write each "
                                 "as --name=value, e.g. --sbatch=--qos=high,--exclusive")
    return options


def check_setup(text):
    if text is None:
        return None
    if "\n" in text or "\r" in text:
        raise cli.UsageError("--setup must be one line; join several commands with && or ;")
    return text.strip() or None


def default_job_name(directory):
    """``results/rnnprop/min-max/1`` -> ``rnnprop-min-max-1``."""
    parts = [p for p in Path(directory).parts if p not in ("/", ".", "..")]
    if len(parts) > 1 and parts[0] == "results":
        parts = parts[1:]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts)).strip("-.")
    return name or "l2o"


def check_job_name(name):
    if not JOB_NAME_FORMAT.fullmatch(name):
        raise cli.UsageError(f"--job-name='{name}' may only hold letters, digits, '.', '_' and "
                             "'-' (it also names the script file)")
    return name


def check_recipe(args, overrides):
    """train.py's own TensorFlow-free checks of the recipe; the resolved config."""
    recipe = SimpleNamespace(strategy=args.strategy, policy=args.policy, presets=args.presets,
                             seed=args.seed)
    try:
        config = train.resolve_config(recipe, overrides)
    except L2OError as err:
        # A mistyped prepare.py flag arrives as a one-key override: name the flag it resembles.
        for path, _ in overrides:
            head = str(path[0])
            hint = SCRIPT.suggest(head) if len(path) == 1 else ""
            if hint:
                raise cli.UsageError(f"prepare.py: unknown argument --{head}{hint}; valid: "
                                     f"{', '.join(SCRIPT.flag_names)}") from None
        raise err from None
    folder = Path(args.chdir) / args.directory
    train.check_directory(str(folder), config)
    return config


def passed_overrides(argv):
    """The override tokens of argv, exactly as typed, in order."""
    own = {f.name for f in SCRIPT.flags}
    return [token for token in argv
            if token.startswith("--") and token[2:].partition("=")[0] not in own]


# -- the script ------------------------------------------------------------------------------


def command(*words):
    return " ".join(shlex.quote(str(w)) for w in words)


def script_path(name, workdir):
    """A repository script as the job should call it: relative when the job runs in the
    repository, absolute otherwise."""
    return name if workdir == REPO else str(REPO / name)


def render(args, settings):
    """The text of the batch script."""
    workdir = settings["workdir"]
    nodes = args.nodes
    sbatch = [f"--job-name={settings['job_name']}", f"--chdir={workdir}",
              f"--output={settings['output']}", f"--time={settings['time']}",
              f"--nodes={nodes}", "--ntasks-per-node=1"]
    if args.gpus_per_node:
        sbatch.append(f"--gpus-per-node={args.gpus_per_node}")
    if args.cpus_per_task is not None:
        sbatch.append(f"--cpus-per-task={args.cpus_per_task}")
    if settings["mem"] is not None:
        sbatch.append(f"--mem={settings['mem']}")
    if settings["partition"] is not None:
        sbatch.append(f"--partition={settings['partition']}")
    if settings["account"] is not None:
        sbatch.append(f"--account={settings['account']}")
    sbatch += settings["sbatch"]

    lines = ["#!/bin/bash",
             f"# Written by prepare.py for {cli.one_line(args.directory)}; submit with: sbatch "
             "<this file>"]
    lines += [f"#SBATCH {option}" for option in sbatch]
    lines += ["", "set -e"]
    lines += [command("module", "load", module) for module in settings["modules"]]
    if settings["setup"]:
        lines.append(settings["setup"])

    python = shlex.split(args.python)
    train_command = [*python, script_path("train.py", workdir),
                     f"--strategy={args.strategy}", f"--policy={args.policy}"]
    if args.presets:
        train_command.append(f"--presets={args.presets}")
    train_command.append(f"--directory={args.directory}")
    if args.seed is not None:
        train_command.append(f"--seed={args.seed}")
    train_command += settings["overrides"]
    srun_options = [] if args.cpus_per_task is None else [f"--cpus-per-task={args.cpus_per_task}"]
    lines.append("")
    if nodes > 1:
        lines.append(f"# Training: one worker per node, {nodes} nodes "
                     "(tf.distribute.MultiWorkerMirroredStrategy)")
        lines.append(command("srun", f"--nodes={nodes}", "--ntasks-per-node=1", *srun_options,
                             *train_command))
    else:
        lines.append("# Training")
        lines.append(command(*train_command))

    if settings["problems"]:
        eval_command = [*python, script_path("evaluate.py", workdir),
                        f"--problem={','.join(settings['problems'])}",
                        f"--directory={args.directory}", f"--repeat={args.repeat}",
                        f"--strategy={args.strategy}"]
        lines.append("")
        if nodes > 1:
            # A one-task step: the evaluation runs once, on one node, as a single worker.
            lines.append("# Evaluation: once, on one node")
            lines.append(command("srun", "--nodes=1", "--ntasks=1", *srun_options,
                                 *eval_command))
        else:
            lines.append("# Evaluation")
            lines.append(command(*eval_command))
    return "\n".join(lines) + "\n"


def check_bash(text):
    """``bash -n`` on the script (a bad --setup line would only fail once the job starts)."""
    bash = shutil.which("bash")
    if bash is None:
        return
    done = subprocess.run([bash, "-n"], input=text, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        message = cli.one_line(done.stderr) or "syntax error"
        raise cli.UsageError(f"the script is not valid bash (check --setup): {message}")


def write_script(path, text):
    from l2o.results import atomic_write_text

    atomic_write_text(path, text)
    path.chmod(0o755)


def main(argv):
    if not argv or SCRIPT.wants_help(argv):
        print(SCRIPT.help_text(), end="")
        return 0
    args, _, overrides = SCRIPT.parse(argv)
    if not args.directory:
        raise cli.UsageError("--directory is required: the experiment folder train.py writes, "
                             "e.g. --directory=results/rnnprop/min-max/1")
    cli.check_at_least("nodes", args.nodes)
    cli.check_at_least("gpus-per-node", args.gpus_per_node, least=0)
    cli.check_at_least("cpus-per-task", args.cpus_per_task)
    cli.check_repeat(args.repeat)
    if not shlex.split(args.python):
        raise cli.UsageError("--python is empty; e.g. --python=python3")
    workdir = Path(args.chdir).resolve()
    if not workdir.is_dir():
        raise cli.UsageError(f"--chdir={args.chdir} is not a folder")
    job_name = check_job_name(args.job_name if args.job_name is not None
                              else default_job_name(args.directory))
    settings = {
        "workdir": workdir,
        "job_name": job_name,
        "output": check_word("output", args.output),
        "time": check_time(args.time),
        "mem": check_memory(args.mem),
        "partition": check_word("partition", args.partition),
        "account": check_word("account", args.account),
        "sbatch": check_sbatch_options(args.sbatch),
        "modules": [check_word("modules", m) for m in cli.split_list(args.modules)],
        "setup": check_setup(args.setup),
        "problems": cli.check_problems(args.evaluate) if cli.split_list(args.evaluate) else [],
        "overrides": passed_overrides(argv),
    }
    check_word("chdir", str(workdir))
    check_recipe(args, overrides)
    text = render(args, settings)
    check_bash(text)

    if args.dry_run:
        print(text, end="")
        return 0
    path = Path(args.script) if args.script else Path(args.chdir) / "slurm" / f"{job_name}.sh"
    if path.is_dir():
        raise cli.UsageError(f"--script={path} is a folder; name the script file")
    log_folder = Path(settings["output"]).parent
    if "%" not in str(log_folder):
        (workdir / log_folder).mkdir(parents=True, exist_ok=True)  # SLURM does not create it
    write_script(path, text)
    print(f"Wrote {path} ({args.nodes} node{'s' if args.nodes > 1 else ''}, "
          f"{args.gpus_per_node} GPU(s) per node, time {settings['time']})")
    print(f"Submit it with: sbatch {shlex.quote(str(path))}")
    return 0


if __name__ == "__main__":
    cli.main_wrapper(main)
