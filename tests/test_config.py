"""Config defaults, presets, the override engine, config diffs and schedules."""

import json
import math

import pytest

from l2o.config import (
    POLICIES, STRATEGIES, apply_overrides, apply_presets, default_config, diff_configs,
    expand_presets, float_schedule, get_preset, integer_schedule, list_presets, parse_flags,
    parse_value, unroll_weights)
from l2o.errors import L2OError


def one_line(err):
    text = str(err.value)
    assert "\n" not in text and text
    return text


# -- defaults ------------------------------------------------------------------------------


def test_default_config_is_a_deep_copy():
    first = default_config("curriculum", "less_choice")
    first["training"]["teachers"].append("x")
    first["policy"]["pool"][0]["config"]["learning_rate"] = 99.0
    first["strategy"]["depth"]["values"].append(99)
    second = default_config("curriculum", "less_choice")
    assert second["training"]["teachers"] == []
    assert second["policy"]["pool"][0]["config"]["learning_rate"] == 0.005
    assert second["strategy"]["depth"]["values"] == [1, 2, 5, 10, 20]


@pytest.mark.parametrize("strategy,policy,word", [
    ("curiculum", "rnnprop", "strategy"), ("repeat", "rnnpro", "policy")])
def test_default_config_unknown_names(strategy, policy, word):
    with pytest.raises(L2OError) as err:
        default_config(strategy, policy)
    text = one_line(err)
    assert f"unknown {word}" in text
    assert ("simple" in text) if word == "strategy" else ("less_choice" in text)


def test_default_numbers_match_the_reference():
    config = default_config()  # repeat + rnnprop
    assert list(config) == ["training", "optimizer", "problems", "strategy_constructor",
                            "strategy", "policy_constructor", "policy"]
    assert config["training"]["gradient_clipping"] == {
        "class_name": "AdaptiveGC", "config": {"clip_ratio": 0.1, "epsilon": 1e-3}}
    assert config["problems"][0]["kwargs"]["shuffle_buffer"] == 16384
    assert config["strategy"]["depth"] == {"type": "list", "values": [1, 2, 5]}
    assert config["strategy"]["repeat_threshold"] == 0.8
    assert config["policy"]["unit_forget_bias"] is True
    simple = STRATEGIES["simple"]["strategy"]
    assert (simple["unroll_len"], simple["depth"], simple["num_periods"]) == (20, 25, 25)
    assert POLICIES["adam"]["policy"] == {
        "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-10,
        "trainable": True}
    large = POLICIES["more_choice"]["policy"]["pool"]
    assert [p["class_name"] for p in large] == [
        "SGD", "Momentum", "RMSProp", "Adam", "PowerSign", "AddSign"]
    assert "epsilon" not in large[2]["config"]
    assert [p["class_name"] for p in POLICIES["less_choice_sgd"]["policy"]["pool"]] == [
        "SGD", "Adam"]
    # LSTM-based policies get the cell kwargs; the analytical ones do not.
    assert "recurrent_initializer" in POLICIES["dmoptimizer"]["policy"]
    assert "recurrent_initializer" not in POLICIES["sgd"]["policy"]
    assert "scale_basic" not in POLICIES and "scale_hierarchical" not in POLICIES


def test_every_default_config_is_json():
    for strategy in STRATEGIES:
        for policy in POLICIES:
            config = default_config(strategy, policy)
            assert json.loads(json.dumps(config)) == config


# -- presets -------------------------------------------------------------------------------

# Presets that need a particular strategy or policy; every other one fits repeat + rnnprop.
PRESET_TARGETS = {"hard": ("repeat", "less_choice"), "tiny": ("curriculum", "rnnprop"),
                  "nowup": ("curriculum", "rnnprop"), "pool_cpu": ("repeat", "more_choice")}


