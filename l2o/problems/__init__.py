"""Optimizees for meta-training and the datasets and Keras models behind them."""

from l2o.problems import models
from l2o.problems.datasets import Dataset, DatasetUnavailable, OFFLINE_DATASET, load_dataset
from l2o.problems.models import build_model, get_activation
from l2o.problems.problem import (
    PROBLEMS, Problem, build_problem, conv_classifier, mlp_classifier)

__all__ = [
    "Dataset", "DatasetUnavailable", "OFFLINE_DATASET", "PROBLEMS", "Problem", "build_model",
    "build_problem", "conv_classifier", "get_activation", "load_dataset", "mlp_classifier",
    "models",
]
