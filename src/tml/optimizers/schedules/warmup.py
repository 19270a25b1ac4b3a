"""Warmup as a primitive: its two config fields, and the join of a linear ramp in front of a schedule.

A kind whose config inherits :class:`WarmupFields` warms up; the registry applies :func:`join_warmup`
(and widens the bounds and moves the milestones the same way) for every such kind, so the warmup is
written once, not in every kind.
"""

from __future__ import annotations

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeLength
from tml.optimizers.schedules.ops import Closure, Number, Ops


class WarmupFields(StrictConfig):
    """``warmup_steps`` and ``warmup_start_learning_rate``, inherited by every kind that warms up."""

    warmup_steps: NonNegativeLength = pydantic.Field(
        0,
        description="Number of steps of a linear ramp from warmup_start_learning_rate up to the "
        "schedule's value at its own step 0; the schedule then sees step - warmup_steps. 0: no warmup.",
    )
    warmup_start_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at step 0 when warmup_steps > 0; only valid with a warmup."
    )

    @pydantic.field_validator("warmup_start_learning_rate")
    @classmethod
    def _start_needs_warmup(cls, start: float, info: pydantic.ValidationInfo) -> float:
        if start != 0.0 and info.data.get("warmup_steps") == 0:
            raise ValueError(
                f"warmup_start_learning_rate applies only when warmup_steps > 0 (warmup_steps is 0), "
                f"got {start}"
            )
        return start


def join_warmup(config: WarmupFields, body: Closure, body_at_zero: float, ops: Ops) -> Closure:
    """``body`` preceded by a linear warmup of ``config.warmup_steps`` steps.

    .. math::

       \\eta(s) = \\begin{cases}
         \\eta_0 + (b(0) - \\eta_0) \\cdot s / W & s < W \\\\
         b(s - W) & s \\ge W
       \\end{cases}

    where ``s`` is the step, ``W`` is ``warmup_steps``, ``η_0`` is ``warmup_start_learning_rate`` and
    ``b`` is the body (``body_at_zero`` is ``b(0)``); the value is continuous at ``s = W``. With
    ``W = 0`` this is ``b`` itself. It is a join, so on a tensor each phase runs only on its steps.
    """
    warmup_steps = config.warmup_steps
    if warmup_steps == 0:
        return body
    start = config.warmup_start_learning_rate
    rise = body_at_zero - start

    def ramp(step: Number) -> Number:
        return step / warmup_steps * rise + start

    return ops.join([0, warmup_steps], [ramp, body])


def warmup_bounds(config: WarmupFields, body_bounds: tuple[float, float]) -> tuple[float, float]:
    """The body's bounds widened to hold the warmup's start value."""
    low, high = body_bounds
    if config.warmup_steps == 0:
        return low, high
    start = config.warmup_start_learning_rate
    return min(low, start), max(high, start)


def warmup_shift(config: WarmupFields, body_steps: list[int]) -> list[int]:
    """The body's steps (milestones, discontinuities) moved by the warmup."""
    return [config.warmup_steps + step for step in body_steps]


def warmup_milestones(config: WarmupFields, body_milestones: list[int]) -> list[int]:
    """The warmup's end followed by the body's milestones, moved by the warmup."""
    later = warmup_shift(config, body_milestones)
    if config.warmup_steps == 0:
        return later
    return sorted({config.warmup_steps, *later})
