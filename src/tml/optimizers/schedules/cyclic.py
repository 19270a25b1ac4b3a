"""The cyclic kinds: cosine_with_restarts (SGDR), one_cycle and cyclic, all closed form in the step.

Cycle counts are exact at any step: the index of the current cycle is an integer floor division
(or, for geometrically growing cycles, a logarithm corrected by exact integer arithmetic), never a
loop over the cycles.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import (
    WHOLE_RUN,
    DecayFactor,
    LearningRateValue,
    PositiveFloat,
    PositiveInteger,
    PositiveLength,
)
from tml.optimizers.schedules.decay import LISTED_CYCLES
from tml.optimizers.schedules.ops import Closure, Number, Ops, cosine_anneal, cycle_start, half_cosine
from tml.optimizers.schedules.registry import register_schedule
from tml.optimizers.schedules.rules import final_at_most_peak
from tml.optimizers.schedules.warmup import WarmupFields


class CosineWithRestarts(WarmupFields):
    """SGDR: half cosines from the peak to ``final_learning_rate``, restarting at the peak."""

    learning_rate: LearningRateValue = pydantic.Field(description="The peak of the first cycle.")
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate each cycle decays towards; at most learning_rate."
    )
    first_cycle_steps: PositiveLength = pydantic.Field(description="Number of steps of the first cycle.")
    cycle_multiplier: PositiveInteger = pydantic.Field(
        1, description="Each cycle is this many times longer than the one before (an integer ≥ 1)."
    )
    cycle_decay: DecayFactor = pydantic.Field(
        1.0,
        description="Each cycle's height above final_learning_rate is this times the one before, in "
        "(0, 1]; with final_learning_rate 0 this multiplies the peak.",
    )

    _final_below_peak = final_at_most_peak()


class OneCycle(StrictConfig):
    """The 1cycle policy, with the same values as torch's ``OneCycleLR``, holding from its last step."""

    max_learning_rate: LearningRateValue = pydantic.Field(description="The peak learning rate.")
    total_steps: PositiveLength = pydantic.Field(
        WHOLE_RUN,
        description="Number of steps of the cycle; from step total_steps - 1 on the value holds. "
        "Its own length, independent of the run's total_steps, unless left out or relative: left "
        "out it is '100%', the run's total_steps (refused when the run gives none).",
    )
    pct_start: float = pydantic.Field(
        0.3,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="Fraction of total_steps spent increasing the learning rate, in (0, 1); the "
        "increase ends at step pct_start * total_steps - 1 (a float, as in torch).",
    )
    anneal_strategy: Literal["cos", "linear"] = pydantic.Field(
        "cos", description="Shape of every phase: a half cosine (cos) or a straight line (linear)."
    )
    div_factor: PositiveFloat = pydantic.Field(
        25.0, description="The initial learning rate is max_learning_rate / div_factor."
    )
    final_div_factor: PositiveFloat = pydantic.Field(
        1e4, description="The final learning rate is the initial learning rate / final_div_factor."
    )
    three_phase: pydantic.StrictBool = pydantic.Field(
        False,
        description="If true, go back down to the initial learning rate symmetrically, then to the "
        "final one (fast.ai's variant); else go from the peak straight to the final one.",
    )

    @pydantic.field_validator("pct_start")
    @classmethod
    def _warmup_has_a_step(cls, pct_start: float, info: pydantic.ValidationInfo) -> float:
        total_steps = info.data.get("total_steps")
        if isinstance(total_steps, int) and pct_start * total_steps <= 1:
            raise ValueError(
                f"pct_start * total_steps must be greater than 1 (the rise ends at step "
                f"pct_start * total_steps - 1 > 0), got {pct_start} * {total_steps} = "
                f"{pct_start * total_steps}"
            )
        return pct_start

    @pydantic.field_validator("three_phase")
    @classmethod
    def _phases_in_order(cls, three_phase: bool, info: pydantic.ValidationInfo) -> bool:
        total_steps, pct_start = info.data.get("total_steps"), info.data.get("pct_start")
        if (
            three_phase
            and isinstance(total_steps, int)
            and pct_start is not None
            and 2 * pct_start * total_steps - 2 >= total_steps - 1
        ):
            raise ValueError(
                f"three_phase needs the second phase to end before the last step, i.e. "
                f"2 * pct_start * total_steps - 2 < total_steps - 1; with pct_start {pct_start} "
                f"and total_steps {total_steps} it ends at {2 * pct_start * total_steps - 2}, got "
                f"{three_phase}"
            )
        return three_phase


