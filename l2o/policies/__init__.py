"""Update rules: the policy contract, the registry, and every rule by its class name."""

from l2o.policies.base import (Policy, build_policy, get_policy_class, policy_names,
                               register)
from l2o.policies import analytical, rnnprop  # noqa: F401  (register the classes)
from l2o.policies.analytical import *  # noqa: F401,F403
from l2o.policies.rnnprop import AdamLROptimizer, RMSPropLROptimizer, RNNPropOptimizer
from l2o.policies.choice import AbstractChoiceOptimizer, ChoiceLargeOptimizer, ChoiceOptimizer
from l2o.policies.dm import DMOptimizer, RNNPropExtendedOptimizer

__all__ = ["Policy", "build_policy", "get_policy_class", "policy_names", "register",
           "RNNPropOptimizer", "AdamLROptimizer", "RMSPropLROptimizer",
           "AbstractChoiceOptimizer", "ChoiceOptimizer", "ChoiceLargeOptimizer", "DMOptimizer",
           "RNNPropExtendedOptimizer"]
