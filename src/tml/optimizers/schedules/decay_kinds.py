"""Interpolating and decaying kinds: linear, piecewise_linear and the ``*_decay`` family.

Every formula is written once against ``ops`` (see :mod:`backend`); ``t`` is the step after the
warmup for the kinds that take one (see :mod:`warmup`).
"""

from __future__ import annotations

from tml.optimizers.schedules.backend import Number, Ops, half_cosine
from tml.optimizers.schedules.decay_configs import (
    CosineDecay,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultistepDecay,
    PiecewiseLinear,
    PolynomialDecay,
    WarmupStableDecay,
)
from tml.optimizers.schedules.registry import register_schedule
from tml.optimizers.schedules.warmup import (
    warmup_bounds,
    warmup_milestones,
    warmup_steps_shift,
    with_warmup,
)

LISTED_CYCLES = 8
"""How many periods of a periodic schedule its ``milestones`` list."""


@register_schedule(
    "linear",
    Linear,
    bounds=lambda c: (
        min(c.start_learning_rate, c.end_learning_rate),
        max(c.start_learning_rate, c.end_learning_rate),
    ),
    milestones=lambda c: [c.steps],
)
def linear(config: Linear, t: Number, ops: Ops) -> Number:
    """A straight line from the start to the end value, then the end value.

    .. math:: \\eta(t) = \\eta_s + (\\eta_e - \\eta_s) \\cdot \\min(t, T) / T

    where ``η_s`` is ``start_learning_rate``, ``η_e`` is ``end_learning_rate`` and ``T`` is ``steps``.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, Linear
      >>> schedule = LearningRate(linear=Linear(
      ...     start_learning_rate=0.1, end_learning_rate=1.0, steps=9))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 3, 9, 10**12)]
      [0.1, 0.4, 1.0, 1.0]
    """
    start, end = config.start_learning_rate, config.end_learning_rate
    # start * (1 - p) + end * p: exactly start at p = 0 and exactly end from p = 1 on (the form
    # start + (end - start) * p can miss end by rounding when the two differ by orders of magnitude).
    fraction = ops.minimum(t, config.steps)
    fraction /= config.steps
    rest = 1.0 - fraction
    rest *= start
    fraction *= end
    fraction += rest
    return fraction


@register_schedule(
    "piecewise_linear",
    PiecewiseLinear,
    bounds=lambda c: (min(c.values), max(c.values)),
    milestones=lambda c: list(c.boundaries),
)
def piecewise_linear(config: PiecewiseLinear, t: Number, ops: Ops) -> Number:
    """Linear interpolation through the points ``(boundaries[i], values[i])``.

    .. math::

       \\eta(t) = \\begin{cases}
         v_0 & t < b_0 \\\\
         v_i + (v_{i+1} - v_i) \\cdot (t - b_i) / (b_{i+1} - b_i) & b_i \\le t < b_{i+1} \\\\
         v_{n-1} & t \\ge b_{n-1}
       \\end{cases}

    where ``b`` are ``boundaries`` and ``v`` are ``values`` (``n`` of each).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, PiecewiseLinear
      >>> schedule = LearningRate(piecewise_linear=PiecewiseLinear(
      ...     boundaries=[10, 20, 40], values=[0.0, 1.0, 0.5]))
      >>> [compute_lr(schedule, step) for step in (0, 10, 15, 20, 30, 40, 10**12)]
      [0.0, 0.0, 0.5, 1.0, 0.75, 0.5, 0.5]
    """
    return ops.interpolate(config.boundaries, config.values, t)


@register_schedule(
    "cosine_decay",
    CosineDecay,
    bounds=warmup_bounds(lambda c: (c.final_learning_rate, c.learning_rate)),
    milestones=warmup_milestones(lambda c: [c.decay_steps]),
)
@with_warmup
def cosine_decay(config: CosineDecay, t: Number, ops: Ops) -> Number:
    """A half cosine from the learning rate down to the final one, then the final one.

    .. math::

       \\eta(t) = \\eta_f + (\\eta_0 - \\eta_f) \\cdot \\tfrac12 (1 + \\cos(\\pi \\min(t, T) / T))

    where ``η_0`` is ``learning_rate``, ``η_f`` is ``final_learning_rate``, ``T`` is ``decay_steps``
    and ``t`` is the step after the warmup (torch's ``CosineAnnealingLR`` up to ``T``). The half
    cosine is computed as ``sin(π/2 · (1 - p))²``, equal but free of cancellation near the end.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, CosineDecay
      >>> schedule = LearningRate(cosine_decay=CosineDecay(
      ...     learning_rate=1.0, final_learning_rate=0.1, decay_steps=10, warmup_steps=2))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 1, 2, 7, 12, 10**12)]
      [0.0, 0.5, 1.0, 0.55, 0.1, 0.1]
    """
    final = config.final_learning_rate
    progress = ops.minimum(t, config.decay_steps)
    progress /= config.decay_steps
    value = half_cosine(ops, progress)
    value *= config.learning_rate - final
    value += final
    return value