class Cyclic(StrictConfig):
    """Triangular cycles between two learning rates, with the same values as torch's ``CyclicLR``."""

    base_learning_rate: LearningRateValue = pydantic.Field(
        description="The lowest learning rate, at the start of each cycle."
    )
    max_learning_rate: LearningRateValue = pydantic.Field(
        description="The top of the first cycle; at least base_learning_rate."
    )
    step_size_up: PositiveLength = pydantic.Field(description="Number of steps of the rise of each cycle.")
    step_size_down: PositiveLength | None = pydantic.Field(
        None, description="Number of steps of the fall of each cycle; null: as step_size_up."
    )
    mode: Literal["triangular", "triangular2", "exp_range"] = pydantic.Field(
        "triangular",
        description="triangular: every cycle the same; triangular2: each cycle's height halves; "
        "exp_range: the height is multiplied by gamma ** step.",
    )
    gamma: DecayFactor = pydantic.Field(
        1.0, description="The per-step height factor of mode exp_range, in (0, 1]; only for exp_range."
    )

    @pydantic.field_validator("max_learning_rate")
    @classmethod
    def _max_above_base(cls, maximum: float, info: pydantic.ValidationInfo) -> float:
        base = info.data.get("base_learning_rate")
        if base is not None and maximum < base:
            raise ValueError(f"max_learning_rate must be at least base_learning_rate ({base}), got {maximum}")
        return maximum

    @pydantic.field_validator("gamma")
    @classmethod
    def _gamma_needs_exp_range(cls, gamma: float, info: pydantic.ValidationInfo) -> float:
        mode = info.data.get("mode")
        if gamma != 1.0 and mode is not None and mode != "exp_range":
            raise ValueError(f"gamma applies only to mode exp_range (mode is {mode}), got {gamma}")
        return gamma


def _restarts(config: CosineWithRestarts) -> list[int]:
    first, multiplier = config.first_cycle_steps, config.cycle_multiplier
    return [cycle_start(cycle, first, multiplier) for cycle in range(1, LISTED_CYCLES + 1)]


@register_schedule(
    "cosine_with_restarts",
    CosineWithRestarts,
    bounds=lambda c: (c.final_learning_rate, c.learning_rate),
    milestones=_restarts,
    discontinuities=_restarts,
    last_phase=lambda _: 0,
)
def cosine_with_restarts(config: CosineWithRestarts, ops: Ops) -> Closure:
    """SGDR: half cosines down to the final learning rate, each restarting at a (decayed) peak.

    .. math::

       \\eta(t) = \\eta_f + (\\eta_0 - \\eta_f) \\cdot d^{i} \\cdot \\tfrac12
         \\left(1 + \\cos(\\pi (t - s_i) / (T m^{i}))\\right), \\quad
       s_i = T (m^{i} - 1) / (m - 1) \\;(s_i = i T \\text{ for } m = 1)

    where cycle ``i`` is the one with ``s_i ≤ t < s_{i+1}``, ``η_0`` is ``learning_rate``, ``η_f``
    is ``final_learning_rate``, ``T`` is ``first_cycle_steps``, ``m`` is ``cycle_multiplier``, ``d``
    is ``cycle_decay`` and ``t`` is the step after the warmup (torch's ``CosineAnnealingWarmRestarts``
    for ``d = 1``). The half cosine is computed as ``sin(π/2 · (1 - q))²``, equal without cancellation.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, CosineWithRestarts
      >>> schedule = LearningRate(cosine_with_restarts=CosineWithRestarts(
      ...     learning_rate=1.0, first_cycle_steps=4, cycle_multiplier=2, cycle_decay=0.5))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 2, 3, 4, 8, 12)]
      [1.0, 0.5, 0.146446609407, 0.5, 0.25, 0.25]
    """
    final, decay, sin, power, cycle_of = (
        config.final_learning_rate,
        config.cycle_decay,
        ops.sin,
        ops.power,
        ops.geometric_cycle,
    )
    first, multiplier, amplitude = (
        config.first_cycle_steps,
        config.cycle_multiplier,
        config.learning_rate - final,
    )

    def lr_at(t: Number) -> Number:
        index, start, length = cycle_of(t, first, multiplier)
        wave = half_cosine(sin, (t - start) / length)
        if decay != 1.0:
            wave = wave * power(decay, index)
        return wave * amplitude + final

    return lr_at


def _one_cycle_phases(config: OneCycle) -> tuple[list[float], list[float]]:
    """The end step of each phase (floats, as torch computes them) and the learning rates at the
    phase ends, the first being the initial learning rate."""
    total_steps, pct_start = config.total_steps, config.pct_start
    initial = config.max_learning_rate / config.div_factor
    floor = initial / config.final_div_factor
    if config.three_phase:
        ends = [float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2, total_steps - 1.0]
        return ends, [initial, config.max_learning_rate, initial, floor]
    ends = [float(pct_start * total_steps) - 1, total_steps - 1.0]
    return ends, [initial, config.max_learning_rate, floor]


def _one_cycle_bounds(config: OneCycle) -> tuple[float, float]:
    learning_rates = _one_cycle_phases(config)[1]
    return min(learning_rates), max(learning_rates)


def _anneal(start: float, span: float, begin: float, end: float, cosine: bool, ops: Ops) -> Closure:
    """One phase of 1cycle: from ``begin`` at step ``start`` to ``end`` ``span`` steps later."""
    if cosine:
        return cosine_anneal(start, span, begin, end, ops)
    return lambda t: (t - start) / span * (end - begin) + begin


