"""tml-optimizers: a PyTorch optimizer and learning-rate scheduler from a declarative config."""

from tml.optimizers.config import (
    AdagradConfig,
    AdamConfig,
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    OptimizerAlgorithmConfig,
    OptimizerConfig,
    PiecewiseConstant,
    SGDConfig,
    SgdConfig,
    get_optimizer_algorithm_config,
)
from tml.optimizers.optimizer import build_optimizer, get_optimizer_class
from tml.optimizers.scheduler import LRShim
from tml.optimizers.schedules import compile_schedule, compute_lr

__all__ = [
    "AdagradConfig",
    "AdamConfig",
    "LRShim",
    "LearningRate",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "OptimizerAlgorithmConfig",
    "OptimizerConfig",
    "PiecewiseConstant",
    "SGDConfig",
    "SgdConfig",
    "build_optimizer",
    "compile_schedule",
    "compute_lr",
    "get_optimizer_algorithm_config",
    "get_optimizer_class",
]
