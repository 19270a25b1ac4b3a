"""Optimizer algorithm configs: one class per torch optimizer, each naming the class it builds.

One module per family: ``adam`` (Adam, AdamW, Adamax, NAdam, RAdam, SparseAdam), ``sgd`` (SGD,
ASGD), ``adaptive`` (Adagrad, RMSprop, Adadelta, Adafactor, Rprop), ``muon``, and ``custom`` (any
other ``torch.optim.Optimizer`` by import path). ``choice`` declares the algorithm keys once (the
fields ``OptimizerConfig`` and ``ParamGroupConfig`` share); ``facts`` is the one table of what tml
relies on about each torch class.
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
from tml.optimizers.algorithms.choice import ALGORITHM_GROUP, ALGORITHMS, AlgorithmChoice, list_optimizers
from tml.optimizers.algorithms.custom import CustomOptimizerConfig
from tml.optimizers.algorithms.muon import MuonConfig
from tml.optimizers.algorithms.sgd import ASGDConfig, AsgdConfig, SGDConfig, SgdConfig

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_GROUP",
    "IMPLEMENTATION_KWARGS",
    "SPEED_FIELDS",
    "ASGDConfig",
    "AdadeltaConfig",
    "AdafactorConfig",
    "AdagradConfig",
    "AdamConfig",
    "AdamWConfig",
    "AdamaxConfig",
    "AlgorithmChoice",
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