@register_schedule(
    "one_cycle",
    OneCycle,
    bounds=_one_cycle_bounds,
    milestones=lambda c: sorted({max(1, round(end)) for end in _one_cycle_phases(c)[0]}),
)
def one_cycle(config: OneCycle, ops: Ops) -> Closure:
    """The 1cycle policy: the values of torch's ``OneCycleLR``, held from its last step on.

    .. math::

       \\eta(t) = a(\\eta_{k}, \\eta_{k+1}, (t' - e_{k-1}) / (e_k - e_{k-1})), \\quad t' = \\min(t, N - 1)

    where phase ``k`` is the first with ``t' ≤ e_k`` (``e_{-1} = 0``), the phase ends are
    ``e = (pN - 1, N - 1)`` or, with ``three_phase``, ``(pN - 1, 2pN - 2, N - 1)``; the learning rates
    at the phase ends are ``(η_i, η_max, η_min)`` or ``(η_i, η_max, η_i, η_min)`` with
    ``η_i = η_max / div_factor`` and ``η_min = η_i / final_div_factor``; ``N`` is ``total_steps``,
    ``p`` is ``pct_start``; ``a`` anneals from its first to its second argument:
    ``cos``: ``a(x, y, q) = y + (x - y) / 2 · (cos(πq) + 1)``, ``linear``: ``(y - x) q + x``
    (the half cosine computed as ``sin(π/2 · (1 - q))²``: equal, without cancellation).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, OneCycle
      >>> schedule = LearningRate(one_cycle=OneCycle(
      ...     max_learning_rate=1.0, total_steps=11, pct_start=0.5, anneal_strategy="linear",
      ...     div_factor=10.0, final_div_factor=10.0))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 2, 4, 5, 10, 10**12)]
      [0.1, 0.5, 0.9, 0.91, 0.01, 0.01]
    """
    ends, rates = _one_cycle_phases(config)
    starts, cosine = [0.0, *ends[:-1]], config.anneal_strategy == "cos"
    phases = ops.piecewise(
        ends[:-1],
        [
            _anneal(start, end - start, begin, stop, cosine, ops)
            for start, end, begin, stop in zip(starts, ends, rates, rates[1:], strict=False)
        ],
        right=False,
    )
    last, minimum = config.total_steps - 1, ops.minimum

    def lr_at(t: Number) -> Number:
        return phases(minimum(t, last))

    return lr_at


def _cyclic_ends(config: Cyclic) -> list[int]:
    up = config.step_size_up
    total = up + (config.step_size_down or up)
    return sorted({cycle * total + offset for cycle in range(LISTED_CYCLES) for offset in (up, total)})


@register_schedule(
    "cyclic",
    Cyclic,
    bounds=lambda c: (c.base_learning_rate, c.max_learning_rate),
    milestones=_cyclic_ends,
    last_phase=lambda _: 0,
)
def cyclic(config: Cyclic, ops: Ops) -> Closure:
    """Triangular cycles: the values of torch's ``CyclicLR``, with the cycle counted exactly.

    .. math::

       \\eta(t) = \\eta_b + (\\eta_m - \\eta_b) \\cdot h(x) \\cdot g, \\quad
       k = \\lfloor t / (U + W) \\rfloor, \\; x = t - k (U + W), \\;
       h(x) = \\begin{cases} x / U & x \\le U \\\\ (U + W - x) / W & x > U \\end{cases}

    where ``η_b`` is ``base_learning_rate``, ``η_m`` is ``max_learning_rate``, ``U`` is
    ``step_size_up``, ``W`` is ``step_size_down`` (``U`` if null) and the height factor ``g`` is
    ``1`` (triangular), ``0.5^k`` (triangular2) or ``γ^t`` (exp_range, ``γ`` is ``gamma``).
    ``h(x)`` is the lesser of ``x / U`` and ``(U + W - x) / W`` (equal at the peak, also after
    rounding), so no branch is taken.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, Cyclic
      >>> schedule = LearningRate(cyclic=Cyclic(
      ...     base_learning_rate=0.1, max_learning_rate=1.1, step_size_up=2, step_size_down=3,
      ...     mode="triangular2"))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 1, 2, 5, 7, 10**12)]
      [0.1, 0.6, 1.1, 0.1, 0.6, 0.1]
    """
    up = config.step_size_up
    down = config.step_size_down or up
    total, base, mode, gamma = up + down, config.base_learning_rate, config.mode, config.gamma
    height = config.max_learning_rate - base
    minimum, power, floor_divide = ops.minimum, ops.power, ops.floor_divide

    def lr_at(t: Number) -> Number:
        cycle = floor_divide(t, total)
        position = t - cycle * total
        value = minimum(position / up, (total - position) / down) * height
        if mode == "triangular2":
            value = value * power(0.5, cycle)
        elif mode == "exp_range":
            value = value * power(gamma, t)
        return value + base

    return lr_at
