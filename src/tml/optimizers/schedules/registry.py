"""The registry of schedule kinds, keyed by config class, and the functions that dispatch on it.

A kind is registered with its constructor ``make(config, ops) -> closure of the step`` (see
:mod:`ops`). The same constructor serves the scalar path (:func:`compile_schedule`, what
``LRShim.step()`` calls every step) and the vectorized one (:func:`compute_lr` on a tensor of
steps). A kind whose config inherits :class:`WarmupFields` gets the warmup joined in front, here,
once for every such kind.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch

from tml.optimizers.fields import MAX_SCHEDULE_STEP, relative_lengths
from tml.optimizers.schedules.ops import SCALAR, TENSOR, Closure, Number, Ops
from tml.optimizers.schedules.warmup import (
    WarmupFields,
    join_warmup,
    warmup_bounds,
    warmup_milestones,
    warmup_shift,
)

Make = Callable[[Any, Ops], Closure]
MakeT = TypeVar("MakeT", bound=Make)


def _no_discontinuity(_: Any) -> list[int]:
    return []


def _no_last_phase(_: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class ScheduleKind:
    """One kind of schedule: its ``LearningRate`` key, config class, constructor and metadata.

    ``make``, ``bounds``, ``milestones`` and ``discontinuities`` are the kind's own, before the
    warmup (when ``warms_up``); the functions of this module apply it.
    """

    key: str
    config_class: type
    make: Make
    """``make(config, ops)``: does the config work once and returns the closure of the step."""
    bounds: Callable[[Any], tuple[float, float]]
    """The least and greatest value the schedule takes over all steps ≥ 0."""
    milestones: Callable[[Any], list[int]]
    """The steps where the formula changes piece (phase ends), ascending; for a periodic schedule,
    those of its first cycles."""
    discontinuities: Callable[[Any], list[int]] = _no_discontinuity
    """The milestones where the value jumps; the formula is continuous at every other one."""
    last_phase: Callable[[Any], int | None] = _no_last_phase
    """The step at which the kind's last phase starts: from there the formula has no more phase
    boundaries (it holds its final value, or is periodic, or asymptotic). ``None``: the last of its
    milestones (0 without any)."""

    @property
    def warms_up(self) -> bool:
        """Whether the config has the warmup fields (:class:`WarmupFields`)."""
        return issubclass(self.config_class, WarmupFields)


SCHEDULES: dict[type, ScheduleKind] = {}
"""Every registered kind, by config class (``float`` for ``constant``)."""


def register_schedule(
    key: str,
    config_class: type,
    *,
    bounds: Callable[[Any], tuple[float, float]],
    milestones: Callable[[Any], list[int]],
    discontinuities: Callable[[Any], list[int]] = _no_discontinuity,
    last_phase: Callable[[Any], int | None] = _no_last_phase,
) -> Callable[[MakeT], MakeT]:
    """Register ``make(config, ops)`` as the constructor of ``LearningRate.<key>``.

    ``bounds``, ``milestones``, ``discontinuities`` and ``last_phase`` are functions of the kind's
    config: see :class:`ScheduleKind`. The tests check every registered kind against them.
    """

    def register(make: MakeT) -> MakeT:
        if config_class in SCHEDULES:
            raise ValueError(f"a schedule is already registered for {config_class.__name__}")
        SCHEDULES[config_class] = ScheduleKind(
            key, config_class, make, bounds, milestones, discontinuities, last_phase
        )
        return make

    return register


def schedule_kind(lr_config: Any) -> tuple[ScheduleKind, Any]:
    """The registry entry and kind config of a ``LearningRate`` (or of a kind config itself)."""
    entry = SCHEDULES.get(type(lr_config))
    if entry is None and hasattr(lr_config, "kind"):  # a LearningRate: the config of its chosen key
        lr_config = lr_config.kind()
        entry = SCHEDULES.get(type(lr_config))
    if entry is None:
        raise TypeError(f"no schedule is registered for {type(lr_config).__name__}")
    return entry, lr_config


def refuse_unresolved(lr_config: Any) -> None:
    """Raise if the schedule still holds lengths relative to the run (``"2%"``, ``"3ep"``).

    Raises:
      ValueError: naming each relative length and how to resolve it.
    """
    found = relative_lengths(lr_config)
    if found:
        listing = ", ".join(f"{'.'.join(map(str, path))} {text!r}" for path, text in found)
        raise ValueError(
            f"the schedule has lengths relative to the run that are not resolved to steps ({listing}): "
            "give the run's total_steps (and steps_per_epoch for epochs) in the optimizer config or to "
            "build_optimizer(model, config, total_steps=...), or resolve the schedule with "
            "resolve_schedule(schedule, total_steps=...)"
        )


def schedule_closure(lr_config: Any, ops: Ops) -> Closure:
    """The closure of the step of a schedule on one backend (the warmup joined in front)."""
    entry, kind_config = schedule_kind(lr_config)
    body = entry.make(kind_config, ops)
    if not entry.warms_up or kind_config.warmup_steps == 0:
        return body
    at_zero = body(0) if ops is SCALAR else entry.make(kind_config, SCALAR)(0)
    return join_warmup(kind_config, body, at_zero, ops)


def compile_schedule(lr_config: Any) -> Callable[[int], float]:
    """``compute_lr`` for one schedule as a closure of the step (``int`` ≥ 0, not checked).

    The config work is done once, here; the closure evaluates only the step's piece.

    Examples:
      >>> from tml.optimizers.schedules import LearningRate
      >>> lr_at = compile_schedule(LearningRate(constant=0.5))
      >>> lr_at(0), lr_at(10**12)
      (0.5, 0.5)
    """
    refuse_unresolved(lr_config)
    return schedule_closure(lr_config, SCALAR)


def evaluate(lr_config: Any, t: Number, ops: Ops) -> Number:
    """A schedule at ``t`` on either backend; on tensors ``t`` may hold fractional steps."""
    refuse_unresolved(lr_config)
    value = schedule_closure(lr_config, ops)(t)
    if isinstance(t, torch.Tensor):
        return _full(value, t)
    return value


def _full(value: Number, t: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        return torch.full_like(t, value, dtype=torch.float64)
    return value.to(torch.float64).expand(t.shape).contiguous()


@overload
def compute_lr(lr_config: Any, step: int) -> float: ...
@overload
def compute_lr(lr_config: Any, step: torch.Tensor) -> torch.Tensor: ...
@overload
def compute_lr(lr_config: Any, step: Any) -> Any: ...
def compute_lr(lr_config: Any, step: Any) -> Any:
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
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return float(compile_schedule(lr_config)(int(step)))
    if isinstance(step, torch.Tensor):
        return _compute_on_tensor(lr_config, step)
    if type(step).__module__ == "numpy" and hasattr(step, "dtype"):
        return _compute_on_tensor(lr_config, torch.from_numpy(step)).numpy()
    raise TypeError(f"step must be an int or a 1-D integer tensor or array, got {type(step).__name__}")


def _compute_on_tensor(lr_config: Any, steps: torch.Tensor) -> torch.Tensor:
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
    if steps.numel() and int(steps.max()) >= MAX_SCHEDULE_STEP:
        raise ValueError(
            f"steps must be < 2**53 = {MAX_SCHEDULE_STEP} on the vectorized path (float64 does not hold "
            f"every integer above it), got {int(steps.max())}; compute_lr with an int is exact"
        )
    return evaluate(lr_config, steps.to(torch.float64), TENSOR)


def schedule_bounds(lr_config: Any) -> tuple[float, float]:
    """The least and greatest learning rate the schedule takes."""
    refuse_unresolved(lr_config)
    entry, kind_config = schedule_kind(lr_config)
    bounds = entry.bounds(kind_config)
    return warmup_bounds(kind_config, bounds) if entry.warms_up else bounds


def schedule_milestones(lr_config: Any) -> list[int]:
    """The steps at which the schedule changes phase, ascending."""
    refuse_unresolved(lr_config)
    entry, kind_config = schedule_kind(lr_config)
    milestones = entry.milestones(kind_config)
    return warmup_milestones(kind_config, milestones) if entry.warms_up else milestones


def schedule_discontinuities(lr_config: Any) -> list[int]:
    """The milestones at which the schedule's value jumps, ascending."""
    refuse_unresolved(lr_config)
    entry, kind_config = schedule_kind(lr_config)
    discontinuities = entry.discontinuities(kind_config)
    return warmup_shift(kind_config, discontinuities) if entry.warms_up else discontinuities


def schedule_last_phase(lr_config: Any) -> int:
    """The step at which the schedule's last phase starts (its warmup included): from there on it
    holds its final value, or repeats its cycles, or decays asymptotically, with no more phase
    boundaries. A schedule whose lengths are relative to the run must reach it within the run.

    Examples:
      >>> from tml.optimizers.schedules import LearningRate
      >>> schedule_last_phase(LearningRate.model_validate(
      ...     {"cosine_decay": {"learning_rate": 0.1, "warmup_steps": 10, "decay_steps": 90}}))
      100
    """
    refuse_unresolved(lr_config)
    entry, kind_config = schedule_kind(lr_config)
    last = entry.last_phase(kind_config)
    if last is None:
        last = max(entry.milestones(kind_config), default=0)
    return kind_config.warmup_steps + last if entry.warms_up else last
