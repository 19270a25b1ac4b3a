"""Anneal from here: ``anneal``, any schedule until a step, then a decay from the value it had there.

OLMo-core's ``OverrideDecay``, the cooldown of a warmup-stable-decay run: a run stopped early (or
extended) gets a proper cooldown without rewriting its schedule. Closed form: the start value is the
base schedule at ``start_step``, computed once when the schedule is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic
import torch

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeLength, PositiveLength
from tml.optimizers.schedules.decay import DecayShape, decay_curve
from tml.optimizers.schedules.ops import SCALAR, TENSOR, Closure, Ops
from tml.optimizers.schedules.registry import (
    evaluate,
    register_schedule,
    schedule_bounds,
    schedule_closure,
    schedule_discontinuities,
    schedule_milestones,
)

if TYPE_CHECKING:
    from tml.optimizers.schedules.learning_rate import LearningRate


class Anneal(StrictConfig):
    """Anneal from here: ``schedule`` until ``start_step``, then from its value there to
    ``final_learning_rate`` over ``steps``."""

    schedule: LearningRate = pydantic.Field(
        description="The schedule annealed: it gives the learning rate before start_step, and its "
        "value at start_step is where the anneal starts."
    )
    start_step: NonNegativeLength = pydantic.Field(
        description="The step at which the anneal starts (counted as the schedule counts: from the "
        "start of the run, or of a sequence phase)."
    )
    steps: PositiveLength = pydantic.Field(description="Number of steps of the anneal (≥ 1).")
    shape: DecayShape = pydantic.Field(
        "linear",
        description="Shape f(p) of the anneal, p the fraction of steps done: linear 1 - p, cosine "
        "(1 + cos(pi p)) / 2, 1-sqrt 1 - sqrt(p).",
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at the end of the anneal and after."
    )


def _bounds(config: Anneal) -> tuple[float, float]:
    low, high = schedule_bounds(config.schedule)
    return min(low, config.final_learning_rate), max(high, config.final_learning_rate)


def _milestones(config: Anneal) -> list[int]:
    start = config.start_step
    before = [step for step in schedule_milestones(config.schedule) if step < start]
    return sorted({*before, *([start] if start else []), start + config.steps})


def _discontinuities(config: Anneal) -> list[int]:
    # The anneal starts at the base's value at start_step: a jump of the base there is kept.
    start = config.start_step
    jumps = [step for step in schedule_discontinuities(config.schedule) if step <= start]
    if start not in jumps and start > 0 and _jumps_at(config.schedule, start):
        jumps.append(start)  # a periodic base lists its first cycles only: it may jump here too
    return jumps


def _jumps_at(schedule: LearningRate, step: int) -> bool:
    """Whether ``schedule`` jumps at ``step``: its value there is not the limit from the left (the
    formula at a real step just before, as the tensor backend computes it)."""
    steps = torch.tensor([step - 1e-9 * step, step], dtype=torch.float64)
    before, at = (float(value) for value in evaluate(schedule, steps, TENSOR))
    low, high = schedule_bounds(schedule)
    return abs(at - before) > 1e-6 * max(abs(low), abs(high))


@register_schedule(
    "anneal",
    Anneal,
    bounds=_bounds,
    milestones=_milestones,
    discontinuities=_discontinuities,
    last_phase=lambda c: c.start_step + c.steps,
)
def anneal(config: Anneal, ops: Ops) -> Closure:
    """Any schedule until ``start_step``, then a decay from its value there to the final learning rate.

    .. math::

       \\eta(t) = \\begin{cases}
         b(t) & t < A \\\\
         \\eta_f + (b(A) - \\eta_f) \\cdot f(p), \\quad p = \\min(t - A, D) / D & t \\ge A
       \\end{cases}

    where ``b`` is ``schedule``, ``A`` is ``start_step``, ``D`` is ``steps``, ``η_f`` is
    ``final_learning_rate`` and ``f`` the ``shape``: ``linear`` ``1 - p``, ``cosine``
    ``(1 + cos(πp)) / 2``, ``1-sqrt`` ``1 - sqrt(p)`` (computed without cancellation, as WSD's).
    ``b(A)`` is computed once, when the schedule is built; the value is continuous at ``A`` unless
    ``b`` jumps there.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate
      >>> schedule = LearningRate.model_validate({"anneal": {
      ...     "schedule": {"cosine_decay": {"learning_rate": 1.0, "decay_steps": 100}},
      ...     "start_step": 50, "steps": 10, "shape": "linear"}})
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 50, 55, 60, 10**12)]
      [1.0, 0.5, 0.25, 0.0, 0.0]
    """
    start, base = config.start_step, schedule_closure(config.schedule, ops)
    at_start = base(start) if ops is SCALAR else schedule_closure(config.schedule, SCALAR)(start)
    decay = decay_curve(float(at_start), config.final_learning_rate, config.steps, config.shape, ops)
    return ops.join([0, start], [base, decay]) if start else decay
