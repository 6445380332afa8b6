"""The default configuration: BASE plus one strategy block and one policy block.

``default_config(strategy, policy)`` merges the three into a fresh, deeply copied dict,
so appending teachers or callbacks to one config never changes the module tables (the
reference merged them shallowly and leaked `*` appends into later builds).

Key order follows the config.json files of the reference, and every number here is the
reference default of SPEC 2.2-2.4. Schedules use the dict form ``{"type": "list", ...}``.
"""

import copy

from l2o.errors import unknown

BASE = {
    "training": {
        "use_log_objective": True,
        "scale_objective": True,
        "parameter_scale_spread": 3.0,
        "do_teacher_parameter_scale": False,
        "loss_reduce": "reduce_max",
        "il_mode": "sum",
        "unroll_weight": "mean",
        "teachers": [],
        # -1: off. Floats (the reference writes -1): thresholds, which any number may replace
        "obj_train_max_multiplier": -1.0,
        "huber_delta": -1.0,
        "gradient_clipping": {
            "class_name": "AdaptiveGC",
            "config": {"clip_ratio": 0.1, "epsilon": 1e-3},
        },
        "epsilon": 1e-10,
        "step_callbacks": [],
        "pbar_values": ["meta_loss", "imitation_loss"],
        "mean_stats": ["meta_loss", "imitation_loss"],
        "stack_stats": ["meta_loss", "imitation_loss"],
        # Project addition: the learner runs with training=True during validation (input
        # noise and random weight perturbations on), as in the reference; False turns it off.
        "validation_noise": True,
    },
    "optimizer": {
        "class_name": "Adam",
        "config": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999},
    },
    "problems": [
        {
            "target": "mlp_classifier",
            "args": [],
            "kwargs": {
                "layers": [20],
                "dataset": "mnist",
                "activation": "sigmoid",
                "shuffle_buffer": 16384,
                "batch_size": 128,
            },
        }
    ],
}


def _list(*values):
    return {"type": "list", "values": list(values)}


STRATEGIES = {
    "simple": {
        "strategy_constructor": "SimpleStrategy",
        "strategy": {
            "validation_problems": None,
            "validation_seed": 12345,
            "num_periods": 25,
            "unroll_len": 20,
            "depth": 25,
            "epochs": 10,
            "annealing_schedule": 0.0,
            "validation_epochs": 2,
            "validation_unroll": 20,
            "validation_depth": 25,
            "warmup": 0,
            "warmup_rate": 0.01,
            "validation_warmup": 0,
            "validation_warmup_rate": 0.01,
            "name": "SimpleStrategy",
        },
    },
    "repeat": {
        "strategy_constructor": "RepeatStrategy",
        "strategy": {
            "validation_problems": None,
            "validation_seed": 12345,
            "num_periods": 20,
            "unroll_len": 100,
            "depth": _list(1, 2, 5),
            "epochs": 10,
            "annealing_schedule": 0.0,
            "validation_epochs": 2,
            "validation_unroll": 100,
            "validation_depth": 5,
            "max_repeat": 4,
            "repeat_threshold": 0.8,
            "warmup": 0,
            "warmup_rate": 0.0,
            "validation_warmup": 0,
            "validation_warmup_rate": 0.01,
            "name": "RepeatStrategy",
        },
    },
    # The curriculum validates stage s with the schedules at s + 1, so it has no
    # validation_unroll / validation_depth / validation_warmup* keys of its own.
    "curriculum": {
        "strategy_constructor": "CurriculumLearningStrategy",
        "strategy": {
            "validation_problems": None,
            "validation_seed": 12345,
            "num_stages": 4,
            "num_periods": 5,
            "num_chances": 5,
            "unroll_len": 100,
            "depth": _list(1, 2, 5, 10, 20),
            "epochs": 10,
            "annealing_schedule": 0.0,
            "validation_epochs": 10,
            "max_repeat": 4,
            "repeat_threshold": 0.5,
            "warmup": 1,
            "warmup_rate": 0.05,
            "name": "CurriculumLearningStrategy",
        },
    },
}

# Keyword arguments of the LSTM cells, given to every LSTM-based policy.
LSTM_CELL_KWARGS = {
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "use_bias": True,
    "kernel_initializer": "glorot_uniform",
    "recurrent_initializer": "orthogonal",
    "bias_initializer": "zeros",
    "unit_forget_bias": True,
}


def _pool_entry(class_name, **config):
    return {"class_name": class_name, "config": config}


