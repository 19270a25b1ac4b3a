"""The interpolating and decaying kinds: linear, piecewise_linear and the ``*_decay`` family.

Each kind is its config class and its constructor ``make(config, ops)`` (see :mod:`ops`). The
kinds whose config inherits ``WarmupFields`` see the step after the warmup (see :mod:`warmup`).
"""

from __future__ import annotations

from typing import Literal

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import (
    DecayFactor,
    LearningRateValue,
    NonNegativeLength,
    PositiveFloat,
    PositiveLength,
)
from tml.optimizers.schedules.ops import Closure, Number, Ops, cosine_anneal
from tml.optimizers.schedules.registry import register_schedule
from tml.optimizers.schedules.rules import IncreasingSteps, final_at_most_peak
from tml.optimizers.schedules.warmup import WarmupFields

LISTED_CYCLES = 8
"""How many periods of a periodic schedule its ``milestones`` list."""


class Linear(StrictConfig):
    """A straight line from ``start_learning_rate`` to ``end_learning_rate`` over ``steps``, then the end."""

    start_learning_rate: LearningRateValue = pydantic.Field(description="The learning rate at step 0.")
    end_learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at step `steps` and after; may be above or below the start."
    )
    steps: PositiveLength = pydantic.Field(description="Number of steps from the start to the end value.")


class PiecewiseLinear(StrictConfig):
    """Linear interpolation through the points ``(boundaries[i], values[i])``, constant outside them."""

    boundaries: IncreasingSteps = pydantic.Field(
        min_length=1, description="Steps of the points: non-negative, strictly increasing."
    )
    values: list[LearningRateValue] = pydantic.Field(
        min_length=1,
        description="The learning rate at each boundary, as many as boundaries; values[0] holds "
        "before the first boundary and values[-1] after the last.",
    )

    @pydantic.field_validator("values")
    @classmethod
    def _one_value_per_boundary(cls, values: list[float], info: pydantic.ValidationInfo) -> list[float]:
        boundaries = info.data.get("boundaries")
        if boundaries is not None and len(values) != len(boundaries):
            raise ValueError(
                f"needs one value per boundary, len(boundaries) = {len(boundaries)}, got {len(values)}"
            )
        return values


class DecayFields(WarmupFields):
    """The fields of a decay from ``learning_rate`` to ``final_learning_rate`` over ``decay_steps``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at the start of the decay."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at decay_steps and after; at most learning_rate."
    )
    decay_steps: PositiveLength = pydantic.Field(
        description="Number of steps of the decay (after the warmup)."
    )

    _final_below_peak = final_at_most_peak()


class CosineDecay(DecayFields):
    """A half cosine from ``learning_rate`` down to ``final_learning_rate`` over ``decay_steps``."""


class PolynomialDecay(DecayFields):
    """``(learning_rate - final) * (1 - t / decay_steps) ** power + final``, then final."""

    power: PositiveFloat = pydantic.Field(
        1.0, description="Exponent of the decay: 1 is linear, 2 quadratic, 0.5 a square root; > 0."
    )


class ExponentialDecay(WarmupFields):
    """``learning_rate * decay_rate ** (t / decay_steps)``, never below ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at the start of the decay."
    )
    decay_rate: DecayFactor = pydantic.Field(description="Factor applied every decay_steps steps, in (0, 1].")
    decay_steps: PositiveLength = pydantic.Field(
        1, description="Number of steps over which the learning rate is multiplied by decay_rate once."
    )
    staircase: pydantic.StrictBool = pydantic.Field(
        False, description="If true, decay in steps: the exponent is t // decay_steps (torch's StepLR)."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="A floor: the learning rate never goes below it; at most learning_rate."
    )

    _final_below_peak = final_at_most_peak()


class MultistepDecay(WarmupFields):
    """``learning_rate`` multiplied by ``gamma`` at each milestone step."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate before the first milestone."
    )
    milestones: IncreasingSteps = pydantic.Field(
        min_length=1,
        description="Steps (after the warmup) at which the learning rate is multiplied by gamma: "
        "non-negative, strictly increasing.",
    )
    gamma: DecayFactor = pydantic.Field(description="Factor applied at each milestone, in (0, 1].")


class InverseSqrt(WarmupFields):
    """``learning_rate * sqrt(timescale / (t + timescale))``: the Transformer's inverse square root."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate at t = 0.")
    timescale: PositiveLength = pydantic.Field(
        description="Steps after which the learning rate has fallen to learning_rate / sqrt(2); with "
        "warmup_steps equal to it, this is HF transformers' inverse_sqrt schedule."
    )