def test_preset_names_and_descriptions():
    presets = list_presets()
    expected = {
        "sgd", "momentum", "adam", "rmsprop", "powersign", "addsign", "more_choice",
        "more_shallow", "less_choice", "less_choice_sgd", "less_shallow", "conv_train",
        "conv_cifar", "conv_avg", "debug", "log_teachers", "log_losses", "il_adjusted",
        "il_more", "il_staged", "cl_fixed", "half_depth", "hard", "noscale", "reduce_mean",
        "nowup", "fgsm", "pgd", "cgd", "gaussian", "gaussian_rel", "inoise_1e-1",
        "inoise_1e-2", "inoise_1e-3", "offline", "tiny", "debug_tiny", "cpu", "cl_cpu",
        "more_choice_cpu", "less_choice_cpu", "pool_cpu", "lean_validation"}
    assert set(presets) == expected
    assert all(isinstance(d, str) and d for d in presets.values())


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_applies_to_a_matching_default(name):
    base = default_config(*PRESET_TARGETS.get(name, ("repeat", "rnnprop")))
    config = apply_presets(base, name)
    assert config != base  # it changed something
    assert json.loads(json.dumps(config)) == config


@pytest.mark.parametrize("strategy", ["simple", "repeat", "curriculum"])
def test_debug_tiny_fits_every_strategy(strategy):
    config = apply_presets(default_config(strategy), "debug_tiny")
    s = config["strategy"]
    assert (s["unroll_len"], s["depth"], s["epochs"], s["num_periods"]) == (5, 1, 1, 2)
    assert s["validation_epochs"] == 1
    assert set(s) == set(default_config(strategy)["strategy"])  # no foreign keys added
    if strategy != "simple":
        assert s["max_repeat"] == 1
    if strategy == "curriculum":
        assert s["num_stages"] == 2
    else:
        assert s["validation_unroll"] == 5 and s["validation_depth"] == 1


def test_tiny_is_a_curriculum_preset():
    s = apply_presets(default_config("curriculum"), "tiny")["strategy"]
    assert (s["num_stages"], s["num_periods"], s["unroll_len"]) == (2, 1, 10)
    assert s["depth"] == {"type": "list", "values": [1, 2]}
    with pytest.raises(L2OError) as err:
        apply_presets(default_config("repeat"), "tiny")
    text = one_line(err)
    assert "preset 'tiny'" in text and "--strategy=curriculum" in text


def test_offline_switches_the_dataset_after_a_problem_preset():
    config = apply_presets(default_config(), "conv_train,offline")
    assert config["problems"][0]["target"] == "conv_classifier"
    assert config["problems"][0]["kwargs"]["dataset"] == "mnist_5k"


def test_teacher_presets_append_and_load_paths_use_underscores():
    config = apply_presets(default_config(), "adam,less_choice,rmsprop")
    teachers = config["training"]["teachers"]
    assert [t["class_name"] for t in teachers] == ["Adam", "__load__", "RMSProp"]
    assert teachers[1] == {"class_name": "__load__", "directory": "results/less_choice/base/1",
                           "checkpoint": "period_4.0"}
    for name in ("more_choice", "more_shallow", "less_choice", "less_choice_sgd",
                 "less_shallow"):
        assert "-" not in get_preset(name)[0][1]["directory"]


def test_min_max_recipe_resolves_to_the_worked_example():
    config = apply_overrides(
        default_config("curriculum", "rnnprop"),
        expand_presets("conv_train,adam,rmsprop,il_more"))
    training = config["training"]
    assert training["teachers"] == [
        {"class_name": "Adam",
         "config": {"learning_rate": 0.005, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-10}},
        {"class_name": "RMSProp",
         "config": {"learning_rate": 0.005, "rho": 0.9, "epsilon": 1e-10}}]
    assert training["step_callbacks"] == ["WhichTeacherCountCallback"]
    assert training["stack_stats"] == ["meta_loss", "imitation_loss", "teacher_counts"]
    assert training["mean_stats"] == ["meta_loss", "imitation_loss"]
    assert (training["loss_reduce"], training["il_mode"], training["unroll_weight"]) == (
        "reduce_max", "sum", "mean")
    assert config["problems"] == [{
        "target": "conv_classifier", "args": [],
        "kwargs": {"layers": [[16, 3, 1], 2, [32, 5, 1], 2], "head_type": "dense",
                   "activation": "relu", "dataset": "mnist", "batch_size": 128,
                   "shuffle_buffer": 16384}}]
    assert config["strategy_constructor"] == "CurriculumLearningStrategy"
    assert config["strategy"] == {
        "validation_problems": None, "validation_seed": 12345, "num_stages": 4,
        "num_periods": 5, "num_chances": 5, "unroll_len": 100,
        "depth": {"type": "list", "values": [1, 2, 5, 10, 20]}, "epochs": 10,
        "annealing_schedule": {"type": "list", "values": [0.2, 0.1, 0.05, 0.02]},
        "validation_epochs": 10, "max_repeat": 4, "repeat_threshold": 0.5, "warmup": 1,
        "warmup_rate": 0.05, "name": "CurriculumLearningStrategy"}
    assert config["policy_constructor"] == "RNNPropOptimizer"
    assert list(config["policy"])[:9] == [
        "layers", "beta_1", "beta_2", "alpha", "epsilon", "warmup_lstm_update",
        "perturbation", "input_noise", "name"]
    assert config["optimizer"]["config"]["learning_rate"] == 0.001