# The choice pools of more_choice (large) and less_choice (small), in reference order.
LARGE_POOL = [
    _pool_entry("SGD", learning_rate=2.0),
    _pool_entry("Momentum", learning_rate=2.0, beta_1=0.9),
    # No epsilon: the RMSProp policy's own default (1e-7) applies, as in the reference.
    _pool_entry("RMSProp", learning_rate=0.005, rho=0.9),
    _pool_entry("Adam", learning_rate=0.02, beta_1=0.9, beta_2=0.999, epsilon=1e-10),
    _pool_entry("PowerSign", learning_rate=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-10),
    _pool_entry("AddSign", learning_rate=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-10),
]
SMALL_POOL = [
    _pool_entry("RMSProp", learning_rate=0.005, rho=0.9),
    _pool_entry("Adam", learning_rate=0.02, beta_1=0.9, beta_2=0.999, epsilon=1e-10),
]
SGD_ADAM_POOL = [
    _pool_entry("SGD", learning_rate=0.2),
    _pool_entry("Adam", learning_rate=0.02, beta_1=0.9, beta_2=0.999, epsilon=1e-10),
]


def _lstm(constructor, **kwargs):
    return {"policy_constructor": constructor, "policy": dict(kwargs, **LSTM_CELL_KWARGS)}


def _plain(constructor, **kwargs):
    return {"policy_constructor": constructor, "policy": kwargs}


def _abstract_choice(pool):
    return _lstm(
        "AbstractChoiceOptimizer",
        layers=[20, 20],
        learning_rate=1.0,
        epsilon=1e-10,
        hardness=0.0,
        use_meta_features=True,
        time_scale=2000.0,
        lr_multiplier_scale=0.0,
        warmup_lstm_update=False,
        name="MoreChoiceOptimizer",
        pool=pool,
    )


def _lr_policy(constructor):
    return _lstm(
        constructor,
        layers=[20, 20],
        beta_1=0.9,
        beta_2=0.999,
        alpha=0.1,
        epsilon=1e-10,
        warmup_lstm_update=False,
        name=constructor,
    )


# The reference also has `scale_basic` and `scale_hierarchical` (ScaleBasicOptimizer,
# ScaleHierarchicalOptimizer); this project does not implement those policies, so their
# keys are left out rather than offered and then failing at construction.
POLICIES = {
    "rnnprop": _lstm(
        "RNNPropOptimizer",
        layers=[20, 20],
        beta_1=0.9,
        beta_2=0.999,
        alpha=0.1,
        epsilon=1e-10,
        warmup_lstm_update=False,
        perturbation=None,
        input_noise=0.0,
        name="RNNPropOptimizer",
    ),
    "dmoptimizer": _lstm(
        "DMOptimizer", learning_rate=0.1, layers=[20, 20], name="DMOptimizer"),
    "choice": _lstm(
        "ChoiceOptimizer",
        layers=[20, 20],
        beta_1=0.9,
        beta_2=0.999,
        learning_rate=0.001,
        epsilon=1e-10,
        hardness=0.0,
        name="ChoiceOptimizer",
    ),
    "rnnprop_ext": _lstm(
        "RNNPropExtendedOptimizer",
        layers=[20, 20],
        beta_1=0.9,
        beta_2=0.999,
        learning_rate=0.001,
        out_activation="tanh",
        epsilon=1e-10,
        name="RNNPropExtended",
    ),
    "choice_large": _lstm(
        "ChoiceLargeOptimizer",
        layers=[20, 20],
        beta_1=0.9,
        beta_2=0.999,
        learning_rate=None,  # None: the policy's own per-pool learning-rate table
        epsilon=1e-10,
        time_scale=2000.0,
        name="ChoiceOptimizer",
    ),
    "more_choice": _abstract_choice(LARGE_POOL),
    "less_choice": _abstract_choice(SMALL_POOL),
    "less_choice_sgd": _abstract_choice(SGD_ADAM_POOL),
    "adam_lr": _lr_policy("AdamLROptimizer"),
    "rmsprop_lr": _lr_policy("RMSPropLROptimizer"),
    "adam": _plain(
        "AdamOptimizer",
        learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-10, trainable=True),
    "rmsprop": _plain(
        "RMSPropOptimizer", learning_rate=0.001, rho=0.9, epsilon=1e-10, trainable=True),
    "momentum": _plain(
        "MomentumOptimizer", learning_rate=0.001, beta_1=0.9, trainable=False),
    "powersign": _plain(
        "PowerSignOptimizer",
        learning_rate=0.001, beta_1=0.9, beta_2=0.999, temperature=1.0, epsilon=1e-10,
        trainable=True),
    "addsign": _plain(
        "AddSignOptimizer",
        learning_rate=0.001, beta_1=0.9, beta_2=0.999, temperature=1.0, epsilon=1e-10,
        trainable=True),
    "sgd": _plain("SGDOptimizer", learning_rate=0.01, trainable=True),
}


def default_config(strategy="repeat", policy="rnnprop"):
    """The full default config for a ``--strategy`` and ``--policy`` key, as a fresh copy."""
    if strategy not in STRATEGIES:
        raise unknown("strategy", strategy, STRATEGIES)
    if policy not in POLICIES:
        raise unknown("policy", policy, POLICIES)
    merged = {}
    for part in (BASE, STRATEGIES[strategy], POLICIES[policy]):
        merged.update(part)
    return copy.deepcopy(merged)
