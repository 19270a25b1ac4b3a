"""Field types shared by the schedule and optimizer configs: each carries its own validation rule."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pydantic


def _plain_number(value: Any) -> Any:
    # pydantic's lax mode reads True as 1: a boolean where a number belongs is always a mistake.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    if isinstance(value, str):
        # pydantic reads the text 'nan' or '-inf' as the float, then reports a bound it breaks.
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
    return value


NO_BOOL = pydantic.BeforeValidator(_plain_number)
"""Refuses a boolean (pydantic would read True as 1) or a non-finite number (``nan``, ``'inf'``) where
a number belongs.

Use as ``Annotated[float, NO_BOOL, pydantic.Field(...)]``."""

LearningRateValue = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, allow_inf_nan=False)]
"""A learning rate: finite and non-negative (0 is allowed)."""

FiniteFloat = Annotated[float, NO_BOOL, pydantic.Field(allow_inf_nan=False)]
"""Any finite number."""

NonNegativeFloat = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, allow_inf_nan=False)]
"""A finite number ≥ 0."""

PositiveFloat = Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, allow_inf_nan=False)]
"""A finite number > 0."""

UnitIntervalOpen = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
"""A number in [0, 1), such as an Adam beta."""

MAX_STEPS = 10**15
"""The largest number of steps (or step index) a config may give: ~10⁵ times the longest training
run, and small enough that sums of a few of them stay below 2⁵³, where float64 still holds every
integer (the schedules compute in float64)."""

MAX_SCHEDULE_STEP = 2**53
"""No phase of a schedule may end after this step, and the vectorized ``compute_lr`` refuses steps
from it on: float64, which the schedules compute in, holds every integer only below it."""

MAX_MULTIPLIER = 1000
"""The largest integer multiplier (``cycle_multiplier``): cycles longer than 1000 times the last one
would pass ``MAX_STEPS`` within a few cycles anyway."""

PositiveSteps = Annotated[int, NO_BOOL, pydantic.Field(gt=0, le=MAX_STEPS)]
"""A number of optimizer steps in [1, 10¹⁵] (:data:`MAX_STEPS`)."""

NonNegativeSteps = Annotated[int, NO_BOOL, pydantic.Field(ge=0, le=MAX_STEPS)]
"""A step index or a number of optimizer steps in [0, 10¹⁵] (:data:`MAX_STEPS`)."""

DecayFactor = Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, le=1.0, allow_inf_nan=False)]
"""A multiplicative decay factor in (0, 1]: 1 keeps the value, 0.5 halves it."""

PositiveInteger = Annotated[int, NO_BOOL, pydantic.Field(ge=1, le=MAX_MULTIPLIER)]
"""An integer in [1, 1000] (:data:`MAX_MULTIPLIER`) that is not a number of steps, such as a
cycle-length multiplier."""

Implementation = Literal["auto", "fused", "foreach", "for_loop"]
"""Which torch kernel steps a param group (the ``implementation`` field of every algorithm)."""

IMPLEMENTATIONS: tuple[Implementation, ...] = ("auto", "fused", "foreach", "for_loop")
"""The values of :data:`Implementation`, in order."""
