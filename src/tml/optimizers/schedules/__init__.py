"""Learning-rate schedules: configs, closed-form formulas and the registry that joins them."""

from tml.optimizers.schedules import seed_kinds  # noqa: F401  (registers the kinds)
from tml.optimizers.schedules.config import (
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
)
from tml.optimizers.schedules.registry import (
    SCHEDULES,
    ScheduleKind,
    compile_schedule,
    compute_lr,
    evaluate,
    register_schedule,
    schedule_bounds,
    schedule_kind,
    schedule_milestones,
)

__all__ = [
    "SCHEDULES",
    "LearningRate",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "PiecewiseConstant",
    "ScheduleKind",
    "compile_schedule",
    "compute_lr",
    "evaluate",
    "register_schedule",
    "schedule_bounds",
    "schedule_kind",
    "schedule_milestones",
]
