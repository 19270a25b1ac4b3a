"""Optimizer algorithm configs: one class per torch optimizer, each naming the class it builds.

One module per family: ``adam`` (Adam, AdamW, Adamax, NAdam, RAdam, SparseAdam), ``sgd`` (SGD,
ASGD), ``adaptive`` (Adagrad, RMSprop, Adadelta, Adafactor, Rprop), ``muon``, and ``custom`` (any
other ``torch.optim.Optimizer`` by import path). ``registry`` maps config keys to classes.
"""

from tml.optimizers.algorithms.adam import (
    AdamaxConfig,
    AdamConfig,
    AdamWConfig,
    NAdamConfig,
    RAdamConfig,
    SparseAdamConfig,
)
from tml.optimizers.algorithms.adaptive import (
    AdadeltaConfig,
    AdafactorConfig,
    AdagradConfig,
    RMSpropConfig,
    RmspropConfig,
    RpropConfig,
)
from tml.optimizers.algorithms.base import (
    IMPLEMENTATION_KWARGS,
    SPEED_FIELDS,
    LearningRateOrSchedule,
    OptimizerAlgorithmConfig,
)
from tml.optimizers.algorithms.custom import CustomOptimizerConfig
from tml.optimizers.algorithms.muon import MuonConfig
from tml.optimizers.algorithms.registry import ALGORITHMS, list_optimizers
from tml.optimizers.algorithms.sgd import ASGDConfig, AsgdConfig, SGDConfig, SgdConfig

__all__ = [
    "ALGORITHMS",
    "IMPLEMENTATION_KWARGS",
    "SPEED_FIELDS",
    "ASGDConfig",
    "AdadeltaConfig",
    "AdafactorConfig",
    "AdagradConfig",
    "AdamConfig",
    "AdamWConfig",
    "AdamaxConfig",
    "AsgdConfig",
    "CustomOptimizerConfig",
    "LearningRateOrSchedule",
    "MuonConfig",
    "NAdamConfig",
    "OptimizerAlgorithmConfig",
    "RAdamConfig",
    "RMSpropConfig",
    "RmspropConfig",
    "RpropConfig",
    "SGDConfig",
    "SgdConfig",
    "SparseAdamConfig",
    "list_optimizers",
]
