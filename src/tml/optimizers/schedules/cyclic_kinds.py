"""Cyclic kinds: cosine_with_restarts (SGDR), one_cycle and cyclic, all closed form in the step.

Cycle counts are exact at any step: the index of the current cycle is an integer floor division
(or, for geometrically growing cycles, a logarithm corrected by exact integer arithmetic), never a
loop over the cycles.
"""

from __future__ import annotations

from collections.abc import Callable

from tml.optimizers.schedules.backend import Number, Ops, half_cosine
from tml.optimizers.schedules.cyclic_configs import CosineWithRestarts, Cyclic, OneCycle
from tml.optimizers.schedules.decay_kinds import LISTED_CYCLES
from tml.optimizers.schedules.registry import register_schedule
from tml.optimizers.schedules.warmup import (
    warmup_bounds,
    warmup_milestones,
    warmup_steps_shift,
    with_warmup,
)


def _restarts(config: CosineWithRestarts) -> list[int]:
    first, multiplier = config.first_cycle_steps, config.cycle_multiplier
    return [first * sum(multiplier**i for i in range(cycle)) for cycle in range(1, LISTED_CYCLES + 1)]


@register_schedule(
    "cosine_with_restarts",
    CosineWithRestarts,
    bounds=warmup_bounds(lambda c: (c.final_learning_rate, c.learning_rate)),
    milestones=warmup_milestones(_restarts),
    discontinuities=warmup_steps_shift(_restarts),
)
@with_warmup
def cosine_with_restarts(config: CosineWithRestarts, t: Number, ops: Ops) -> Number:
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
    final = config.final_learning_rate

    def cycle(t: Number, index: Number, start: Number, length: Number) -> Number:
        value = t - start
        value /= length
        value = half_cosine(ops, value)
        if config.cycle_decay != 1.0:
            value *= ops.integer_power(config.cycle_decay, index)
        value *= config.learning_rate - final
        value += final
        return value

    return ops.cycles(t, config.first_cycle_steps, config.cycle_multiplier, cycle)


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


@register_schedule(
    "one_cycle",
    OneCycle,
    bounds=_one_cycle_bounds,
    milestones=lambda c: sorted({max(1, round(end)) for end in _one_cycle_phases(c)[0]}),
)
def one_cycle(config: OneCycle, t: Number, ops: Ops) -> Number:
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
    ends, learning_rates = _one_cycle_phases(config)
    starts = [0.0, *ends[:-1]]
    cosine = config.anneal_strategy == "cos"

    def phase(number: int) -> Callable[[Number], Number]:
        start, span = starts[number], ends[number] - starts[number]
        begin, end = learning_rates[number], learning_rates[number + 1]

        def anneal(held: Number) -> Number:
            fraction = held - start
            fraction /= span
            if cosine:
                value = half_cosine(ops, fraction)
                value *= begin - end
                value += end
                return value
            fraction *= end - begin
            fraction += begin
            return fraction

        return anneal

    held = ops.minimum(t, config.total_steps - 1)
    return ops.piecewise(held, ends[:-1], [phase(number) for number in range(len(ends))], right=False)


def _cyclic_ends(config: Cyclic) -> list[int]:
    up = config.step_size_up
    total = up + (config.step_size_down or up)
    return sorted({cycle * total + offset for cycle in range(LISTED_CYCLES) for offset in (up, total)})


@register_schedule(
    "cyclic",
    Cyclic,
    bounds=lambda c: (c.base_learning_rate, c.max_learning_rate),
    milestones=_cyclic_ends,
)
def cyclic(config: Cyclic, t: Number, ops: Ops) -> Number:
    """Triangular cycles: the values of torch's ``CyclicLR``, with the cycle counted exactly.

    .. math::

       \\eta(t) = \\eta_b + (\\eta_m - \\eta_b) \\cdot h(x) \\cdot g, \\quad
       k = \\lfloor t / (U + W) \\rfloor, \\; x = t - k (U + W), \\;
       h(x) = \\begin{cases} x / U & x \\le U \\\\ (U + W - x) / W & x > U \\end{cases}

    where ``η_b`` is ``base_learning_rate``, ``η_m`` is ``max_learning_rate``, ``U`` is
    ``step_size_up``, ``W`` is ``step_size_down`` (``U`` if null) and the height factor ``g`` is
    ``1`` (triangular), ``0.5^k`` (triangular2) or ``γ^t`` (exp_range, ``γ`` is ``gamma``).

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
    total = up + down
    cycle = ops.floor_divide(t, total)
    position = ops.rsub_(t, cycle * total)
    # x / U ≤ 1 ≤ (U + W - x) / W up to the peak and the reverse after it (also after rounding),
    # so the lesser of the two is h(x).
    rise = position / up
    fall = ops.rsub_(total, position)
    fall /= down
    value = ops.minimum_(rise, fall)
    value *= config.max_learning_rate - config.base_learning_rate
    if config.mode == "triangular2":
        value *= ops.integer_power(0.5, cycle)
    elif config.mode == "exp_range":
        value *= ops.power_(config.gamma, t * 1)  # a copy of t (float64 here): t is not overwritten
    value += config.base_learning_rate
    return value