@register_schedule(
    "polynomial_decay",
    PolynomialDecay,
    bounds=warmup_bounds(lambda c: (c.final_learning_rate, c.learning_rate)),
    milestones=warmup_milestones(lambda c: [c.decay_steps]),
)
@with_warmup
def polynomial_decay(config: PolynomialDecay, t: Number, ops: Ops) -> Number:
    """A polynomial decay from the learning rate to the final one, then the final one.

    .. math:: \\eta(t) = (\\eta_0 - \\eta_f) \\cdot (1 - \\min(t, T) / T)^p + \\eta_f

    where ``η_0`` is ``learning_rate``, ``η_f`` is ``final_learning_rate``, ``T`` is ``decay_steps``,
    ``p`` is ``power`` and ``t`` is the step after the warmup (torch's ``PolynomialLR`` for ``η_f = 0``).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, PolynomialDecay
      >>> schedule = LearningRate(polynomial_decay=PolynomialDecay(
      ...     learning_rate=1.0, decay_steps=10, power=2.0))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 5, 10, 10**12)]
      [1.0, 0.25, 0.0, 0.0]
    """
    final = config.final_learning_rate
    value = ops.minimum(t, config.decay_steps)
    value /= config.decay_steps
    value = ops.rsub_(1.0, value)
    value **= config.power
    value *= config.learning_rate - final
    value += final
    return value


def _exponential_discontinuities(config: ExponentialDecay) -> list[int]:
    if not config.staircase:
        return []
    return [config.decay_steps * cycle for cycle in range(1, LISTED_CYCLES + 1)]


@register_schedule(
    "exponential_decay",
    ExponentialDecay,
    bounds=warmup_bounds(lambda c: (c.final_learning_rate, c.learning_rate)),
    milestones=warmup_milestones(_exponential_discontinuities),
    discontinuities=warmup_steps_shift(_exponential_discontinuities),
)
@with_warmup
def exponential_decay(config: ExponentialDecay, t: Number, ops: Ops) -> Number:
    """An exponential decay, continuous or in stairs, never below the final learning rate.

    .. math:: \\eta(t) = \\max(\\eta_0 \\cdot r^{e(t)}, \\eta_f), \\quad
       e(t) = t / D \\text{ or, with staircase, } \\lfloor t / D \\rfloor

    where ``η_0`` is ``learning_rate``, ``r`` is ``decay_rate``, ``D`` is ``decay_steps``, ``η_f`` is
    ``final_learning_rate`` and ``t`` is the step after the warmup (torch's ``ExponentialLR`` for
    ``D = 1``, ``StepLR`` with staircase).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, ExponentialDecay
      >>> schedule = LearningRate(exponential_decay=ExponentialDecay(
      ...     learning_rate=1.0, decay_rate=0.5, decay_steps=10, staircase=True,
      ...     final_learning_rate=0.2))
      >>> [compute_lr(schedule, step) for step in (0, 9, 10, 20, 30, 10**12)]
      [1.0, 1.0, 0.5, 0.25, 0.2, 0.2]
    """
    decay_steps = config.decay_steps
    if config.staircase:
        value = ops.integer_power(config.decay_rate, ops.floor_divide(t, decay_steps))
    else:
        value = ops.power_(config.decay_rate, t / decay_steps)
    value *= config.learning_rate
    if config.final_learning_rate == 0.0:
        return value
    return ops.maximum_(value, config.final_learning_rate)


