"""Learning-rate schedule configs: one class per kind, and ``LearningRate``, which holds exactly one."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import JsonDict

from tml.core.config import BaseConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeSteps, PositiveSteps
from tml.optimizers.schedules.cyclic_configs import CosineWithRestarts, Cyclic, OneCycle
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
from tml.optimizers.schedules.rules import require_strictly_increasing

_ONE_OF_LR: JsonDict = {"one_of": "lr"}


class PiecewiseConstant(BaseConfig):
    """Constant pieces: ``learning_rate_values[i]`` from ``learning_rate_boundaries[i - 1]`` on."""

    learning_rate_boundaries: list[NonNegativeSteps] = pydantic.Field(
        description="Steps at which the learning rate changes: non-negative, strictly increasing."
    )
    learning_rate_values: list[LearningRateValue] = pydantic.Field(
        description="Learning rates: one before the first boundary and one after each boundary, "
        "so one more than there are boundaries."
    )

    @pydantic.field_validator("learning_rate_boundaries")
    @classmethod
    def _boundaries_increase(cls, boundaries: list[int]) -> list[int]:
        return require_strictly_increasing("learning_rate_boundaries", boundaries)

    @pydantic.field_validator("learning_rate_values")
    @classmethod
    def _one_value_per_piece(cls, values: list[float], info: pydantic.ValidationInfo) -> list[float]:
        boundaries = info.data.get("learning_rate_boundaries")
        if boundaries is not None and len(values) != len(boundaries) + 1:
            raise ValueError(
                f"needs len(learning_rate_boundaries) + 1 = {len(boundaries) + 1} values, got {len(values)}"
            )
        return values


class LinearRampToConstant(BaseConfig):
    """A straight line from 0 to ``learning_rate`` over ``num_ramp_steps`` steps, then constant."""

    learning_rate: LearningRateValue = pydantic.Field(description="The learning rate after the ramp.")
    num_ramp_steps: PositiveSteps = pydantic.Field(
        description="Number of steps to ramp the learning rate up from zero."
    )


class LinearRampToCosine(BaseConfig):
    """A ramp from 0 to ``learning_rate``, then a half cosine down to ``final_learning_rate``."""

    learning_rate: LearningRateValue = pydantic.Field(
        description="The peak learning rate, reached at num_ramp_steps."
    )
    final_learning_rate: LearningRateValue = pydantic.Field(
        description="The learning rate at final_num_steps and after."
    )
    num_ramp_steps: PositiveSteps = pydantic.Field(
        description="Number of steps to ramp the learning rate up from zero."
    )
    final_num_steps: PositiveSteps = pydantic.Field(
        description="The step at which the cosine decay ends; greater than num_ramp_steps."
    )

    @pydantic.field_validator("final_num_steps")
    @classmethod
    def _decay_after_ramp(cls, final_num_steps: int, info: pydantic.ValidationInfo) -> int:
        ramp = info.data.get("num_ramp_steps")
        if ramp is not None and final_num_steps <= ramp:
            raise ValueError(
                f"final_num_steps must be greater than num_ramp_steps ({ramp}), got {final_num_steps}"
            )
        return final_num_steps


class SequencePhase(BaseConfig):
    """One phase of a ``sequence``: a schedule that runs for ``steps`` steps (the last: for ever)."""

    steps: PositiveSteps | None = pydantic.Field(
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


class LearningRate(BaseConfig):
    """A learning-rate schedule: exactly one of the keys below is set.

    Examples:
      >>> LearningRate(constant=0.01).chosen()
      ('constant', 0.01)
    """

    constant: LearningRateValue | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description="The same learning rate at every step."
    )
    linear_ramp_to_cosine: LinearRampToCosine | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=LinearRampToCosine.__doc__
    )
    linear_ramp_to_constant: LinearRampToConstant | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=LinearRampToConstant.__doc__
    )
    piecewise_constant: PiecewiseConstant | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PiecewiseConstant.__doc__
    )

    linear: Linear | None = pydantic.Field(None, json_schema_extra=_ONE_OF_LR, description=Linear.__doc__)
    piecewise_linear: PiecewiseLinear | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PiecewiseLinear.__doc__
    )
    cosine_decay: CosineDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=CosineDecay.__doc__
    )
    polynomial_decay: PolynomialDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PolynomialDecay.__doc__
    )
    exponential_decay: ExponentialDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=ExponentialDecay.__doc__
    )
    multistep_decay: MultistepDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=MultistepDecay.__doc__
    )
    inverse_sqrt: InverseSqrt | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=InverseSqrt.__doc__
    )
    cosine_with_restarts: CosineWithRestarts | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=CosineWithRestarts.__doc__
    )
    warmup_stable_decay: WarmupStableDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=WarmupStableDecay.__doc__
    )
    one_cycle: OneCycle | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=OneCycle.__doc__
    )
    cyclic: Cyclic | None = pydantic.Field(None, json_schema_extra=_ONE_OF_LR, description=Cyclic.__doc__)
    sequence: ScheduleSequence | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=ScheduleSequence.__doc__
    )

    def kind(self) -> Any:
        """The config of the chosen kind (a float for ``constant``)."""
        return self.chosen("lr")[1]


SequencePhase.model_rebuild()
ScheduleSequence.model_rebuild()
LearningRate.model_rebuild()
