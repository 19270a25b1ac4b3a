"""The registry of schedule kinds, keyed by config class, and ``compute_lr`` which dispatches on it."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch

from tml.optimizers.schedules.backend import SCALAR, TENSOR, Number, Ops
from tml.optimizers.schedules.config import LearningRate

Formula = Callable[[Any, Number, Ops], Number]
FormulaT = TypeVar("FormulaT", bound=Formula)


@dataclasses.dataclass(frozen=True)
class ScheduleKind:
    """One kind of schedule: its ``LearningRate`` key, config class, formula and metadata."""

    key: str
    config_class: type
    formula: Formula
    bounds: Callable[[Any], tuple[float, float]]
    """The least and greatest value the schedule takes over all steps ≥ 0."""
    milestones: Callable[[Any], list[int]]
    """The steps where the formula changes piece (phase ends), ascending; for a periodic schedule,
    those of its first cycles."""
    discontinuities: Callable[[Any], list[int]]
    """The milestones where the value jumps; the formula is continuous at every other one."""
    compile_scalar: Callable[[Any], Callable[[int], float]] | None = None
    """Optional: a fast closure of the step for one config (only the step's branch, numbers bound as
    locals), equal to the formula on the scalar backend; used by :func:`compile_schedule`."""


def _no_discontinuity(_: Any) -> list[int]:
    return []


SCHEDULES: dict[type, ScheduleKind] = {}
"""Every registered kind, by config class (``float`` for ``constant``)."""


def register_schedule(
    key: str,
    config_class: type,
    *,
    bounds: Callable[[Any], tuple[float, float]],
    milestones: Callable[[Any], list[int]],
    discontinuities: Callable[[Any], list[int]] = _no_discontinuity,
) -> Callable[[FormulaT], FormulaT]:
    """Register ``formula(config, t, ops)`` as the schedule of ``LearningRate.<key>``.

    ``bounds``, ``milestones`` and ``discontinuities`` are functions of the kind's config: see
    :class:`ScheduleKind`. The tests check every registered kind against them.
    """

    def register(formula: FormulaT) -> FormulaT:
        if config_class in SCHEDULES:
            raise ValueError(f"a schedule is already registered for {config_class.__name__}")
        SCHEDULES[config_class] = ScheduleKind(
            key, config_class, formula, bounds, milestones, discontinuities
        )
        return formula

    return register


def set_scalar_compiler(config_class: type, compile_scalar: Callable[[Any], Callable[[int], float]]) -> None:
    """Give the registered kind of ``config_class`` a fast scalar closure (see ``ScheduleKind``)."""
    SCHEDULES[config_class] = dataclasses.replace(SCHEDULES[config_class], compile_scalar=compile_scalar)


def schedule_kind(lr_config: LearningRate | Any) -> tuple[ScheduleKind, Any]:
    """The registry entry and kind config of a ``LearningRate`` (or of a kind config itself)."""
    kind_config = lr_config.kind() if isinstance(lr_config, LearningRate) else lr_config
    entry = SCHEDULES.get(type(kind_config))
    if entry is None:
        raise TypeError(f"no schedule is registered for {type(kind_config).__name__}")
    return entry, kind_config


def evaluate(lr_config: LearningRate | Any, t: Number, ops: Ops) -> Number:
    """Evaluate a schedule on either backend; for formulas that nest other schedules."""
    entry, kind_config = schedule_kind(lr_config)
    return entry.formula(kind_config, t, ops)


@overload
def compute_lr(lr_config: LearningRate | Any, step: int) -> float: ...
@overload
def compute_lr(lr_config: LearningRate | Any, step: torch.Tensor) -> torch.Tensor: ...
@overload
def compute_lr(lr_config: LearningRate | Any, step: Any) -> Any: ...
def compute_lr(lr_config: LearningRate | Any, step: Any) -> Any:
    """The learning rate of a schedule at an optimizer step, in closed form.

    Args:
      lr_config: a ``LearningRate`` (or the config of one kind).
      step: an ``int`` ≥ 0; or a 1-D integer torch tensor or numpy array of steps ≥ 0.

    Returns:
      A ``float`` for an ``int`` step; a float64 tensor (numpy array) of the same length for a
      tensor (array) of steps, computed without a Python loop.

    Examples:
      >>> from tml.optimizers.config import LearningRate, LinearRampToConstant
      >>> schedule = LearningRate(linear_ramp_to_constant=LinearRampToConstant(
      ...     learning_rate=0.1, num_ramp_steps=10))
      >>> [compute_lr(schedule, step) for step in (0, 5, 10, 11)]
      [0.0, 0.05, 0.1, 0.1]
    """
    entry, kind_config = schedule_kind(lr_config)
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return float(entry.formula(kind_config, int(step), SCALAR))
    if isinstance(step, torch.Tensor):
        return _compute_on_tensor(entry, kind_config, step)
    if type(step).__module__ == "numpy" and hasattr(step, "dtype"):
        return _compute_on_tensor(entry, kind_config, torch.from_numpy(step)).numpy()
    raise TypeError(f"step must be an int or a 1-D integer tensor or array, got {type(step).__name__}")


def _compute_on_tensor(entry: ScheduleKind, kind_config: Any, steps: torch.Tensor) -> torch.Tensor:
    if (
        steps.ndim != 1
        or steps.dtype.is_floating_point
        or steps.dtype.is_complex
        or steps.dtype == torch.bool
    ):
        raise TypeError(
            f"steps must be a 1-D integer tensor, got dtype {steps.dtype} and shape {tuple(steps.shape)}"
        )
    if steps.numel() and int(steps.min()) < 0:
        raise ValueError(f"steps must be >= 0, got {int(steps.min())}")
    t = steps.to(torch.float64)
    values = entry.formula(kind_config, t, TENSOR)
    if not isinstance(values, torch.Tensor):
        values = torch.full_like(t, values)
    return values.to(torch.float64).expand(t.shape).contiguous()


def compile_schedule(lr_config: LearningRate | Any) -> Callable[[int], float]:
    """``compute_lr`` for one schedule as a closure of the step (``int`` ≥ 0, not checked).

    The lookup is done once, here. The kind's ``compile_scalar`` closure is used when it has one
    (equal values, evaluated faster); otherwise the generic formula on the scalar backend.
    """
    entry, kind_config = schedule_kind(lr_config)
    if entry.compile_scalar is not None:
        return entry.compile_scalar(kind_config)
    formula = entry.formula

    def lr_at(step: int) -> float:
        return float(formula(kind_config, step, SCALAR))

    return lr_at


def schedule_bounds(lr_config: LearningRate | Any) -> tuple[float, float]:
    """The least and greatest learning rate the schedule takes."""
    entry, kind_config = schedule_kind(lr_config)
    return entry.bounds(kind_config)


def schedule_milestones(lr_config: LearningRate | Any) -> list[int]:
    """The steps at which the schedule changes phase, ascending."""
    entry, kind_config = schedule_kind(lr_config)
    return entry.milestones(kind_config)


def schedule_discontinuities(lr_config: LearningRate | Any) -> list[int]:
    """The milestones at which the schedule's value jumps, ascending."""
    entry, kind_config = schedule_kind(lr_config)
    return entry.discontinuities(kind_config)
