"""Fast scalar closures of the schedule kinds, for ``LRShim.step()``: one Python float per step.

The registry's formulas are written once for two backends (``SCALAR``, ``TENSOR``) through ``ops``
and compute every branch (the cosine even during the ramp). A kind may also register a
``compile_scalar(config)`` that returns a closure of the step binding the config's numbers as
locals and evaluating only the branch of the step, with the same float operations in the same
order, so its values equal ``compute_lr``'s (the tests check every registered kind, at the boundary
steps and at random ones). Kinds without one fall back to the generic formula
(``compile_schedule``).

Registered here: ``constant``, ``piecewise_constant``, ``linear_ramp_to_constant``,
``linear_ramp_to_cosine``, ``sequence`` (its phases compiled the same way) and the warmup of every
kind built with ``with_warmup`` (the warmup ramp as a closure, the body through its formula).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

from tml.optimizers.schedules import composite_kinds, cyclic_kinds, decay_kinds, seed_kinds  # noqa: F401
from tml.optimizers.schedules.backend import SCALAR
from tml.optimizers.schedules.config import (
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
    ScheduleSequence,
)
from tml.optimizers.schedules.registry import SCHEDULES, compile_schedule, set_scalar_compiler
from tml.optimizers.schedules.warmup_config import WarmupFields

# The kind modules above are imported first so that every kind is registered before its closure.

ScalarClosure = Callable[[int], float]


def _constant(value: float) -> ScalarClosure:
    value = float(value)

    def lr_at(step: int) -> float:
        return value

    return lr_at


def _piecewise_constant(config: PiecewiseConstant) -> ScalarClosure:
    boundaries = list(config.learning_rate_boundaries)
    values = [float(value) for value in config.learning_rate_values]
    find = bisect.bisect_right

    def lr_at(step: int) -> float:
        return values[find(boundaries, step)]

    return lr_at


def _linear_ramp_to_constant(config: LinearRampToConstant) -> ScalarClosure:
    peak, ramp = config.learning_rate, config.num_ramp_steps
    slope = peak / ramp

    def lr_at(step: int) -> float:
        return float(min(slope * step, peak))

    return lr_at


def _linear_ramp_to_cosine(config: LinearRampToCosine) -> ScalarClosure:
    peak, final = config.learning_rate, config.final_learning_rate
    ramp, end = config.num_ramp_steps, config.final_num_steps
    slope, span = float(peak / ramp), end - ramp
    amplitude, final_value = float(peak - final), float(final)
    half_pi, sin = math.pi / 2, math.sin

    def lr_at(step: int) -> float:
        # Floats throughout (slope, amplitude and final_value are), so no float() per call.
        if step < ramp:
            return slope * step
        if step > end:
            return final_value
        wave = sin((1.0 - (step - ramp) / span) * half_pi)
        return wave * wave * amplitude + final_value

    return lr_at


def _sequence(config: ScheduleSequence) -> ScalarClosure:
    starts = list(config.phase_starts())
    pieces = [compile_schedule(phase.schedule) for phase in config.root]
    if len(pieces) == 1:
        return pieces[0]
    find = bisect.bisect_right

    def lr_at(step: int) -> float:
        index = find(starts, step) - 1
        return pieces[index](step - starts[index])

    return lr_at


def warmup_compiler(body: Callable[[Any, Any, Any], Any]) -> Callable[[WarmupFields], ScalarClosure]:
    """The ``compile_scalar`` of a kind registered as ``with_warmup(body)``."""

    def compile_scalar(config: WarmupFields) -> ScalarClosure:
        warmup_steps = config.warmup_steps
        if warmup_steps == 0:

            def body_only(step: int) -> float:
                return float(body(config, step, SCALAR))

            return body_only
        start = config.warmup_start_learning_rate
        rise = body(config, 0, SCALAR) - start

        def lr_at(step: int) -> float:
            if step < warmup_steps:
                ramp = step / warmup_steps
                ramp *= rise
                ramp += start
                return float(ramp)
            return float(body(config, step - warmup_steps, SCALAR))

        return lr_at

    return compile_scalar


def register_scalar_closures() -> None:
    """Attach the closures above to their registry entries (idempotent)."""
    set_scalar_compiler(float, _constant)
    set_scalar_compiler(PiecewiseConstant, _piecewise_constant)
    set_scalar_compiler(LinearRampToConstant, _linear_ramp_to_constant)
    set_scalar_compiler(LinearRampToCosine, _linear_ramp_to_cosine)
    set_scalar_compiler(ScheduleSequence, _sequence)
    for config_class, entry in list(SCHEDULES.items()):
        body = getattr(entry.formula, "__wrapped__", None)
        if entry.compile_scalar is None and body is not None and issubclass(config_class, WarmupFields):
            set_scalar_compiler(config_class, warmup_compiler(body))


register_scalar_closures()
