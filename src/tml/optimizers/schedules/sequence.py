"""The composite kind: ``sequence``, schedules joined one after the other (optax ``join_schedules``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import PositiveLength
from tml.optimizers.schedules.ops import Closure, Ops
from tml.optimizers.schedules.registry import (
    register_schedule,
    schedule_bounds,
    schedule_closure,
    schedule_discontinuities,
    schedule_last_phase,
    schedule_milestones,
)

if TYPE_CHECKING:
    from tml.optimizers.schedules.learning_rate import LearningRate


class SequencePhase(StrictConfig):
    """One phase of a ``sequence``: a schedule that runs for ``steps`` steps (the last: for ever)."""

    steps: PositiveLength | None = pydantic.Field(
        None,
        description="Number of steps of this phase (≥ 1); required on every phase but the last, "
        "forbidden on the last.",
    )
    schedule: LearningRate = pydantic.Field(
        description="The schedule of this phase; it sees the step counted from the start of the phase."
    )


class ScheduleSequence(pydantic.RootModel[list[SequencePhase]]):
    """Schedules one after the other; each sees the step relative to the start of its phase."""

    root: list[SequencePhase] = pydantic.Field(
        description="The phases in order: each but the last has steps; the last runs forever."
    )

    @pydantic.field_validator("root")
    @classmethod
    def _well_formed(cls, phases: list[SequencePhase]) -> list[SequencePhase]:
        if not phases:
            raise ValueError("a sequence needs at least one phase, got none")
        last = len(phases) - 1
        for index, phase in enumerate(phases):
            if index < last and phase.steps is None:
                raise ValueError(
                    f"phase {index} of {len(phases)} has no steps: every phase but the last needs "
                    f"steps ≥ 1, got steps=None"
                )
            if index == last and phase.steps is not None:
                raise ValueError(
                    f"the last phase ({index}) runs until the end and takes no steps, got steps={phase.steps}"
                )
        return phases

    def phase_starts(self) -> list[int]:
        """The step at which each phase starts: 0, then the running sum of ``steps``."""
        starts = [0]
        for phase in self.root[:-1]:
            starts.append(starts[-1] + (phase.steps or 0))
        return starts


def _sequence_bounds(sequence: ScheduleSequence) -> tuple[float, float]:
    bounds = [schedule_bounds(phase.schedule) for phase in sequence.root]
    return min(low for low, _ in bounds), max(high for _, high in bounds)


def _child_steps(sequence: ScheduleSequence, steps_of: Callable[[Any], list[int]]) -> list[int]:
    """The phase boundaries and the children's steps (``steps_of``) that fall inside their phase."""
    starts = sequence.phase_starts()
    found = set(starts[1:])
    for index, (start, phase) in enumerate(zip(starts, sequence.root, strict=True)):
        end = starts[index + 1] if index + 1 < len(starts) else None
        found.update(start + step for step in steps_of(phase.schedule) if end is None or start + step < end)
    return sorted(found)


@register_schedule(
    "sequence",
    ScheduleSequence,
    bounds=_sequence_bounds,
    milestones=lambda c: _child_steps(c, schedule_milestones),
    discontinuities=lambda c: _child_steps(c, schedule_discontinuities),
    last_phase=lambda c: c.phase_starts()[-1] + schedule_last_phase(c.root[-1].schedule),
)
def sequence(config: ScheduleSequence, ops: Ops) -> Closure:
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
    return ops.join(config.phase_starts(), [schedule_closure(phase.schedule, ops) for phase in config.root])
