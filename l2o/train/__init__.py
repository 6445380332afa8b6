"""Meta-training: the unroll, the meta step, warmup, loss terms, clipping, step callbacks."""

from l2o.train.teachers import build_teacher
from l2o.train.trainer import MetaTrainer, build_meta_optimizer

__all__ = ["MetaTrainer", "build_teacher", "build_meta_optimizer"]
