"""Learning-rate schedule configs: one class per kind, and ``LearningRate``, which holds exactly one."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import JsonDict

from tml.core.config import BaseConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeSteps, PositiveSteps

_ONE_OF_LR: JsonDict = {"one_of": "lr"}


def _require_strictly_increasing(name: str, values: list[int]) -> list[int]:
    for index in range(1, len(values)):
        if values[index] <= values[index - 1]:
            raise ValueError(
                f"{name} must be strictly increasing, got {values[index]} at index {index} "
                f"after {values[index - 1]}"
            )
    return values


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
        return _require_strictly_increasing("learning_rate_boundaries", boundaries)

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

    def kind(self) -> Any:
        """The config of the chosen kind (a float for ``constant``)."""
        return self.chosen("lr")[1]
