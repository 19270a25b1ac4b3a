"""What ``validate`` and ``show`` print: the facts of each group's schedule and its LR at chosen steps."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from tml.optimizers.config import LearningRate
from tml.optimizers.schedules import compute_lr, schedule_bounds, schedule_kind, schedule_milestones


@dataclasses.dataclass(frozen=True)
class ScheduleFacts:
    """The landmarks of one schedule, computed from its registry entry."""

    kind: str
    """The ``LearningRate`` key (``linear_ramp_to_cosine``…)."""
    lowest: float
    peak: float
    """The least and greatest learning rate over all steps (``schedule_bounds``)."""
    milestones: list[int]
    """The steps where the schedule changes phase (``schedule_milestones``)."""
    warmup_steps: int | None
    """The first step at which the peak is reached: 0 when the schedule starts at its peak, ``None``
    when no phase boundary reaches it."""


def schedule_facts(schedule: LearningRate, multiplier: float = 1.0) -> ScheduleFacts:
    """The kind, bounds, phase boundaries and warmup length of a schedule (scaled by ``multiplier``).

    Examples:
      >>> from tml.optimizers.config import LinearRampToCosine
      >>> facts = schedule_facts(LearningRate(linear_ramp_to_cosine=LinearRampToCosine(
      ...     learning_rate=0.1, final_learning_rate=0.0, num_ramp_steps=10, final_num_steps=100)))
      >>> facts.kind, facts.peak, facts.milestones, facts.warmup_steps
      ('linear_ramp_to_cosine', 0.1, [10, 100], 10)
    """
    entry, _ = schedule_kind(schedule)
    lowest, peak = schedule_bounds(schedule)
    milestones = sorted(set(schedule_milestones(schedule)))
    warmup: int | None = None
    for step in [0, *milestones]:
        if math.isclose(compute_lr(schedule, step), peak, rel_tol=1e-9, abs_tol=0.0):
            warmup = step
            break
    return ScheduleFacts(entry.key, multiplier * lowest, multiplier * peak, milestones, warmup)


def default_end(schedules: Iterable[LearningRate]) -> int:
    """The step where a table or plot ends by default: the last phase boundary of any group, plus 10%.

    With no phase boundary at all (a constant schedule), 1000 steps.
    """
    last = max((max(schedule_milestones(schedule), default=0) for schedule in schedules), default=0)
    return last + max(1, last // 10) if last > 0 else 1000


def milestone_steps(schedules: Iterable[LearningRate], end: int | None) -> list[int]:
    """Step 0, every group's phase boundaries (up to ``end``) and ``end``, ascending."""
    steps = {0}
    for schedule in schedules:
        steps.update(schedule_milestones(schedule))
    if end is not None:
        steps = {step for step in steps if step <= end} | {end}
    return sorted(steps)


def learning_rates(
    schedules: Mapping[str, LearningRate],
    steps: Sequence[int],
    multipliers: Mapping[str, float] | None = None,
) -> dict[str, list[float]]:
    """Each group's learning rate at ``steps`` (one vectorized ``compute_lr`` per group), times the
    group's multiplier (1 when not given)."""
    tensor = torch.tensor(list(steps), dtype=torch.int64)
    factors = multipliers or {}
    return {
        name: (factors.get(name, 1.0) * compute_lr(schedule, tensor)).tolist()
        for name, schedule in schedules.items()
    }


def format_lr(value: float) -> str:
    """A learning rate as printed in tables: 6 significant digits."""
    return f"{value:.6g}"


__all__ = [
    "ScheduleFacts",
    "default_end",
    "format_lr",
    "learning_rates",
    "milestone_steps",
    "schedule_facts",
]
