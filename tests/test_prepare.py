"""prepare.py, run as a user runs it: the SLURM batch script it writes, and its mistakes.

No TensorFlow op runs: prepare.py checks the recipe with train.py's TensorFlow-free checks
and only writes text.
"""

import json
import os
import shlex
import shutil
import subprocess

import pytest

from test_cli import REPO, run

DIRECTORY = "results/rnnprop/min-max/1"
RECIPE = ("--strategy=curriculum", "--policy=rnnprop",
          "--presets=conv_train,adam,rmsprop,il_more", f"--directory={DIRECTORY}")
OVERRIDES = ("--strategy/num_periods=5",
             "--training/teachers/*={'class_name': 'SGD', 'config': {}}")
SITE = ("--time=2-00:00:00", "--partition=gpu", "--account=proj42", "--cpus-per-task=8",
        "--mem=64G", "--modules=cuda/12.2,python/3.11", "--setup=source venv/bin/activate",
        "--evaluate=conv_train,conv_wider", "--repeat=3")


def prepare(tmp_path, *args):
    done = run("prepare.py", *args, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done


def sbatch_options(text):
    return [line[len("#SBATCH "):] for line in text.splitlines() if line.startswith("#SBATCH ")]


def commands(text):
    """The shell commands of the script body, each split into words as bash would."""
    return [shlex.split(line) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def command_running(text, name):
    """The one command whose words include the repository script ``name``."""
    found = [words for words in commands(text) if str(REPO / name) in words]
    assert len(found) == 1, (name, text)
    return found[0]


def bash_accepts(path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    return done.returncode == 0


def test_one_node_script(tmp_path):
    done = prepare(tmp_path, *RECIPE, *OVERRIDES, *SITE)
    path = tmp_path / "slurm" / "rnnprop-min-max-1.sh"
    assert done.stdout.splitlines()[-1] == "Submit it with: sbatch slurm/rnnprop-min-max-1.sh"
    assert str(path.relative_to(tmp_path)) in done.stdout.splitlines()[0]
    assert os.access(path, os.X_OK)
    assert sorted(p.name for p in (tmp_path / "slurm").iterdir()) == [path.name]  # no temp file
    text = path.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert sbatch_options(text) == [
        "--job-name=rnnprop-min-max-1", f"--chdir={tmp_path.resolve()}",
        "--output=slurm/%x-%j.out", "--time=2-00:00:00", "--nodes=1", "--ntasks-per-node=1",
        "--gpus-per-node=1", "--cpus-per-task=8", "--mem=64G", "--partition=gpu",
        "--account=proj42"]
    body = commands(text)
    assert body[:4] == [["set", "-e"], ["module", "load", "cuda/12.2"],
                        ["module", "load", "python/3.11"], ["source", "venv/bin/activate"]]
    assert command_running(text, "train.py") == [
        "python", str(REPO / "train.py"), *RECIPE, *OVERRIDES]
    assert command_running(text, "evaluate.py") == [
        "python", str(REPO / "evaluate.py"), "--problem=conv_train,conv_wider",
        f"--directory={DIRECTORY}", "--repeat=3", "--strategy=curriculum"]
    assert body.index(command_running(text, "train.py")) \
        < body.index(command_running(text, "evaluate.py"))
    assert "srun" not in text
    assert bash_accepts(path)


def test_two_node_script_starts_one_worker_per_node(tmp_path):
    script = tmp_path / "jobs" / "two.sh"
    done = prepare(tmp_path, *RECIPE, *OVERRIDES, *SITE, "--nodes=2", "--gpus-per-node=4",
                   "--job-name=mm2", f"--script={script}", "--sbatch=--qos=high,--exclusive",
                   "--output=logs/%x-%j.out")
    assert done.stdout.splitlines()[-1] == f"Submit it with: sbatch {script}"
    assert (tmp_path / "logs").is_dir()  # the log folder: SLURM would not create it
    text = script.read_text()
    options = sbatch_options(text)
    assert {"--job-name=mm2", "--output=logs/%x-%j.out", "--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4",
            "--qos=high", "--exclusive"} <= set(options)
    # Every node runs the same train.py command (same folder: a shared filesystem).
    assert command_running(text, "train.py") == [
        "srun", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=8",
        "python", str(REPO / "train.py"), *RECIPE, *OVERRIDES]
    # The evaluation is one task on one node.
    assert command_running(text, "evaluate.py")[:5] == [
        "srun", "--nodes=1", "--ntasks=1", "--cpus-per-task=8", "python"]
    assert bash_accepts(script)


def test_dry_run_prints_the_script_and_writes_nothing(tmp_path):
    shown = prepare(tmp_path, *RECIPE, *OVERRIDES, *SITE, "--nodes=2", "--dry-run").stdout
    assert list(tmp_path.iterdir()) == []
    prepare(tmp_path, *RECIPE, *OVERRIDES, *SITE, "--nodes=2")
    assert (tmp_path / "slurm" / "rnnprop-min-max-1.sh").read_text() == shown


def test_the_script_runs_in_the_repository_with_relative_paths(tmp_path):
    text = run("prepare.py", f"--directory={tmp_path}/x", "--dry-run", f"--chdir={REPO}",
               cwd=tmp_path, timeout=60).stdout
    assert f"#SBATCH --chdir={REPO}" in text
    assert ["python", "train.py", "--strategy=repeat", "--policy=rnnprop",
            f"--directory={tmp_path}/x"] in commands(text)
    assert "evaluate.py" not in text  # no --evaluate: training only


def test_a_folder_holding_another_recipe_is_refused(tmp_path):
    from l2o.config import default_config

    folder = tmp_path / DIRECTORY
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(default_config("repeat", "rnnprop")))
    before = sorted(tmp_path.rglob("*"))
    done = run("prepare.py", *RECIPE, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "holds a different config.json" in done.stderr
    assert sorted(tmp_path.rglob("*")) == before


BAD = [
    (["--nodes=0"], "--nodes must be at least 1"),
    (["--time=25:61:00"], "--time=25:61:00: minutes and seconds must be below 60"),
    (["--time=1.5h"], "--time=1.5h is not a SLURM time limit; valid: MM, MM:SS, HH:MM:SS"),
    (["--strategy=curriculm"], "unknown strategy 'curriculm'; valid: curriculum, repeat, simple"),
    (["--presets=conv_train,nope"], "unknown preset 'nope'"),
    (["--trainig/epsilon=1e-8"], "no key 'trainig'"),
    (["--partiton=gpu"], "did you mean --partition?"),
    (["--evaluate=conv_trian"], "unknown evaluation problem 'conv_trian'"),
    (["--mem=64GB"], "--mem=64GB is not a SLURM memory size"),
    (["--setup=if then"], "the script is not valid bash"),
    (["--job-name=a b"], "--job-name='a b' may only hold"),
    ([], "--directory is required"),
]


@pytest.mark.parametrize("args, fragment", BAD, ids=[" ".join(a) or "no-directory"
                                                     for a, _ in BAD])
def test_a_mistake_is_one_line_and_writes_nothing(tmp_path, args, fragment):
    directory = [] if not args else [f"--directory={DIRECTORY}"]
    done = run("prepare.py", *directory, *args, "--modules=cuda", cwd=tmp_path, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_without_arguments_it_prints_the_help(tmp_path):
    done = prepare(tmp_path)
    assert "| Argument | Default | Meaning |" in done.stdout
    for flag in ("--nodes", "--gpus-per-node", "--time", "--partition", "--modules",
                 "--setup", "--evaluate", "--dry-run"):
        assert flag in done.stdout
    assert list(tmp_path.iterdir()) == []
