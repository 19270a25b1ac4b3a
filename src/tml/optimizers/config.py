"""Optimizer configs: ``OptimizerConfig`` (an algorithm and a schedule) and everything it holds."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import JsonDict

from tml.core.config import BaseConfig
from tml.optimizers.algorithms import (
    AdagradConfig,
    AdamConfig,
    OptimizerAlgorithmConfig,
    SGDConfig,
    SgdConfig,
)
from tml.optimizers.schedules import (
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
)

_ONE_OF_OPTIMIZER: JsonDict = {"one_of": "optimizer"}


class OptimizerConfig(BaseConfig):
    """An optimizer algorithm (exactly one key) and its learning-rate schedule.

    The schedule is ``learning_rate`` if set, else the algorithm's ``lr`` if that is a schedule,
    else ``constant: lr``.

    Examples:
      >>> config = OptimizerConfig(sgd=SgdConfig(lr=0.01))
      >>> config.schedule()
      LearningRate(constant=0.01, ...)
    """

    learning_rate: LearningRate | None = pydantic.Field(
        None, description="The learning-rate schedule; wins over a number given as the algorithm's lr."
    )
    adam: AdamConfig | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_OPTIMIZER, description=AdamConfig.__doc__
    )
    sgd: SgdConfig | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_OPTIMIZER, description=SgdConfig.__doc__
    )
    adagrad: AdagradConfig | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_OPTIMIZER, description=AdagradConfig.__doc__
    )

    @pydantic.field_validator("*")
    @classmethod
    def _one_schedule(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(value, OptimizerAlgorithmConfig) or "learning_rate" not in info.data:
            return value  # not an algorithm, or learning_rate itself is invalid (reported already)
        has_schedule = info.data["learning_rate"] is not None
        if isinstance(value.lr, LearningRate) and has_schedule:
            raise ValueError("lr is a schedule and learning_rate is set too: give the schedule in one place")
        if value.lr is None and not has_schedule:
            raise ValueError("lr is required unless learning_rate is set, got neither")
        return value

    def algorithm(self) -> OptimizerAlgorithmConfig:
        """The config of the chosen algorithm."""
        return self.chosen("optimizer")[1]

    def schedule(self) -> LearningRate:
        """The schedule: ``learning_rate``, else a schedule given as ``lr``, else ``constant: lr``."""
        if self.learning_rate is not None:
            return self.learning_rate
        lr = self.algorithm().lr
        return lr if isinstance(lr, LearningRate) else LearningRate(constant=lr)


def get_optimizer_algorithm_config(optimizer_config: OptimizerConfig) -> OptimizerAlgorithmConfig:
    """The chosen algorithm's config (``AdamConfig``, ``SgdConfig``…) of an ``OptimizerConfig``."""
    return optimizer_config.algorithm()


__all__ = [
    "AdagradConfig",
    "AdamConfig",
    "LearningRate",
    "LinearRampToConstant",
    "LinearRampToCosine",
    "OptimizerAlgorithmConfig",
    "OptimizerConfig",
    "PiecewiseConstant",
    "SGDConfig",
    "SgdConfig",
    "get_optimizer_algorithm_config",
]
