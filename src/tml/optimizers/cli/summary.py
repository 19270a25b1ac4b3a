"""What ``validate`` and ``show`` print: the facts of each group's schedule and its LR at chosen steps."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

from tml.optimizers.config import LearningRate
from tml.optimizers.schedules import (
    compile_schedule,
    compute_lr,
    schedule_bounds,
    schedule_kind,
    schedule_milestones,
)


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
    final_from: int | None
    """The step from which the learning rate holds its final value (the schedule's total length:
    ``warmup_steps + decay_steps`` for ``cosine_decay``, ``final_num_steps`` for
    ``linear_ramp_to_cosine``); ``None`` when it keeps changing (``inverse_sqrt``, cycles)."""
    final: float | None
    """The learning rate held from ``final_from`` on; ``None`` when it keeps changing."""


def schedule_facts(schedule: LearningRate, multiplier: float = 1.0) -> ScheduleFacts:
    """The kind, bounds, phase boundaries and warmup length of a schedule (scaled by ``multiplier``).

    Examples:
      >>> from tml.optimizers.config import LinearRampToCosine
      >>> facts = schedule_facts(LearningRate(linear_ramp_to_cosine=LinearRampToCosine(
      ...     learning_rate=0.1, final_learning_rate=0.0, num_ramp_steps=10, final_num_steps=100)))
      >>> facts.kind, facts.peak, facts.milestones, facts.warmup_steps, facts.final_from, facts.final
      ('linear_ramp_to_cosine', 0.1, [10, 100], 10, 100, 0.0)
    """
    entry, _ = schedule_kind(schedule)
    lowest, peak = schedule_bounds(schedule)
    milestones = sorted(set(schedule_milestones(schedule)))
    warmup: int | None = None
    for step in [0, *milestones]:
        if math.isclose(compute_lr(schedule, step), peak, rel_tol=1e-9, abs_tol=0.0):
            warmup = step
            break
    final_from = final_step(schedule)
    final = None if final_from is None else multiplier * compute_lr(schedule, final_from)
    return ScheduleFacts(
        entry.key, multiplier * lowest, multiplier * peak, milestones, warmup, final_from, final
    )


FAR_STEP = 10**13
"""A step far past any phase boundary a config may hold: the tail of a schedule is probed there."""


def final_step(schedule: LearningRate) -> int | None:
    """The first step from which the schedule holds one value for ever, or ``None`` if it keeps changing.

    Between two phase boundaries, and past the last one, a schedule is one formula: constant, a
    monotone approach to a value (a decay that ends on a floor, a step), or neither (cycles). The
    tail past the last boundary is probed far out (``inverse_sqrt``, cycles: ``None``); then, from
    the last boundary back, the first step of the pieces that hold the final value is found, by
    bisection in the piece where it is reached (``exponential_decay`` reaching its floor).

    Examples:
      >>> from tml.optimizers.config import CosineDecay, InverseSqrt
      >>> final_step(LearningRate(cosine_decay=CosineDecay(
      ...     learning_rate=1.0, warmup_steps=100, decay_steps=900)))
      1000
      >>> final_step(LearningRate(inverse_sqrt=InverseSqrt(
      ...     learning_rate=1.0, warmup_steps=100, timescale=100))) is None
      True
    """
    lr_at = compile_schedule(schedule)
    end = lr_at(FAR_STEP)
    if any(lr_at(FAR_STEP + offset) != end for offset in (1, 7, 1_000_003)):
        return None  # still changing far out: a decay without floor, or cycles
    boundaries = sorted({0, *schedule_milestones(schedule)})
    pieces = [(boundaries[-1], FAR_STEP), *reversed(list(itertools.pairwise(boundaries)))]
    for first, last in pieces:  # from the last piece back; lr_at(last) == end in each
        probes = [first, *(first + 2**power for power in range(64) if first + 2**power < last), last]
        values = [lr_at(step) for step in probes]
        if all(value == end for value in values):
            continue  # the whole piece holds the final value: it may start earlier still
        falling = all(later <= earlier for earlier, later in itertools.pairwise(values))
        rising = all(later >= earlier for earlier, later in itertools.pairwise(values))
        if not (falling or rising):
            return None if last == FAR_STEP else last  # not one approach to a value (fading cycles)
        low, high = first, last  # the first step of the piece at the final value, by bisection
        while low < high:
            middle = (low + high) // 2
            if lr_at(middle) == end:
                high = middle
            else:
                low = middle + 1
        return low
    return 0


def default_end(schedules: Iterable[LearningRate]) -> int:
    """The step where a plot ends by default: far enough that every schedule shows its shape.

    The greatest of: the last step at which a schedule ends (:func:`final_step`), plus 10%; for a
    schedule that decays for ever (``inverse_sqrt``, ``exponential_decay`` without a floor), 10
    times its last phase boundary (its warmup), or, without one, the step where it falls to a tenth
    of its peak; for a cycling one, its last listed phase boundary plus 10%. 1000 steps when that
    is 0 (constants only).

    Examples:
      >>> from tml.optimizers.config import InverseSqrt, LinearRampToCosine
      >>> cosine = LearningRate(linear_ramp_to_cosine=LinearRampToCosine(
      ...     learning_rate=0.1, final_learning_rate=0.0, num_ramp_steps=10, final_num_steps=100))
      >>> inverse_sqrt = LearningRate(inverse_sqrt=InverseSqrt(
      ...     learning_rate=0.1, warmup_steps=40, timescale=40))
      >>> constant = LearningRate(constant=0.1)
      >>> default_end([cosine]), default_end([cosine, inverse_sqrt]), default_end([constant])
      (110, 400, 1000)
    """
    end = 0
    for schedule in schedules:
        milestones = schedule_milestones(schedule)
        last = max(milestones, default=0)
        lr_at = compile_schedule(schedule)
        final = final_step(schedule)
        if final is not None and (final in milestones or lr_at(final) != 0.0):
            end = max(end, final + max(1, final // 10) if final else 0)
            continue  # (an end at 0 reached by float underflow is no end to show: it decays for ever)
        tail = [lr_at(last + 2**power) for power in range(44)]
        if not all(later <= earlier for earlier, later in itertools.pairwise(tail)):
            end = max(end, last + max(1, last // 10))  # cycles: the listed ones
        elif last > 0:
            end = max(end, 10 * last)
        else:
            end = max(end, _first_step_below(lr_at, schedule_bounds(schedule)[1] / 10))
    return end if end > 0 else 1000


def _first_step_below(lr_at: Callable[[int], float], level: float) -> int:
    """The first step at which a decreasing schedule is at or below ``level`` (by bisection)."""
    low, high = 0, FAR_STEP
    while low < high:
        middle = (low + high) // 2
        if lr_at(middle) <= level:
            high = middle
        else:
            low = middle + 1
    return low


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
    "final_step",
    "format_lr",
    "learning_rates",
    "milestone_steps",
    "schedule_facts",
]
