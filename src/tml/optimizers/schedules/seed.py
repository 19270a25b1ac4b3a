"""The four schedule kinds of the original tml: constant, piecewise constant and two linear ramps.

Their semantics are the contract: they stay exactly as the original computed them.
"""

from __future__ import annotations

from typing import Any

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import LearningRateValue, PositiveLength
from tml.optimizers.schedules.ops import Closure, Number, Ops, cosine_anneal
from tml.optimizers.schedules.registry import register_schedule
from tml.optimizers.schedules.rules import IncreasingSteps


class PiecewiseConstant(StrictConfig):
    """Constant pieces: ``learning_rate_values[i]`` from ``learning_rate_boundaries[i - 1]`` on."""

    learning_rate_boundaries: IncreasingSteps = pydantic.Field(
        description="Steps at which the learning rate changes: non-negative, strictly increasing."
    )
    learning_rate_values: list[LearningRateValue] = pydantic.Field(
        description="Learning rates: one before the first boundary and one after each boundary, "
        "so one more than there are boundaries."
    )

    @pydantic.field_validator("learning_rate_values")
    @classmethod
    def _one_value_per_piece(cls, values: list[float], info: pydantic.ValidationInfo) -> list[float]:
        boundaries = info.data.get("learning_rate_boundaries")
        if boundaries is not None and len(values) != len(boundaries) + 1:
            raise ValueError(
                f"needs len(learning_rate_boundaries) + 1 = {len(boundaries) + 1} values, got {len(values)}"
            )
        return values


class LinearRampToConstant(StrictConfig):
    """A straight line from 0 to ``learning_rate`` over ``num_ramp_steps`` steps, then constant."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate after the ramp.")
    num_ramp_steps: PositiveLength = pydantic.Field(
        description="Number of steps to ramp the learning rate up from zero."
    )


class LinearRampToCosine(StrictConfig):
    """A ramp from 0 to ``learning_rate``, then a half cosine down to ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The peak learning rate, reached at num_ramp_steps."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at final_num_steps and after."
    )
    num_ramp_steps: PositiveLength = pydantic.Field(
        description="Number of steps to ramp the learning rate up from zero."
    )
    final_num_steps: PositiveLength = pydantic.Field(
        description="The step at which the cosine decay ends; greater than num_ramp_steps."
    )

    @pydantic.field_validator("final_num_steps")
    @classmethod
    def _decay_after_ramp(cls, final_num_steps: int, info: pydantic.ValidationInfo) -> int:
        ramp = info.data.get("num_ramp_steps")
        if isinstance(ramp, int) and isinstance(final_num_steps, int) and final_num_steps <= ramp:
            raise ValueError(
                f"final_num_steps must be greater than num_ramp_steps ({ramp}), got {final_num_steps}"
            )
        return final_num_steps


@register_schedule("constant", float, bounds=lambda value: (value, value), milestones=lambda _: [])
def constant(value: float, ops: Ops) -> Closure:
    """The same learning rate at every step.

    .. math:: \\eta(t) = c

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate
      >>> [compute_lr(LearningRate(constant=0.5), step) for step in (0, 10**12)]
      [0.5, 0.5]
    """
    return ops.piecewise([], [value])


@register_schedule(
    "piecewise_constant",
    PiecewiseConstant,
    bounds=lambda c: (min(c.learning_rate_values), max(c.learning_rate_values)),
    milestones=lambda c: list(c.learning_rate_boundaries),
    discontinuities=lambda c: list(c.learning_rate_boundaries),
)
def piecewise_constant(config: PiecewiseConstant, ops: Ops) -> Closure:
    """Constant pieces that change at the boundaries.

    .. math:: \\eta(t) = v_{k(t)}, \\quad k(t) = |\\{i : b_i \\le t\\}|

    where ``b`` are ``learning_rate_boundaries`` and ``v`` are ``learning_rate_values``: the value
    ``v[i]`` holds from step ``b[i - 1]`` (inclusive) to ``b[i]`` (exclusive).

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate, PiecewiseConstant
      >>> schedule = LearningRate(piecewise_constant=PiecewiseConstant(
      ...     learning_rate_boundaries=[10, 20], learning_rate_values=[1.0, 0.5, 0.1]))
      >>> [compute_lr(schedule, step) for step in (0, 9, 10, 19, 20, 10**12)]
      [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    """
    return ops.piecewise(config.learning_rate_boundaries, config.learning_rate_values)


@register_schedule(
    "linear_ramp_to_constant",
    LinearRampToConstant,
    bounds=lambda c: (0.0, c.learning_rate),
    milestones=lambda c: [c.num_ramp_steps],
)
def linear_ramp_to_constant(config: LinearRampToConstant, ops: Ops) -> Closure:
    """A straight line from 0 up to the learning rate, then constant.

    .. math:: \\eta(t) = \\min(\\eta_{max}, \\eta_{max} / R \\cdot t)

    where ``η_max`` is ``learning_rate`` and ``R`` is ``num_ramp_steps``.

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate, LinearRampToConstant
      >>> schedule = LearningRate(linear_ramp_to_constant=LinearRampToConstant(
      ...     learning_rate=1.0, num_ramp_steps=4))
      >>> [compute_lr(schedule, step) for step in (0, 1, 4, 5)]
      [0.0, 0.25, 1.0, 1.0]
    """
    peak = config.learning_rate

    def lr_at(
        t: Number, slope: float = peak / config.num_ramp_steps, peak: float = peak, minimum: Any = ops.minimum
    ) -> Number:
        return minimum(slope * t, peak)

    return lr_at


@register_schedule(
    "linear_ramp_to_cosine",
    LinearRampToCosine,
    bounds=lambda c: (0.0, max(c.learning_rate, c.final_learning_rate)),
    milestones=lambda c: [c.num_ramp_steps, c.final_num_steps],
)
def linear_ramp_to_cosine(config: LinearRampToCosine, ops: Ops) -> Closure:
    """A linear ramp from 0 to the peak, then a half cosine down to the final learning rate.

    .. math::

       \\eta(t) = \\begin{cases}
         \\eta_{max} / R \\cdot t & t < R \\\\
         \\eta_f + (\\eta_{max} - \\eta_f) \\cdot c(t) & R \\le t \\le F \\\\
         \\eta_f & t > F
       \\end{cases}, \\quad c(t) = \\tfrac12 (1 + \\cos(\\pi (t - R) / (F - R)))

    where ``η_max`` is ``learning_rate``, ``η_f`` is ``final_learning_rate``, ``R`` is
    ``num_ramp_steps`` and ``F`` is ``final_num_steps`` (``F > R``). ``c`` is computed as
    ``sin(π/2 · (1 - (t - R) / (F - R)))²``, the same value without cancellation near ``F``
    (exactly ``η_f`` at ``F``, so the last piece starts there).

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate, LinearRampToCosine
      >>> schedule = LearningRate(linear_ramp_to_cosine=LinearRampToCosine(
      ...     learning_rate=1.0, final_learning_rate=0.0, num_ramp_steps=2, final_num_steps=6))
      >>> [round(compute_lr(schedule, step), 6) for step in (0, 1, 2, 4, 6, 7)]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    peak, final, ramp = config.learning_rate, config.final_learning_rate, config.num_ramp_steps
    slope, span = peak / ramp, config.final_num_steps - ramp

    def rising(t: Number, slope: float = slope) -> Number:
        return slope * t

    return cosine_anneal(ramp, span, peak, final, ops, before=rising)
