"""The command-line scripts, run as a user runs them: subprocesses in a scratch folder.

End to end, on the embedded offline data (``offline``) with the smallest schedules
(``debug_tiny``): the paper's min-max and two-step choice recipes (and the mean recipe's
config), evaluation, a baseline and a plot. Then a table of mistakes: each must fail with
one line on stderr and leave every existing file exactly as it was.
"""

import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

MINMAX = "results/rnnprop/min-max/1"
MEAN = "results/rnnprop/mean/1"
CHOICE_TEACHER = "results/less_choice/base/1"  # where the less_choice teacher preset looks
DISTILLED = "results/rnnprop/choice/1"
MINMAX_ARGS = ("--strategy=curriculum", "--policy=rnnprop",
               "--presets=conv_train,adam,rmsprop,il_more,offline,debug_tiny")
QUICK_EVAL = ("--dataset=mnist_5k", "--repeat=1", "--epochs=1")


def run(script, *args, cwd, timeout=900):
    """Run a script (or ``-m module``) with the repository on the path; CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    for name in ("L2O_VERBOSE", "L2O_TF_LOG", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(name, None)
    command = [sys.executable, "-m", script] if not script.endswith(".py") \
        else [sys.executable, str(REPO / script)]
    return subprocess.run(command + [str(a) for a in args], cwd=cwd, env=env, timeout=timeout,
                          capture_output=True, text=True)


def load_script(name):
    """A script of the repository (``train.py``, ...) imported in-process, for its main()."""
    module_name = f"l2o_script_{Path(name).stem}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[module_name] = module
    return sys.modules[module_name]


def succeed(script, *args, cwd):
    done = run(script, *args, cwd=cwd)
    assert done.returncode == 0, f"{script} {args} failed:\n{done.stdout[-3000:]}\n{done.stderr}"
    return done


def snapshot(root):
    """Every folder and file under ``root`` with the SHA-256 of each file's bytes."""
    state = {}
    for path in sorted(Path(root).rglob("*")):
        key = str(path.relative_to(root))
        state[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


def check_results_tree(directory, metadata_columns):
    """config.json, summary.csv, and a checkpoint and log per summary row (SPEC 3.1)."""
    directory = Path(directory)
    assert (directory / "config.json").is_file()
    summary = pd.read_csv(directory / "summary.csv")
    assert len(summary) > 0
    assert list(summary.columns[:3]) == ["validation", "time", "duration"]
    prefix = "stage" if "stage" in metadata_columns else "period"
    for _, row in summary.iterrows():
        base = f"{prefix}_" + ".".join(str(int(row[c])) for c in metadata_columns)
        assert (directory / "checkpoint" / f"{base}.index").is_file(), base
        assert (directory / "checkpoint" / f"{base}.data-00000-of-00001").is_file(), base
        assert (directory / "log" / f"{base}.npz").is_file(), base
    return summary


# -- the experiments, trained once per module --------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def minmax(work):
    succeed("train.py", *MINMAX_ARGS, f"--directory={MINMAX}", cwd=work)
    return work / MINMAX


@pytest.fixture(scope="module")
def choice_teacher(work):
    # The less_choice teacher preset loads checkpoint period_4.0, the last period of cl_fixed's
    # 5; debug_tiny shortens runs to 2 periods, so the run is given its 5 periods back.
    succeed("train.py", "--strategy=repeat", "--policy=less_choice",
            "--presets=conv_train,cl_fixed,offline,debug_tiny", "--strategy/num_periods=5",
            f"--directory={CHOICE_TEACHER}", cwd=work)
    return work / CHOICE_TEACHER


@pytest.fixture(scope="module")
def distilled(work, choice_teacher):
    succeed("train.py", "--strategy=curriculum", "--policy=rnnprop",
            "--presets=conv_train,less_choice,il_more,offline,debug_tiny",
            f"--directory={DISTILLED}", cwd=work)
    return work / DISTILLED


@pytest.fixture(scope="module")
def evaluated(work, minmax, distilled):
    return succeed("evaluate.py", "--problem=conv_train", *QUICK_EVAL, "--recursive",
                   "--directory=results/rnnprop/min-max,results/rnnprop/choice", cwd=work)


@pytest.fixture(scope="module")
def adam_baseline(work):
    succeed("baseline.py", "--problem=conv_train", "--optimizer=adam", *QUICK_EVAL, cwd=work)
    return work / "baseline" / "adam" / "conv_train.npz"


# -- end to end ------------------------------------------------------------------------------


def test_minmax_recipe_writes_the_results_tree(minmax):
    check_results_tree(minmax, ["stage", "period", "repeat"])
    config = pd.read_json(minmax / "config.json", typ="series")
    assert config["strategy_constructor"] == "CurriculumLearningStrategy"
    assert [t["class_name"] for t in config["training"]["teachers"]] == ["Adam", "RMSProp"]
    assert config["training"]["loss_reduce"] == "reduce_max"
    assert config["problems"][0]["kwargs"]["dataset"] == "mnist_5k"


def test_mean_recipe_reduces_by_the_mean(work):
    # the mean recipe is the min-max one with one more preset: its config is what differs
    # (the reductions themselves are checked by hand in test_train.py)
    succeed("train.py", "--strategy=curriculum", "--policy=rnnprop", "--initialize",
            "--presets=conv_train,adam,rmsprop,il_more,reduce_mean,offline,debug_tiny",
            f"--directory={MEAN}", cwd=work)
    config = pd.read_json(work / MEAN / "config.json", typ="series")
    assert config["training"]["loss_reduce"] == "reduce_mean"
    assert [t["class_name"] for t in config["training"]["teachers"]] == ["Adam", "RMSProp"]


def test_choice_recipe_distils_the_trained_teacher(choice_teacher, distilled):
    summary = check_results_tree(choice_teacher, ["period", "repeat"])
    assert 4 in set(summary["period"])
    assert (choice_teacher / "checkpoint" / "period_4.0.index").is_file()
    check_results_tree(distilled, ["stage", "period", "repeat"])
    teacher = pd.read_json(distilled / "config.json", typ="series")["training"]["teachers"]
    assert teacher == [{"class_name": "__load__", "directory": CHOICE_TEACHER,
                        "checkpoint": "period_4.0"}]


def test_training_again_resumes_and_changes_nothing(work, minmax):
    before = snapshot(minmax)
    done = succeed("train.py", *MINMAX_ARGS, f"--directory={MINMAX}", cwd=work)
    assert "is finished" in done.stdout
    done = succeed("resume.py", MINMAX, cwd=work)
    assert "is finished" in done.stdout
    assert snapshot(minmax) == before


def test_initialize_writes_only_the_config(work):
    done = succeed("train.py", "--presets=conv_train,offline,debug_tiny", "--initialize",
                   "--directory=initialized", cwd=work)
    assert "Initialized" in done.stdout
    assert sorted(p.name for p in (work / "initialized").iterdir()) == ["config.json"]


def test_evaluate_and_baseline_write_the_same_arrays(work, evaluated, adam_baseline):
    baseline = np.load(adam_baseline)
    keys = {"batch_loss", "batch_time", "loss", "sparse_categorical_accuracy", "val_loss",
            "val_sparse_categorical_accuracy", "epoch_time", "settings"}
    assert set(baseline.files) == keys
    assert json.loads(str(baseline["settings"]))["optimizer"] == "adam"
    batches = 4000 // 128  # mnist_5k has 4,000 training digits; one epoch
    assert baseline["batch_loss"].shape == (1, batches) and baseline["loss"].shape == (1, 1)
    for experiment in (MINMAX, DISTILLED):
        files = sorted((work / experiment / "eval" / "conv_train").glob("*.npz"))
        assert len(files) == 1, files
        assert (work / experiment / "checkpoint" / f"{files[0].stem}.index").is_file()
        assert str(Path(experiment) / "eval" / "conv_train" / files[0].name) in evaluated.stdout
        result = np.load(files[0])
        assert set(result.files) == keys
        settings = json.loads(str(result["settings"]))
        assert (settings["warmup"], settings["epochs"], settings["dataset"]) == (0, 1, "mnist_5k")
        assert "warmup=0" in evaluated.stdout  # the protocol is printed too
        for key in keys - {"settings"}:
            assert result[key].shape == baseline[key].shape, key
            assert result[key].dtype == baseline[key].dtype, key
            assert np.all(np.isfinite(result[key])), key


def test_plot_draws_results_next_to_the_baseline(work, evaluated, adam_baseline):
    out = work / "figures" / "conv_train.png"
    done = succeed("l2o.plot", "--problem=conv_train", f"--results={MINMAX},{DISTILLED}",
                   "--baselines=adam", "--baseline-root=baseline", "--window=3", f"--out={out}",
                   cwd=work)
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == PNG_MAGIC


def test_score_ranks_a_checkpoint_against_rules_as_summary_csv_logs_them(work, minmax):
    done = succeed("l2o.score", f"--directory={MINMAX}", MINMAX, "adam:0.005", "sgd:0.2",
                   cwd=work)
    lines = done.stdout.splitlines()[1:]
    summary = pd.read_csv(minmax / "summary.csv")
    logged = summary[summary["stage"] == 0]["validation_adam"].iloc[0]
    adam = next(line for line in lines if line.endswith("adam (lr 0.005)"))
    assert "(rule)" in adam
    assert float(adam.split()[0]) == pytest.approx(logged, rel=1e-3, abs=1e-4)
    assert len(lines) == 3 and any(MINMAX in line for line in lines)


@pytest.mark.parametrize("module, args", [
    ("l2o.score", ["--directory=x", "--index=-1", "adam"]),
    ("l2o.score", ["--directory=x", "--seed=abc", "adam"]),
    ("l2o.score", ["--directory=x", "--epochs=0", "adam"]),
    ("l2o.score", ["adam"]),
    ("l2o.plot.__main__", ["--problem=conv_train", "--window=0"]),
    ("l2o.plot.__main__", ["--problem=conv_train", "--epochs=ten"]),
])
def test_the_python_m_tools_reject_bad_values_in_one_line(module, args, capfd):
    """l2o.score and l2o.plot share l2o.cli's parser: exit 2 and one error line, before
    anything is read or traced."""
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as done:
        sys.exit(main(args))
    assert done.value.code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error: " in lines[0], lines


# -- help and imports ------------------------------------------------------------------------


@pytest.mark.parametrize("script, args, flags", [
    ("evaluate.py", [], ["--problem", "--directory", "--recursive", "--periods", "--stages",
                         "--override", "--dataset", "--epochs"]),
    ("train.py", ["--help"], ["--directory", "--strategy", "--policy", "--presets", "--vram",
                              "--initialize", "--list-presets"]),
    ("baseline.py", ["-h"], ["--problem", "--optimizer", "--repeat", "--keras", "--directory"]),
    ("resume.py", ["--help"], ["<directory>", "--vgpu", "--cpu", "--gpus"]),
])
def test_help_prints_the_argument_table(tmp_path, script, args, flags):
    done = run(script, *args, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert "| Argument | Default | Meaning |" in done.stdout
    for flag in flags:
        assert flag in done.stdout, flag
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["train.py", "resume.py", "evaluate.py", "baseline.py",
                                    "gridsearch.py"])
def test_the_readme_shows_each_script_s_help_table(script):
    assert load_script(script).SCRIPT.table() in (REPO / "README.md").read_text()


def test_list_presets_names_every_preset(tmp_path):
    done = run("train.py", "--list-presets", cwd=tmp_path)
    assert done.returncode == 0
    names = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert {"conv_train", "adam", "il_more", "cl_fixed", "fgsm", "offline", "debug_tiny"} <= names


def test_importing_l2o_does_not_import_tensorflow(tmp_path):
    code = ("import sys, l2o, l2o.cli, l2o.config, l2o.strategy, l2o.plot\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "assert callable(l2o.build) and issubclass(l2o.L2OError, ValueError)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert done.returncode == 0, done.stderr


# -- mistakes --------------------------------------------------------------------------------

# (script, arguments, a fragment of the error line). "{work}" is the scratch folder (also
# the working directory) and "{minmax}" the trained min-max experiment inside it.
TRAIN_MINMAX = MINMAX_ARGS + ("--directory={minmax}",)
BAD_INVOCATIONS = [
    ("train.py", ["--presets=conv_train,nope", "--directory={work}/new"], "unknown preset 'nope'"),
    ("train.py", ["--policy=rnnpro", "--directory={work}/new"], "unknown policy 'rnnpro'"),
    ("train.py", ["--strategy=curriculm", "--directory={work}/new"],
     "unknown strategy 'curriculm'"),
    ("train.py", ["--trainig/epsilon=1e-8", "--directory={work}/new"], "no key 'trainig'"),
    ("train.py", ["--presets=conv_train", "--policy/layers=[20,", "--directory={work}/new"],
     "--policy/layers=[20, is not a valid Python literal"),
    ("train.py", ["--presets=conv_train", "--policy/layers=abc", "--directory={work}/new"],
     "override policy/layers: expected a list (it replaces [20, 20]), got 'abc'"),
    ("train.py", ["--training/parameter_scale_spread=abc", "--directory={work}/new"],
     "override training/parameter_scale_spread: expected a number (it replaces 3.0)"),
    ("train.py", ["--directroy={work}/new"], "did you mean --directory?"),
    ("train.py", ["--strategy/unroll_lenght=5", "--directory={work}/new"],
     "no key 'unroll_lenght' in strategy"),
    ("train.py", ["--vgpu=two", "--directory={work}/new"], "--vgpu expects an integer"),
    ("train.py", ["--cpu=maybe", "--directory={work}/new"], "--cpu expects true or false"),
    ("train.py", ["--gpus=7", "--presets=conv_train,offline,debug_tiny",
                  "--directory={work}/new"], "no GPU with index 7"),
    ("train.py", ["junk", "--directory={work}/new"], "unexpected argument 'junk'"),
    ("train.py", ["--strategy=curriculum", "--policy=rnnprop",
                  "--presets=conv_train,adam,rmsprop,offline,debug_tiny",
                  "--directory={minmax}"], "holds a different config.json"),
    ("train.py", [*TRAIN_MINMAX, "--strategy/num_periods=3"],
     "strategy/num_periods (saved 2, now 3)"),
    ("train.py", ["--policy/perturbation/config/steps=3", "--directory={work}/new"],
     "set by the preset fgsm"),
    ("train.py", ["--policy=less_choice", "--presets=fgsm", "--directory={work}/new"],
     "preset 'fgsm' does not fit"),
    ("train.py", ["--presets=tiny", "--strategy=repeat", "--directory={work}/new"],
     "'num_stages' exists with --strategy=curriculum"),
    ("train.py", ["--strategy/depth={{'type': 'bogus'}}", "--directory={work}/new"],
     "unknown integer schedule type 'bogus'"),
    ("train.py", ["--strategy/num_periods=1.5", "--directory={work}/new"],
     "'num_periods' must be a whole number"),
    ("train.py", ["--presets=conv_train,offline,debug_tiny",
                  "--training/teachers/*={{'class_name': 'Adamm', 'config': {{}}}}",
                  "--directory={work}/new"], "Adamm"),
    ("train.py", ["--strategy=curriculum", "--presets=conv_train,more_choice,offline,debug_tiny",
                  "--directory={work}/new"], "results/more_choice/base/1"),
    ("evaluate.py", ["--problem=conv_trian", "--directory={minmax}"],
     "unknown evaluation problem 'conv_trian'"),
    ("evaluate.py", ["--repeat=-1", "--directory={minmax}"], "--repeat must be at least 1"),
    ("evaluate.py", ["--repeat=abc", "--directory={minmax}"], "--repeat expects an integer"),
    ("evaluate.py", ["--directory={work}"], "config.json does not exist"),
    ("evaluate.py", ["--directory={minmax}", "--recursive"], "no sub-folder"),
    ("evaluate.py", ["--directory={minmax}", "--periods=99"], "no period 99"),
    ("evaluate.py", ["--directory={minmax}", "--strategy=curriculum", "--stages=7"],
     "no stage 7"),
    ("evaluate.py", ["--directory={minmax}", "--stages=1"], "--stages needs --strategy=curriculum"),
    ("evaluate.py", ["--directory={minmax}", "--strategy=curriculum", "--stages=0,1",
                     "--periods=1"], "paired one to one"),
    ("evaluate.py", ["--directory={minmax}", "--strategy=cur"], "unknown strategy 'cur'"),
    ("evaluate.py", ["--directory={minmax}", "--policy/layers=[5]"], "add --override"),
    ("evaluate.py", ["--directory={minmax}", "--override", "--policy/layerz=[5]"],
     "no key 'layerz' in policy"),
    ("baseline.py", ["--keras=false", "--optimizer=momentum", "--directory={work}/bl"],
     "exists only as a Keras optimizer"),
    ("baseline.py", ["--optimizer=adamw", "--directory={work}/bl"],
     "unknown baseline optimizer 'adamw'"),
    ("baseline.py", ["--problems=conv_train", "--directory={work}/bl"],
     "did you mean --problem?"),
    ("baseline.py", ["adam", "--directory={work}/bl"], "unexpected argument 'adam'"),
    ("baseline.py", ["--epochs=0", "--directory={work}/bl"], "--epochs must be at least 1"),
    ("resume.py", [], "missing <directory>"),
    ("resume.py", ["{work}"], "config.json does not exist"),
    ("resume.py", ["{minmax}", "--vgpu=0"], "--vgpu must be at least 1"),
    ("resume.py", ["{minmax}", "extra"], "unexpected argument 'extra'"),
]


@pytest.mark.parametrize(
    "script, args, fragment", BAD_INVOCATIONS,
    ids=[f"{s}:{' '.join(a)[:60]}" for s, a, _ in BAD_INVOCATIONS])
def test_a_mistake_is_one_line_and_touches_nothing(work, minmax, script, args, fragment):
    args = [a.format(work=work, minmax=minmax) for a in args]
    before = snapshot(work)
    done = run(script, *args, cwd=work, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert snapshot(work) == before