def test_unknown_and_empty_preset_lists():
    assert expand_presets("") == [] and expand_presets(" , ") == []
    with pytest.raises(L2OError) as err:
        expand_presets("conv_train,il_mroe")
    text = one_line(err)
    assert "unknown preset 'il_mroe'" in text and "il_more" in text


def test_get_preset_returns_fresh_copies():
    first = get_preset("cl_fixed")
    first[0][1]["num_periods"] = 1000
    assert get_preset("cl_fixed")[0][1]["num_periods"] == 5


def test_preset_folder_from_environment(tmp_path, monkeypatch):
    (tmp_path / "mine.json").write_text(json.dumps(
        {"short": {"description": "d", "overrides": [[["strategy", "epochs"], 3]]}}))
    monkeypatch.setenv("L2O_PRESETS", str(tmp_path))
    assert list(list_presets()) == ["short"]
    assert apply_presets(default_config(), "short")["strategy"]["epochs"] == 3


# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("3", 3), ("0.1", 0.1), ("1e-3", 1e-3), ("[20]", [20]), ("True", True), ("None", None),
    ("{'type': 'list', 'values': [1, 2]}", {"type": "list", "values": [1, 2]}),
    ("reduce_mean", "reduce_mean"), ("true", True), ("false", False), ("null", None),
    ("a=b", "a=b"), ("__import__('os')", "__import__('os')"), (None, None)])
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


KNOWN = {"directory": (str, "weights"), "cpu": (bool, False), "vgpu": (int, 1),
         "vram": (float, 12000.0), "initialize": (bool, False)}


def test_parse_flags_splits_known_flags_and_overrides():
    flags, overrides = parse_flags(
        ["--directory=results/a=b", "--cpu", "--vgpu=2",
         "--training/teachers/*={'class_name': 'SGD', 'config': {}}",
         "--problems/0/kwargs/dataset=mnist", "--strategy/validation_problems"], KNOWN)
    assert flags == {"directory": "results/a=b", "cpu": True, "vgpu": 2, "vram": 12000.0,
                     "initialize": False}
    assert overrides == [
        (["training", "teachers", "*"], {"class_name": "SGD", "config": {}}),
        (["problems", "0", "kwargs", "dataset"], "mnist"),
        (["strategy", "validation_problems"], None)]


@pytest.mark.parametrize("word,value", [
    ("true", True), ("Yes", True), ("1", True), ("false", False), ("no", False), ("0", False)])
def test_parse_flags_bool_words(word, value):
    assert parse_flags([f"--cpu={word}"], KNOWN)[0]["cpu"] is value


@pytest.mark.parametrize("argv,fragment", [
    (["--vgpu=two"], "--vgpu expects an integer, got 'two'"),
    (["--vram=lots"], "--vram expects a number"),
    (["--cpu=maybe"], "--cpu expects true or false"),
    (["--directory"], "--directory needs a value"),
    (["results/x"], "unexpected argument 'results/x'"),
    (["--=3"], "has no name"),
    (["--policy//layers=[1]"], "empty element"),
])
def test_parse_flags_errors(argv, fragment):
    with pytest.raises(L2OError) as err:
        parse_flags(argv, KNOWN)
    assert fragment in one_line(err)


# -- overrides -----------------------------------------------------------------------------


