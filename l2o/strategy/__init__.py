"""Training strategies: they schedule meta-training in periods and own the results folder."""

from l2o.strategy.base import BaseStrategy, get_strategy_class, strategy_names
from l2o.strategy.simple import SimpleStrategy
from l2o.strategy.repeat import RepeatStrategy
from l2o.strategy.curriculum import CurriculumLearningStrategy
from l2o.strategy.build import build, build_from_config, package, read_config

__all__ = ["BaseStrategy", "SimpleStrategy", "RepeatStrategy", "CurriculumLearningStrategy",
           "build", "build_from_config", "package", "read_config", "get_strategy_class",
           "strategy_names"]
