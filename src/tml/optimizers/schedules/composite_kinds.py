"""The composite kind: ``sequence``, schedules joined one after the other (optax ``join_schedules``)."""

from __future__ import annotations

import functools
from typing import Any

from tml.optimizers.schedules.backend import Number, Ops
from tml.optimizers.schedules.config import ScheduleSequence
from tml.optimizers.schedules.registry import (
    evaluate,
    register_schedule,
    schedule_bounds,
    schedule_discontinuities,
    schedule_milestones,
)


def _sequence_bounds(sequence: ScheduleSequence) -> tuple[float, float]:
    bounds = [schedule_bounds(phase.schedule) for phase in sequence.root]
    return min(low for low, _ in bounds), max(high for _, high in bounds)


def _child_steps(sequence: ScheduleSequence, steps_of: Any, *, with_boundaries: bool) -> list[int]:
    starts = sequence.phase_starts()
    found = set(starts[1:]) if with_boundaries else set()
    for index, (start, phase) in enumerate(zip(starts, sequence.root, strict=True)):
        end = starts[index + 1] if index + 1 < len(starts) else None
        found.update(start + step for step in steps_of(phase.schedule) if end is None or start + step < end)
    return sorted(found)


@register_schedule(
    "sequence",
    ScheduleSequence,
    bounds=_sequence_bounds,
    milestones=functools.partial(_child_steps, steps_of=schedule_milestones, with_boundaries=True),
    discontinuities=functools.partial(_child_steps, steps_of=schedule_discontinuities, with_boundaries=True),
)
def sequence(config: ScheduleSequence, t: Number, ops: Ops) -> Number:
    """Schedules one after the other, each seeing the step counted from the start of its phase.

    .. math:: \\eta(t) = \\eta_k(t - s_k), \\quad s_0 = 0, \\; s_{k+1} = s_k + n_k

    where phase ``k`` is the last with ``s_k ≤ t``, ``n_k`` is its ``steps`` and ``η_k`` its
    ``schedule`` (itself any kind, a ``sequence`` too). The value may jump at a phase boundary.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate
      >>> schedule = LearningRate(sequence=[
      ...     {"steps": 4, "schedule": {"linear": {
      ...         "start_learning_rate": 0.0, "end_learning_rate": 1.0, "steps": 4}}},
      ...     {"schedule": {"piecewise_constant": {
      ...         "learning_rate_boundaries": [2], "learning_rate_values": [1.0, 0.1]}}},
      ... ])
      >>> [compute_lr(schedule, step) for step in (0, 2, 4, 5, 6, 10**12)]
      [0.0, 0.5, 1.0, 1.0, 0.1, 0.1]
    """
    pieces = [functools.partial(evaluate, phase.schedule, ops=ops) for phase in config.root]
    return ops.join(t, config.phase_starts(), pieces)