DecayShape = Literal["linear", "cosine", "1-sqrt"]


class WarmupStableDecay(WarmupFields):
    """WSD: hold ``learning_rate`` for ``stable_steps``, then decay to ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate of the stable phase.")
    stable_steps: NonNegativeLength = pydantic.Field(
        description="Number of steps (after the warmup) at learning_rate before the decay starts."
    )
    decay_steps: PositiveLength = pydantic.Field(description="Number of steps of the decay.")
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at the end of the decay and after; at most learning_rate."
    )
    decay_shape: DecayShape = pydantic.Field(
        "linear",
        description="Shape f(p) of the decay, p the fraction of decay_steps done: linear 1 - p, "
        "cosine (1 + cos(pi p)) / 2, 1-sqrt 1 - sqrt(p).",
    )

    _final_below_peak = final_at_most_peak()


def _peak_to_final(config: DecayFields | ExponentialDecay | WarmupStableDecay) -> tuple[float, float]:
    return config.final_learning_rate, config.learning_rate


@register_schedule(
    "linear",
    Linear,
    bounds=lambda c: (
        min(c.start_learning_rate, c.end_learning_rate),
        max(c.start_learning_rate, c.end_learning_rate),
    ),
    milestones=lambda c: [c.steps],
)
def linear(config: Linear, ops: Ops) -> Closure:
    """A straight line from the start to the end value, then the end value.

    .. math:: \\eta(t) = \\eta_s + (\\eta_e - \\eta_s) \\cdot \\min(t, T) / T

    where ``η_s`` is ``start_learning_rate``, ``η_e`` is ``end_learning_rate`` and ``T`` is ``steps``.
    It is computed as ``η_s (1 - p) + η_e p`` with ``p = min(t, T) / T``: exactly ``η_s`` at 0 and
    exactly ``η_e`` from ``T`` on (``η_s + (η_e - η_s) p`` can miss ``η_e`` by rounding).

    Examples:
      >>> from tml.optimizers.schedules import compute_lr, LearningRate, Linear
      >>> schedule = LearningRate(linear=Linear(
      ...     start_learning_rate=0.1, end_learning_rate=1.0, steps=9))
      >>> [round(compute_lr(schedule, step), 12) for step in (0, 3, 9, 10**12)]
      [0.1, 0.4, 1.0, 1.0]
    """
    start, end, steps, minimum = (
        config.start_learning_rate,
        config.end_learning_rate,
        config.steps,
        ops.minimum,
    )

    def lr_at(t: Number) -> Number:
        fraction = minimum(t, steps) / steps
        return fraction * end + (1.0 - fraction) * start

    return lr_at


def _line(anchor: int, level: float, slope: float) -> Closure:
    def lr_at(t: Number) -> Number:
        return (t - anchor) * slope + level

    return lr_at


@register_schedule(
    "piecewise_linear",
    PiecewiseLinear,
    bounds=lambda c: (min(c.values), max(c.values)),
    milestones=lambda c: list(c.boundaries),
)
def piecewise_linear(config: PiecewiseLinear, ops: Ops) -> Closure:
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
    points, values = config.boundaries, config.values
    lines = [
        _line(points[i], values[i], (values[i + 1] - values[i]) / (points[i + 1] - points[i]))
        for i in range(len(points) - 1)
    ]
    return ops.piecewise(points, [values[0], *lines, values[-1]])


@register_schedule("cosine_decay", CosineDecay, bounds=_peak_to_final, milestones=lambda c: [c.decay_steps])
def cosine_decay(config: CosineDecay, ops: Ops) -> Closure:
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
    return cosine_anneal(0, config.decay_steps, config.learning_rate, config.final_learning_rate, ops)


@register_schedule(
    "polynomial_decay", PolynomialDecay, bounds=_peak_to_final, milestones=lambda c: [c.decay_steps]
)
def polynomial_decay(config: PolynomialDecay, ops: Ops) -> Closure:
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
    final, steps, power, minimum = config.final_learning_rate, config.decay_steps, config.power, ops.minimum
    amplitude = config.learning_rate - final

    def lr_at(t: Number) -> Number:
        return (1.0 - minimum(t, steps) / steps) ** power * amplitude + final

    return lr_at


def _stairs(config: ExponentialDecay) -> list[int]:
    if not config.staircase:
        return []
    return [config.decay_steps * cycle for cycle in range(1, LISTED_CYCLES + 1)]


@register_schedule(
    "exponential_decay",
    ExponentialDecay,
    bounds=_peak_to_final,
    milestones=_stairs,
    discontinuities=_stairs,
    last_phase=lambda _: 0,
)
def exponential_decay(config: ExponentialDecay, ops: Ops) -> Closure:
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
    peak, rate, steps, final = (
        config.learning_rate,
        config.decay_rate,
        config.decay_steps,
        config.final_learning_rate,
    )
    power, floor_divide, maximum, staircase = ops.power, ops.floor_divide, ops.maximum, config.staircase

    def decayed(t: Number) -> Number:
        return power(rate, floor_divide(t, steps) if staircase else t / steps) * peak

    if final == 0.0:
        return decayed

    def floored(t: Number) -> Number:
        return maximum(decayed(t), final)

    return floored


@register_schedule(
    "multistep_decay",
    MultistepDecay,
    bounds=lambda c: (c.learning_rate * c.gamma ** len(c.milestones), c.learning_rate),
    milestones=lambda c: list(c.milestones),
    discontinuities=lambda c: list(c.milestones),
)
def multistep_decay(config: MultistepDecay, ops: Ops) -> Closure:
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
    levels = [config.learning_rate * config.gamma**count for count in range(len(config.milestones) + 1)]
    return ops.piecewise(config.milestones, levels)


@register_schedule(
    "inverse_sqrt", InverseSqrt, bounds=lambda c: (0.0, c.learning_rate), milestones=lambda _: []
)
def inverse_sqrt(config: InverseSqrt, ops: Ops) -> Closure:
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
    peak, timescale, sqrt = config.learning_rate, config.timescale, ops.sqrt

    def lr_at(t: Number) -> Number:
        return sqrt(timescale / (t + timescale)) * peak

    return lr_at


def decay_curve(start: float, final: float, steps: int, shape: DecayShape, ops: Ops) -> Closure:
    """A decay from ``start`` at step 0 to ``final`` at ``steps`` by ``shape``, then ``final``.

    ``f(p)`` with ``p = t / steps``: ``linear`` ``1 - p``, ``cosine`` ``(1 + cos(πp)) / 2``, ``1-sqrt``
    ``1 - sqrt(p)`` (computed as ``(1 - p) / (1 + sqrt(p))``); the value is
    ``final + (start - final) · f(p)``, also when ``final`` is above ``start``.
    """
    sqrt, amplitude = ops.sqrt, start - final
    if shape == "cosine":
        return cosine_anneal(0, steps, start, final, ops)

    def straight(t: Number) -> Number:
        return (1.0 - t / steps) * amplitude + final

    def one_minus_sqrt(t: Number) -> Number:
        progress = t / steps
        return (1.0 - progress) / (sqrt(progress) + 1.0) * amplitude + final

    return ops.piecewise([steps], [straight if shape == "linear" else one_minus_sqrt, final])


def _decay_curve(config: WarmupStableDecay, ops: Ops) -> Closure:
    """The decay of :class:`WarmupStableDecay` by ``decay_shape``, held at the end after ``decay_steps``."""
    return decay_curve(
        config.learning_rate, config.final_learning_rate, config.decay_steps, config.decay_shape, ops
    )


@register_schedule(
    "warmup_stable_decay",
    WarmupStableDecay,
    bounds=_peak_to_final,
    milestones=lambda c: [c.stable_steps, c.stable_steps + c.decay_steps],
)
def warmup_stable_decay(config: WarmupStableDecay, ops: Ops) -> Closure:
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
    decay = _decay_curve(config, ops)
    return ops.join([0, config.stable_steps], [config.learning_rate, decay]) if config.stable_steps else decay