def test_overrides_append_index_and_keep_the_input():
    base = default_config()
    config = apply_overrides(base, [
        (["training", "stack_stats", "*"], "teacher_loss"),
        (["problems", "0"], {"target": "t", "args": [], "kwargs": {}}),
        (["strategy", "depth", "values", 1], 7),
        ("policy/layers/1", 30),
        (["optimizer", "config", "epsilon"], 1e-7),       # new key inside 'config': allowed
        (["problems", 0, "kwargs", "new_kwarg"], 1),      # new key inside 'kwargs': allowed
    ])
    assert config["training"]["stack_stats"][-1] == "teacher_loss"
    assert config["problems"][0] == {"target": "t", "args": [], "kwargs": {"new_kwarg": 1}}
    assert config["strategy"]["depth"]["values"] == [1, 7, 5]
    assert config["policy"]["layers"] == [20, 30]
    assert config["optimizer"]["config"]["epsilon"] == 1e-7
    assert base == default_config()


def test_appended_values_are_not_shared():
    value = {"class_name": "SGD", "config": {"learning_rate": 0.2}}
    config = apply_overrides(default_config(), [(["training", "teachers", "*"], value)])
    value["config"]["learning_rate"] = 5.0
    assert config["training"]["teachers"][0]["config"]["learning_rate"] == 0.2


def test_optional_elements_skip_missing_keys():
    overrides = [(["strategy", "num_stages?"], 2), (["strategy", "epochs?"], 3)]
    repeat = apply_overrides(default_config("repeat"), overrides)
    assert "num_stages" not in repeat["strategy"] and repeat["strategy"]["epochs"] == 3
    assert apply_overrides(default_config("curriculum"), overrides)["strategy"]["num_stages"] == 2


def test_overrides_may_add_the_optional_strategy_settings_only():
    config = apply_overrides(default_config("repeat"), [(["strategy", "validation_teachers"],
                                                         False)])
    assert config["strategy"]["validation_teachers"] is False
    assert "validation_teachers" not in default_config("repeat")["strategy"]
    with pytest.raises(L2OError, match="no key 'validation_teacher' in strategy"):
        apply_overrides(default_config("repeat"), [(["strategy", "validation_teacher"], False)])


@pytest.mark.parametrize("path,fragments", [
    (["strategy", "num_stages"], ["no key 'num_stages' in strategy", "valid: ",
                                  "--strategy=curriculum"]),
    (["training", "loss_reduc"], ["no key 'loss_reduc'", "loss_reduce"]),
    (["trainig", "epsilon"], ["no key 'trainig' in the top level", "training"]),
    (["policy", "perturbation", "config", "steps"], ["policy/perturbation is None",
                                                     "fgsm", "pgd"]),
    (["training", "epsilon", "x"], ["training/epsilon is a float"]),
    (["problems", 3, "target"], ["index 3 is out of range", "valid: 0..0"]),
    (["training", "teachers", 0], ["out of range", "the list is empty"]),
    (["problems", "first"], ["must be an index"]),
    (["training", "teachers", "*", "x"], ["may only be the last element"]),
    (["training", "epsilon", "*"], ["'*' appends to a list"]),
    (["optimizer", "config", "x", "y"], ["no key 'x' in optimizer/config"]),
])
def test_override_errors_are_one_line(path, fragments):
    with pytest.raises(L2OError) as err:
        apply_overrides(default_config(), [(path, 1)])
    text = one_line(err)
    for fragment in fragments:
        assert fragment in text, text


# -- override values of the wrong kind --------------------------------------------------------

def _nodes(value, path=()):
    """Every ``(path, value)`` below ``value``: dicts and lists themselves, and their leaves."""
    if path:
        yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, path + (index,))


# A malformed command-line value for a setting of each kind ("3" parses to the number 3).
MALFORMED = {bool: "abc", int: "abc", float: "abc", str: "3", list: "abc", dict: "abc"}


def _every_typed_setting():
    """``(strategy, policy, path, kind)`` once per distinct setting of the default configs.

    None defaults take anything; "strategy" and "policy" themselves are script flags."""
    seen = {}
    for strategy in STRATEGIES:
        for policy in POLICIES:
            for path, value in _nodes(default_config(strategy, policy)):
                if value is not None and path not in (("strategy",), ("policy",)):
                    seen.setdefault(("/".join(map(str, path)), type(value)), (strategy, policy))
    return [(s, p, path, kind) for (path, kind), (s, p) in seen.items()]


def _resolve(argv):
    """train.py's config from argv, as train.py resolves it before TensorFlow starts."""
    from test_cli import load_script

    train = load_script("train.py")
    args, _, overrides = train.SCRIPT.parse(argv)
    return train.resolve_config(args, overrides)