@register_schedule(
    "multistep_decay",
    MultistepDecay,
    bounds=warmup_bounds(lambda c: (c.learning_rate * c.gamma ** len(c.milestones), c.learning_rate)),
    milestones=warmup_milestones(lambda c: list(c.milestones)),
    discontinuities=warmup_steps_shift(lambda c: list(c.milestones)),
)
@with_warmup
def multistep_decay(config: MultistepDecay, t: Number, ops: Ops) -> Number:
    """The learning rate multiplied by ``gamma`` at each milestone.

    .. math:: \\eta(t) = \\eta_0 \\cdot \\gamma^{k(t)}, \\quad k(t) = |\\{i : m_i \\le t\\}|

    where ``η_0`` is ``learning_rate``, ``m`` are ``milestones`` and ``t`` is the step after the
    warmup (torch's ``MultiStepLR``).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, MultistepDecay
      >>> schedule = LearningRate(multistep_decay=MultistepDecay(
      ...     learning_rate=1.0, milestones=[10, 20], gamma=0.5))
      >>> [compute_lr(schedule, step) for step in (0, 9, 10, 19, 20, 10**12)]
      [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    values = [config.learning_rate * config.gamma**count for count in range(len(config.milestones) + 1)]
    return ops.take(values, ops.bisect_right(config.milestones, t))


@register_schedule(
    "inverse_sqrt",
    InverseSqrt,
    bounds=warmup_bounds(lambda c: (0.0, c.learning_rate)),
    milestones=warmup_milestones(lambda c: []),
)
@with_warmup
def inverse_sqrt(config: InverseSqrt, t: Number, ops: Ops) -> Number:
    """The Transformer's inverse-square-root decay.

    .. math:: \\eta(t) = \\eta_0 \\sqrt{\\tau / (t + \\tau)}

    where ``η_0`` is ``learning_rate``, ``τ`` is ``timescale`` and ``t`` is the step after the
    warmup. With ``warmup_steps = τ`` this is HF transformers' ``inverse_sqrt`` schedule.

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, InverseSqrt
      >>> schedule = LearningRate(inverse_sqrt=InverseSqrt(
      ...     learning_rate=1.0, timescale=4, warmup_steps=4))
      >>> [compute_lr(schedule, step) for step in (0, 2, 4, 16, 400)]
      [0.0, 0.5, 1.0, 0.5, 0.1]
    """
    timescale = config.timescale
    value = ops.sqrt_(ops.rdiv_(timescale, t + timescale))
    value *= config.learning_rate
    return value


@register_schedule(
    "warmup_stable_decay",
    WarmupStableDecay,
    bounds=warmup_bounds(lambda c: (c.final_learning_rate, c.learning_rate)),
    milestones=warmup_milestones(lambda c: [c.stable_steps, c.stable_steps + c.decay_steps]),
)
@with_warmup
def warmup_stable_decay(config: WarmupStableDecay, t: Number, ops: Ops) -> Number:
    """WSD: warmup, a stable phase at the learning rate, then a decay to the final learning rate.

    .. math::

       \\eta(t) = \\begin{cases}
         \\eta_0 & t < S \\\\
         \\eta_f + (\\eta_0 - \\eta_f) \\cdot f(p), \\quad p = \\min(t - S, D) / D & t \\ge S
       \\end{cases}

    where ``η_0`` is ``learning_rate``, ``η_f`` is ``final_learning_rate``, ``S`` is ``stable_steps``,
    ``D`` is ``decay_steps``, ``t`` is the step after the warmup and ``f`` the ``decay_shape``:
    ``linear`` ``1 - p``, ``cosine`` ``(1 + cos(πp)) / 2``, ``1-sqrt`` ``1 - sqrt(p)`` (the last two
    computed as ``sin(π/2 · (1 - p))²`` and ``(1 - p) / (1 + sqrt(p))``: equal, without cancellation).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, WarmupStableDecay
      >>> schedule = LearningRate(warmup_stable_decay=WarmupStableDecay(
      ...     learning_rate=1.0, warmup_steps=2, stable_steps=4, decay_steps=4,
      ...     decay_shape="1-sqrt"))
      >>> [compute_lr(schedule, step) for step in (0, 1, 2, 5, 6, 7, 10, 10**12)]
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    """
    final, stable_steps, decay_steps = config.final_learning_rate, config.stable_steps, config.decay_steps

    def stable(t: Number) -> Number:
        return ops.full_like(t, config.learning_rate)

    def decay(after_stable: Number) -> Number:
        progress = ops.minimum(after_stable, decay_steps)
        progress /= decay_steps
        if config.decay_shape == "linear":
            shape = ops.rsub_(1.0, progress)
        elif config.decay_shape == "cosine":
            shape = half_cosine(ops, progress)
        else:
            shape = 1.0 - progress
            shape /= ops.sqrt_(progress) + 1.0
        shape *= config.learning_rate - final
        shape += final
        return shape

    if stable_steps == 0:
        return decay(t)
    return ops.join(t, [0, stable_steps], [stable, decay])
