"""Learning-rate schedules: configs, closed-form formulas and the registry that joins them."""

# Importing the kind modules registers their formulas.
from tml.optimizers.schedules import (  # noqa: F401
    composite_kinds,
    cyclic_kinds,
    decay_kinds,
    scalar_closures,
    seed_kinds,
)
from tml.optimizers.schedules.config import (
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
    ScheduleSequence,
    SequencePhase,
)
from tml.optimizers.schedules.cyclic_configs import CosineWithRestarts, Cyclic, OneCycle
from tml.optimizers.schedules.decay_configs import (
    CosineDecay,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultistepDecay,
    PiecewiseLinear,
    PolynomialDecay,
    WarmupStableDecay,
)
from tml.optimizers.schedules.registry import (
    SCHEDULES,
    ScheduleKind,
    compile_schedule,
    compute_lr,
    evaluate,
    register_schedule,
    schedule_bounds,
    schedule_discontinuities,
    schedule_kind,
    schedule_milestones,
)
from tml.optimizers.schedules.warmup_config import WarmupFields

__all__ = [
    "SCHEDULES",
    "CosineDecay",
    "CosineWithRestarts",
    "Cyclic",
    "ExponentialDecay",
    "InverseSqrt",
    "LearningRate",
    "Linear",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "MultistepDecay",
    "OneCycle",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "PolynomialDecay",
    "ScheduleKind",
    "ScheduleSequence",
    "SequencePhase",
    "WarmupFields",
    "WarmupStableDecay",
    "compile_schedule",
    "compute_lr",
    "evaluate",
    "register_schedule",
    "schedule_bounds",
    "schedule_discontinuities",
    "schedule_kind",
    "schedule_milestones",
]
