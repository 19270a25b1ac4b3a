"""Configs of the interpolating and decaying kinds: linear, piecewise_linear, cosine_decay, …"""

from __future__ import annotations

from typing import Literal

import pydantic

from tml.core.config import BaseConfig
from tml.optimizers.fields import (
    DecayFactor,
    LearningRateValue,
    NonNegativeSteps,
    PositiveFloat,
    PositiveSteps,
)
from tml.optimizers.schedules.rules import final_at_most_peak, require_strictly_increasing
from tml.optimizers.schedules.warmup_config import WarmupFields


class Linear(BaseConfig):
    """A straight line from ``start_learning_rate`` to ``end_learning_rate`` over ``steps``, then the end."""

    start_learning_rate: LearningRateValue = pydantic.Field(description="The learning rate at step 0.")
    end_learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at step `steps` and after; may be above or below the start."
    )
    steps: PositiveSteps = pydantic.Field(description="Number of steps from the start to the end value.")


class PiecewiseLinear(BaseConfig):
    """Linear interpolation through the points ``(boundaries[i], values[i])``, constant outside them."""

    boundaries: list[NonNegativeSteps] = pydantic.Field(
        min_length=1, description="Steps of the points: non-negative, strictly increasing."
    )
    values: list[LearningRateValue] = pydantic.Field(
        min_length=1,
        description="The learning rate at each boundary, as many as boundaries; values[0] holds "
        "before the first boundary and values[-1] after the last.",
    )

    @pydantic.field_validator("boundaries")
    @classmethod
    def _boundaries_increase(cls, boundaries: list[int]) -> list[int]:
        return require_strictly_increasing("boundaries", boundaries)

    @pydantic.field_validator("values")
    @classmethod
    def _one_value_per_boundary(cls, values: list[float], info: pydantic.ValidationInfo) -> list[float]:
        boundaries = info.data.get("boundaries")
        if boundaries is not None and len(values) != len(boundaries):
            raise ValueError(
                f"needs one value per boundary, len(boundaries) = {len(boundaries)}, got {len(values)}"
            )
        return values


class CosineDecay(WarmupFields):
    """A half cosine from ``learning_rate`` down to ``final_learning_rate`` over ``decay_steps``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at the start of the decay."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at decay_steps and after; at most learning_rate."
    )
    decay_steps: PositiveSteps = pydantic.Field(
        description="Number of steps of the decay (after the warmup)."
    )

    _final_below_peak = final_at_most_peak()


class PolynomialDecay(WarmupFields):
    """``(learning_rate - final) * (1 - t / decay_steps) ** power + final``, then final."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at the start of the decay."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at decay_steps and after; at most learning_rate."
    )
    decay_steps: PositiveSteps = pydantic.Field(
        description="Number of steps of the decay (after the warmup)."
    )
    power: PositiveFloat = pydantic.Field(
        1.0, description="Exponent of the decay: 1 is linear, 2 quadratic, 0.5 a square root; > 0."
    )

    _final_below_peak = final_at_most_peak()


class ExponentialDecay(WarmupFields):
    """``learning_rate * decay_rate ** (t / decay_steps)``, never below ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at the start of the decay."
    )
    decay_rate: DecayFactor = pydantic.Field(description="Factor applied every decay_steps steps, in (0, 1].")
    decay_steps: PositiveSteps = pydantic.Field(
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
    milestones: list[NonNegativeSteps] = pydantic.Field(
        min_length=1,
        description="Steps (after the warmup) at which the learning rate is multiplied by gamma: "
        "non-negative, strictly increasing.",
    )
    gamma: DecayFactor = pydantic.Field(description="Factor applied at each milestone, in (0, 1].")

    @pydantic.field_validator("milestones")
    @classmethod
    def _milestones_increase(cls, milestones: list[int]) -> list[int]:
        return require_strictly_increasing("milestones", milestones)


class InverseSqrt(WarmupFields):
    """``learning_rate * sqrt(timescale / (t + timescale))``: the Transformer's inverse square root."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate at t = 0.")
    timescale: PositiveSteps = pydantic.Field(
        description="Steps after which the learning rate has fallen to learning_rate / sqrt(2); with "
        "warmup_steps equal to it, this is HF transformers' inverse_sqrt schedule."
    )


DecayShape = Literal["linear", "cosine", "1-sqrt"]


class WarmupStableDecay(WarmupFields):
    """WSD: hold ``learning_rate`` for ``stable_steps``, then decay to ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate of the stable phase.")
    stable_steps: NonNegativeSteps = pydantic.Field(
        description="Number of steps (after the warmup) at learning_rate before the decay starts."
    )
    decay_steps: PositiveSteps = pydantic.Field(description="Number of steps of the decay.")
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at the end of the decay and after; at most learning_rate."
    )
    decay_shape: DecayShape = pydantic.Field(
        "linear",
        description="Shape f(p) of the decay, p the fraction of decay_steps done: linear 1 - p, "
        "cosine (1 + cos(pi p)) / 2, 1-sqrt 1 - sqrt(p).",
    )

    _final_below_peak = final_at_most_peak()
