"""Evaluation: the named problems, model and function fits, and the baseline optimizers."""

from l2o.evaluate.baselines import BASELINES, make_baseline, run_repeats, spread_repeats
from l2o.evaluate.fit import clip_per_example_gradients, evaluate_model
from l2o.evaluate.functions import FUNCTIONS, Quadratic, Rastrigin, evaluate_function
from l2o.evaluate.problems import EVAL_PROBLEMS, get_eval_problem, is_function_problem

__all__ = ["BASELINES", "make_baseline", "run_repeats", "spread_repeats",
           "clip_per_example_gradients",
           "evaluate_model", "FUNCTIONS", "Quadratic", "Rastrigin", "evaluate_function",
           "EVAL_PROBLEMS", "get_eval_problem", "is_function_problem"]
