"""The four schedule kinds of the original tml: constant, piecewise constant and two linear ramps.

Their semantics are the contract: they stay exactly as the original computed them.
"""

from __future__ import annotations

from tml.optimizers.schedules.backend import Number, Ops, half_cosine
from tml.optimizers.schedules.config import (
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
)
from tml.optimizers.schedules.registry import register_schedule


@register_schedule("constant", float, bounds=lambda value: (value, value), milestones=lambda _: [])
def constant(value: float, t: Number, ops: Ops) -> Number:
    """The same learning rate at every step.

    .. math:: \\eta(t) = c

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate
      >>> [compute_lr(LearningRate(constant=0.5), step) for step in (0, 10**12)]
      [0.5, 0.5]
    """
    return ops.full_like(t, value)


@register_schedule(
    "piecewise_constant",
    PiecewiseConstant,
    bounds=lambda c: (min(c.learning_rate_values), max(c.learning_rate_values)),
    milestones=lambda c: list(c.learning_rate_boundaries),
    discontinuities=lambda c: list(c.learning_rate_boundaries),
)
def piecewise_constant(config: PiecewiseConstant, t: Number, ops: Ops) -> Number:
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
    index = ops.bisect_right(config.learning_rate_boundaries, t)
    return ops.take(config.learning_rate_values, index)


@register_schedule(
    "linear_ramp_to_constant",
    LinearRampToConstant,
    bounds=lambda c: (0.0, c.learning_rate),
    milestones=lambda c: [c.num_ramp_steps],
)
def linear_ramp_to_constant(config: LinearRampToConstant, t: Number, ops: Ops) -> Number:
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
    return ops.minimum(config.learning_rate / config.num_ramp_steps * t, config.learning_rate)


@register_schedule(
    "linear_ramp_to_cosine",
    LinearRampToCosine,
    bounds=lambda c: (0.0, max(c.learning_rate, c.final_learning_rate)),
    milestones=lambda c: [c.num_ramp_steps, c.final_num_steps],
)
def linear_ramp_to_cosine(config: LinearRampToCosine, t: Number, ops: Ops) -> Number:
    """A linear ramp from 0 to the peak, then a half cosine down to the final learning rate.

    .. math::

       \\eta(t) = \\begin{cases}
         \\eta_{max} / R \\cdot t & t < R \\\\
         \\eta_f + (\\eta_{max} - \\eta_f) \\cdot c(t) & R \\le t \\le F \\\\
         \\eta_f & t > F
       \\end{cases}, \\quad c(t) = \\tfrac12 (1 + \\cos(\\pi (t - R) / (F - R)))

    where ``η_max`` is ``learning_rate``, ``η_f`` is ``final_learning_rate``, ``R`` is
    ``num_ramp_steps`` and ``F`` is ``final_num_steps`` (``F > R``). ``c`` is computed as
    ``sin(π/2 · (1 - (t - R) / (F - R)))²``, the same value without cancellation near ``F``.

    Examples:
      >>> from tml.optimizers import compute_lr, LearningRate, LinearRampToCosine
      >>> schedule = LearningRate(linear_ramp_to_cosine=LinearRampToCosine(
      ...     learning_rate=1.0, final_learning_rate=0.0, num_ramp_steps=2, final_num_steps=6))
      >>> [round(compute_lr(schedule, step), 6) for step in (0, 1, 2, 4, 6, 7)]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    peak, final = config.learning_rate, config.final_learning_rate
    ramp, end = config.num_ramp_steps, config.final_num_steps
    progress = t - ramp
    progress /= end - ramp
    cosine = half_cosine(ops, progress)
    cosine *= peak - final
    cosine += final
    decayed = ops.fill_where_(t > end, final, cosine)
    return ops.fill_where_(t < ramp, peak / ramp * t, decayed)
