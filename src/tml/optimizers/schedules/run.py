"""Lengths relative to the run: ``"2%"`` of ``total_steps``, ``"3ep"`` epochs, resolved once to steps.

Every length field of every schedule kind (``warmup_steps``, ``decay_steps``, boundaries,
milestones, cycle lengths, sequence phase lengths…) takes a number of steps or a string:

- ``"<p>%"``: ``p`` percent of the run's ``total_steps`` (``"2%"``, ``"12.5%"``);
- ``"<e>ep"``: ``e`` epochs of ``steps_per_epoch`` steps (``"3ep"``, ``"0.5ep"``).

:func:`resolve_schedule` turns them into integer steps, once, when the run is known (the optimizer
config's ``total_steps`` / ``steps_per_epoch``, or ``build_optimizer(..., total_steps=...)``): the
exact product (the decimal as written times the run's number, in rational arithmetic) rounded to
the nearest integer, a half up (``"2.5%"`` of 100 steps is 3). The resolved config is validated
again, so every rule of absolute lengths applies to it (a ramp that would end after its cosine is
refused, as it is with steps); and a schedule with a relative length must reach its last phase
within the run (``schedule_last_phase(resolved) <= total_steps``): a warmup of ``"2%"`` and a decay
of ``"100%"`` end after the run, and are refused. A schedule of absolute lengths only is not compared
with the run: its horizon may differ from the run's on purpose.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any, TypeVar

import pydantic

from tml.core.config import located_error
from tml.optimizers.fields import RELATIVE_LENGTH, relative_lengths
from tml.optimizers.schedules.registry import schedule_last_phase

ScheduleT = TypeVar("ScheduleT", bound=pydantic.BaseModel)


@dataclasses.dataclass(frozen=True)
class Run:
    """What relative lengths are relative to: the run's ``total_steps`` and ``steps_per_epoch``."""

    total_steps: int | None = None
    steps_per_epoch: int | None = None


def length_in_steps(text: str, run: Run) -> int:
    """A relative length (``"2%"``, ``"3ep"``) in steps: the exact product, rounded half up.

    Raises:
      ValueError: ``text`` is not a relative length, or the run lacks the number it needs.

    Examples:
      >>> [length_in_steps(text, Run(total_steps=1000, steps_per_epoch=30))
      ...  for text in ("2%", "0.05%", "0.15%", "3ep", "0.5ep")]
      [20, 1, 2, 90, 15]
    """
    found = RELATIVE_LENGTH.fullmatch(text)
    if found is None:
        raise ValueError(f"not a length relative to the run: {text!r}")
    number = Fraction(found["number"])
    if found["unit"] == "%":
        if run.total_steps is None:
            raise ValueError(
                f"{text!r} is a fraction of the run's total_steps, which is not given: set total_steps in "
                "the optimizer config, or pass build_optimizer(model, config, total_steps=...) "
                "(tml-optim: --total-steps)"
            )
        exact = number * run.total_steps / 100
    else:
        if run.steps_per_epoch is None:
            raise ValueError(
                f"{text!r} is a number of epochs, and steps_per_epoch is not given: set steps_per_epoch "
                "in the optimizer config, or pass build_optimizer(model, config, steps_per_epoch=...) "
                "(tml-optim: --steps-per-epoch)"
            )
        exact = number * run.steps_per_epoch
    return math.floor(exact + Fraction(1, 2))


def can_resolve(schedule: Any, run: Run) -> bool:
    """Whether the run gives every number the schedule's relative lengths need."""
    for _, text in relative_lengths(schedule):
        needs_total = text.endswith("%")
        if (run.total_steps if needs_total else run.steps_per_epoch) is None:
            return False
    return True


def resolved_lengths(schedule: Any, run: Run) -> list[tuple[tuple[str | int, ...], str, int]]:
    """Every relative length of ``schedule`` with its path and its value in steps (``run`` must give
    what they need: :func:`can_resolve`)."""
    return [(path, text, length_in_steps(text, run)) for path, text in relative_lengths(schedule)]


def resolve_schedule(
    schedule: ScheduleT,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
    *,
    title: str = "LearningRate",
    path: tuple[str | int, ...] = (),
) -> ScheduleT:
    """The schedule with every length relative to the run resolved to steps (itself if it has none).

    Args:
      schedule: a ``LearningRate`` (or the config of one kind).
      total_steps: the run's length in steps, for ``"<p>%"`` lengths.
      steps_per_epoch: for ``"<e>ep"`` lengths.
      title, path: where the schedule stands in the enclosing config, for the messages.

    Raises:
      pydantic.ValidationError: at the path of the field: a relative length the run gives no number
        for; a resolved config that breaks a rule of the kind (listing what the relative lengths
        resolved to); a schedule whose last phase starts after ``total_steps``.

    Examples:
      >>> from tml.optimizers.schedules import LearningRate
      >>> schedule = LearningRate.model_validate({"cosine_decay": {
      ...     "learning_rate": 0.1, "warmup_steps": "2%", "decay_steps": "98%"}})
      >>> resolved = resolve_schedule(schedule, total_steps=1000)
      >>> resolved.cosine_decay.warmup_steps, resolved.cosine_decay.decay_steps
      (20, 980)
    """
    run = Run(total_steps, steps_per_epoch)
    found = relative_lengths(schedule)
    if not found:
        return schedule
    data: Any = schedule.model_dump(mode="python", exclude_none=True)
    resolved = []
    for where, text in found:
        try:
            steps = length_in_steps(text, run)
        except ValueError as error:
            raise located_error(title, [((*path, *where), str(error), text)]) from None
        _replace(data, where, steps)
        resolved.append((where, text, steps))
    note = _note(resolved, run)
    try:
        result = type(schedule).model_validate(data)
    except pydantic.ValidationError as error:  # a rule of the kind, on the resolved steps
        issues = [
            (
                (*path, *detail["loc"]),
                f"{str(detail['msg']).removeprefix('Value error, ')} {note}",
                detail["input"],
            )
            for detail in error.errors(include_url=False)
        ]
        raise located_error(title, issues) from None
    if total_steps is not None:
        last = schedule_last_phase(result)
        if last > total_steps:
            message = (
                f"the schedule's last phase starts at step {last}, after the run's total_steps "
                f"{total_steps}: a schedule with lengths relative to the run must fit in it {note}; "
                "shorten a phase"
            )
            raise located_error(title, [(path, message, found[0][1])])
    return result


def _replace(data: Any, where: tuple[str | int, ...], value: int) -> None:
    for part in where[:-1]:
        data = data[part]
    data[where[-1]] = value


def _note(resolved: list[tuple[tuple[str | int, ...], str, int]], run: Run) -> str:
    parts = [f"{'.'.join(map(str, where))} {text!r} = {steps}" for where, text, steps in resolved]
    of = [f"{name} {value}" for name, value in dataclasses.asdict(run).items() if value is not None]
    return f"(relative lengths resolved with {', '.join(of)}: {', '.join(parts)})"


__all__ = ["Run", "can_resolve", "length_in_steps", "resolve_schedule", "resolved_lengths"]