@pytest.mark.parametrize("strategy,policy,path,kind", _every_typed_setting(),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_malformed_override_value_is_one_line_naming_the_key(strategy, policy, path, kind):
    value = MALFORMED[kind]
    with pytest.raises(L2OError) as err:
        _resolve([f"--strategy={strategy}", f"--policy={policy}", f"--{path}={value}"])
    text = one_line(err)
    setting = path.split("/")[1] if path.startswith("strategy/") else path
    assert setting in text and ("3" if kind is str else "'abc'") in text, text


def test_a_malformed_override_names_what_is_valid():
    with pytest.raises(L2OError) as err:
        _resolve(["--training/parameter_scale_spread=abc"])
    assert one_line(err) == ("override training/parameter_scale_spread: expected a number "
                             "(it replaces 3.0), got 'abc'")
    with pytest.raises(L2OError, match="policy/kernel_initializer: expected text or a dict"):
        _resolve(["--policy/kernel_initializer=[1]"])
    with pytest.raises(L2OError, match=r"policy/layers/0: expected a whole number .*got 1\.5"):
        _resolve(["--policy/layers/0=1.5"])  # a layer of 1.5 units


@pytest.mark.parametrize("argv,path,value", [
    (["--training/huber_delta=0.5"], "training/huber_delta", 0.5),
    (["--strategy/depth=5"], "strategy/depth", 5),                    # schedules: a number,
    (["--strategy/unroll_len=[5, 10]"], "strategy/unroll_len", [5, 10]),   # a list
    (["--strategy/annealing_schedule={'type': 'exponential', 'alpha': 0.1}"],  # or a dict
     "strategy/annealing_schedule", {"type": "exponential", "alpha": 0.1}),
    (["--policy/perturbation={'class_name': 'RandomPerturbation', 'config': {}}"],  # None
     "policy/perturbation", {"class_name": "RandomPerturbation", "config": {}}),
    (["--policy=choice_large", "--policy/learning_rate=0.5"], "policy/learning_rate", 0.5),
    (["--presets=fgsm", "--policy/perturbation/config/step_size=0.01"],
     "policy/perturbation/config/step_size", 0.01),
    (["--policy/layers=(10,)"], "policy/layers", (10,)),
    (["--policy/kernel_initializer={'class_name': 'GlorotUniform', 'config': {'seed': 1}}"],
     "policy/kernel_initializer", {"class_name": "GlorotUniform", "config": {"seed": 1}}),
    (["--policy/activation=None"], "policy/activation", None),
    (["--training/gradient_clipping=None"], "training/gradient_clipping", None),
    (["--optimizer=None"], "optimizer", None),
    (["--training/teachers/*={'class_name': 'SGD', 'config': {}}"], "training/teachers/0",
     {"class_name": "SGD", "config": {}}),
])
def test_values_of_another_kind_that_the_setting_takes_are_kept(argv, path, value):
    node = _resolve(argv)
    for key in path.split("/"):
        node = node[int(key) if isinstance(node, list) else key]
    assert node == value


def test_a_whole_number_for_a_float_is_stored_as_a_float():
    # Keras' optimizers refuse learning_rate=1 (an int): the config holds 1.0
    config = _resolve(["--optimizer/config/learning_rate=1", "--training/epsilon=0"])
    assert type(config["optimizer"]["config"]["learning_rate"]) is float
    assert config["training"]["epsilon"] == 0.0 and type(config["training"]["epsilon"]) is float


# -- config diffs --------------------------------------------------------------------------


def test_diff_configs_both_directions_and_number_tolerance():
    saved = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": True, "f": 0}
    new = {"a": 1.0, "b": {"c": [1, 2, 3], "d": "y"}, "added": None, "f": False}
    diffs = diff_configs(saved, new)
    assert "b/d: saved 'x', now 'y'" in diffs
    assert "gone: saved True, now missing" in diffs
    assert "added: saved missing, now None" in diffs
    assert "f: saved 0, now False" in diffs
    assert any(d.startswith("b/c: saved [1, 2] (2 items)") for d in diffs)
    assert len(diffs) == 5  # a: 1 vs 1.0 matches
    assert diff_configs(default_config(), json.loads(json.dumps(default_config()))) == []
    assert diff_configs({"l": [{"x": 1}]}, {"l": [{"x": 2}]}) == ["l/0/x: saved 1, now 2"]


# -- schedules -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec,expected", [
    (0.5, [0.5, 0.5]),
    (0, [0.0, 0.0]),  # ints are fine for float schedules (reference bug fixed)
    ({"type": "constant", "value": 2}, [2.0, 2.0]),
    ({"type": "list", "values": [0.2, 0.1]}, [0.2, 0.1, 0.1]),
    ([1.0, 0.0], [1.0, 0.0, 0.0]),
    ({"type": "exponential", "alpha": -0.5}, [1.0, math.exp(-0.5), math.exp(-1.0)]),
    ({"type": "exponential", "alpha": 1.0, "base": 2.0}, [2.0, 2.0 * math.exp(-1.0)]),
    ({"type": "geometric", "coefficient": 3.0, "base": 0.5}, [3.0, 1.5, 0.75]),
])
def test_float_schedules(spec, expected):
    schedule = float_schedule(spec)
    assert [schedule(i) for i in range(len(expected))] == pytest.approx(expected)
    assert all(isinstance(schedule(i), float) for i in range(len(expected)))


