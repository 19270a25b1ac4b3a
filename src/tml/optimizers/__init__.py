"""tml-optimizers: a PyTorch optimizer and learning-rate scheduler from a declarative config."""

from tml.optimizers.algorithms import (
    AdadeltaConfig,
    AdafactorConfig,
    AdagradConfig,
    AdamaxConfig,
    AdamConfig,
    AdamWConfig,
    AsgdConfig,
    CustomOptimizerConfig,
    MuonConfig,
    NAdamConfig,
    OptimizerAlgorithmConfig,
    RAdamConfig,
    RmspropConfig,
    RpropConfig,
    SGDConfig,
    SgdConfig,
    SparseAdamConfig,
    list_optimizers,
)
from tml.optimizers.config import (
    LayerDecayConfig,
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    MultiTaskLearningRates,
    OptimizerConfig,
    ParamGroupConfig,
    PiecewiseConstant,
    get_optimizer_algorithm_config,
)
from tml.optimizers.describe import (
    GroupDescription,
    TableGroupDescription,
    describe_param_groups,
    describe_table_groups,
)
from tml.optimizers.groups.assign import ParamGroup, assign_param_groups
from tml.optimizers.optimizer import build_optimizer, get_optimizer_class
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import ResumeError, ResumePolicy, ResumeWarning, load_optimizer_state
from tml.optimizers.schedules import compile_schedule, compute_lr
from tml.optimizers.tables import TableRuleConfig, apply_table_rules

__all__ = [
    "AdadeltaConfig",
    "AdafactorConfig",
    "AdagradConfig",
    "AdamConfig",
    "AdamWConfig",
    "AdamaxConfig",
    "AsgdConfig",
    "CombinedOptimizer",
    "CustomOptimizerConfig",
    "GroupDescription",
    "LRShim",
    "LayerDecayConfig",
    "LearningRate",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "MultiTaskLearningRates",
    "MuonConfig",
    "NAdamConfig",
    "OptimizerAlgorithmConfig",
    "OptimizerConfig",
    "ParamGroup",
    "ParamGroupConfig",
    "PiecewiseConstant",
    "RAdamConfig",
    "ResumeError",
    "ResumePolicy",
    "ResumeWarning",
    "RmspropConfig",
    "RpropConfig",
    "SGDConfig",
    "SgdConfig",
    "SparseAdamConfig",
    "TableGroupDescription",
    "TableRuleConfig",
    "apply_table_rules",
    "assign_param_groups",
    "build_optimizer",
    "compile_schedule",
    "compute_lr",
    "describe_param_groups",
    "describe_table_groups",
    "get_optimizer_algorithm_config",
    "get_optimizer_class",
    "list_optimizers",
    "load_optimizer_state",
]
