"""Learning-rate schedules: one module per family, each holding its configs and their constructors.

- :mod:`.seed`: the original four kinds (constant, piecewise_constant, the two linear ramps);
- :mod:`.decay`: linear, piecewise_linear and the ``*_decay`` kinds, inverse_sqrt, WSD;
- :mod:`.cyclic`: cosine_with_restarts, one_cycle, cyclic; :mod:`.sequence`: phases joined;
- :mod:`.anneal`: any schedule, then a decay from its value at a step (anneal from here);
- :mod:`.warmup`: the warmup primitive; :mod:`.learning_rate`: the ``LearningRate`` one-of;
- :mod:`.ops`: the scalar and tensor arithmetic; :mod:`.registry`: the kinds by config class,
  ``compile_schedule`` and ``compute_lr``; :mod:`.run`: lengths relative to the run resolved.
"""

from tml.optimizers.schedules.anneal import Anneal
from tml.optimizers.schedules.cyclic import CosineWithRestarts, Cyclic, OneCycle
from tml.optimizers.schedules.decay import (
    CosineDecay,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultistepDecay,
    PiecewiseLinear,
    PolynomialDecay,
    WarmupStableDecay,
)
from tml.optimizers.schedules.learning_rate import LearningRate
from tml.optimizers.schedules.registry import (
    SCHEDULES,
    ScheduleKind,
    compile_schedule,
    compute_lr,
    evaluate,
    register_schedule,
    schedule_bounds,
    schedule_closure,
    schedule_discontinuities,
    schedule_kind,
    schedule_last_phase,
    schedule_milestones,
)
from tml.optimizers.schedules.run import Run, can_resolve, resolve_schedule, resolved_lengths
from tml.optimizers.schedules.seed import LinearRampToConstant, LinearRampToCosine, PiecewiseConstant
from tml.optimizers.schedules.sequence import ScheduleSequence, SequencePhase
from tml.optimizers.schedules.warmup import WarmupFields

__all__ = [
    "SCHEDULES",
    "Anneal",
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
    "Run",
    "ScheduleKind",
    "ScheduleSequence",
    "SequencePhase",
    "WarmupFields",
    "WarmupStableDecay",
    "can_resolve",
    "compile_schedule",
    "compute_lr",
    "evaluate",
    "register_schedule",
    "resolve_schedule",
    "resolved_lengths",
    "schedule_bounds",
    "schedule_closure",
    "schedule_discontinuities",
    "schedule_kind",
    "schedule_last_phase",
    "schedule_milestones",
]