@pytest.mark.parametrize("spec,expected", [
    (3, [3, 3]),
    (2.0, [2, 2]),
    ({"type": "constant", "value": 4}, [4, 4]),
    ({"type": "list", "values": [1, 2, 5]}, [1, 2, 5, 5, 5]),
    ({"type": "geometric", "coefficient": 1, "base": 2}, [1, 2, 4, 8]),
])
def test_integer_schedules(spec, expected):
    schedule = integer_schedule(spec)
    values = [schedule(i) for i in range(len(expected))]
    assert values == expected and all(type(v) is int for v in values)


def test_callable_schedules_pass_through():
    def custom(i):
        return i * 2

    assert float_schedule(custom) is custom and integer_schedule(custom) is custom


@pytest.mark.parametrize("make,spec,fragment", [
    (float_schedule, {"type": "cosine"}, "unknown float schedule type 'cosine'"),
    (integer_schedule, {"type": "exponential", "alpha": 1}, "unknown integer schedule type"),
    (integer_schedule, 2.5, "whole number"),
    (float_schedule, True, "must be a number"),
    (float_schedule, "fast", "must be a number"),
    (float_schedule, {"type": "list", "values": []}, "non-empty"),
    (float_schedule, {"type": "constant"}, "needs the key 'value'"),
])
def test_schedule_errors(make, spec, fragment):
    with pytest.raises(L2OError) as err:
        make(spec)
    assert fragment in one_line(err)


def test_unroll_weights():
    n = 4
    assert [unroll_weights("sum")(i, n) for i in range(n)] == [1.0] * 4
    assert [unroll_weights("mean")(i, n) for i in range(n)] == [0.25] * 4
    assert [unroll_weights("final")(i, n) for i in range(n)] == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(L2OError) as err:
        unroll_weights("median")
    assert "final" in one_line(err)


def test_unroll_weights_inside_tf_function():
    import tensorflow as tf

    final, mean = unroll_weights("final"), unroll_weights("mean")

    @tf.function
    def weights(n):
        return tf.stack([final(tf.constant(i), n) for i in range(3)]), mean(0, n)

    stacked, m = weights(tf.constant(3))
    assert stacked.numpy().tolist() == [0.0, 0.0, 1.0]
    assert float(m) == pytest.approx(1 / 3)


def test_cpu_recipe_is_a_valid_curriculum_validated_without_warmup():
    from l2o.strategy import CurriculumLearningStrategy

    config = apply_presets(default_config("curriculum"),
                           "conv_train,adam,rmsprop,il_more,offline,cpu")
    settings = CurriculumLearningStrategy.check_settings(dict(config["strategy"]))
    strategy = CurriculumLearningStrategy.__new__(CurriculumLearningStrategy)
    strategy._apply_settings(settings)
    assert strategy.validation_args_at(0)["warmup"] == 0          # validated as l2o.load runs it
    assert strategy.train_args_at(0)["warmup"] == 1                # trained with the SGD warmup
    assert strategy.train_args_at(0)["p_teacher"] == 1.0           # stage 0: pure imitation
    assert config["training"]["il_mode"] == "switch"
    assert [t["class_name"] for t in config["training"]["teachers"]] == ["Adam", "RMSProp"]
    assert strategy.evaluation_settings()["warmup"] == 0           # packaged without warmup
