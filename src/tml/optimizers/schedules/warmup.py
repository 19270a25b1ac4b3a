"""Warmup as a primitive: a linear ramp joined in front of any schedule body.

A kind that warms up registers ``with_warmup(body)``; its bounds, milestones and discontinuities
are wrapped the same way, so the warmup is written once, not copied into every formula.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from tml.optimizers.schedules.backend import SCALAR, Number, Ops
from tml.optimizers.schedules.warmup_config import WarmupFields

ConfigT = TypeVar("ConfigT", bound=WarmupFields)
Body = Callable[[ConfigT, Number, Ops], Number]


def with_warmup(body: Body[ConfigT]) -> Body[ConfigT]:
    """``body`` preceded by a linear warmup of ``config.warmup_steps`` steps.

    .. math::

       \\eta(s) = \\begin{cases}
         \\eta_0 + (b(0) - \\eta_0) \\cdot s / W & s < W \\\\
         b(s - W) & s \\ge W
       \\end{cases}

    where ``s`` is the step, ``W`` is ``warmup_steps``, ``η_0`` is ``warmup_start_learning_rate`` and
    ``b`` is the body; the value is continuous at ``s = W``. With ``W = 0`` this is ``b`` itself.
    It is a join of the two pieces, so on a tensor each is evaluated only on the steps of its phase.
    """

    @functools.wraps(body)
    def formula(config: ConfigT, step: Number, ops: Ops) -> Number:
        warmup_steps = config.warmup_steps
        if warmup_steps == 0:
            return body(config, step, ops)
        start = config.warmup_start_learning_rate
        rise = body(config, 0, SCALAR) - start

        def ramp(ramp_step: Number) -> Number:
            value = ramp_step / warmup_steps
            value *= rise
            value += start
            return value

        def after(body_step: Number) -> Number:
            return body(config, body_step, ops)

        return ops.join(step, [0, warmup_steps], [ramp, after])

    return formula


def warmup_bounds(body_bounds: Callable[[Any], tuple[float, float]]) -> Callable[[Any], tuple[float, float]]:
    """The body's bounds widened to hold the warmup's start value."""

    def bounds(config: WarmupFields) -> tuple[float, float]:
        low, high = body_bounds(config)
        if config.warmup_steps == 0:
            return low, high
        start = config.warmup_start_learning_rate
        return min(low, start), max(high, start)

    return bounds


def warmup_steps_shift(body_steps: Callable[[Any], list[int]]) -> Callable[[Any], list[int]]:
    """The body's milestones (or discontinuities) moved by the warmup, without the warmup's end."""

    def steps(config: WarmupFields) -> list[int]:
        return [config.warmup_steps + step for step in body_steps(config)]

    return steps


def warmup_milestones(body_milestones: Callable[[Any], list[int]]) -> Callable[[Any], list[int]]:
    """The warmup's end followed by the body's milestones, moved by the warmup."""
    shifted = warmup_steps_shift(body_milestones)

    def milestones(config: WarmupFields) -> list[int]:
        later = shifted(config)
        if config.warmup_steps == 0:
            return later
        return sorted({config.warmup_steps, *later})

    return milestones
