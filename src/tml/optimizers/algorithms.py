"""Optimizer algorithm configs: one class per torch optimizer, each naming the class it builds."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import pydantic
import torch

from tml.core.config import BaseConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeFloat, PositiveFloat, UnitIntervalOpen
from tml.optimizers.schedules import LearningRate


def _lr_branch(value: Any) -> str:
    return "LearningRate" if isinstance(value, (dict, LearningRate)) else "Value"


LearningRateOrSchedule = Annotated[
    Annotated[LearningRateValue, pydantic.Tag("Value")]
    | Annotated[LearningRate, pydantic.Tag("LearningRate")],
    pydantic.Discriminator(_lr_branch),
]


class OptimizerAlgorithmConfig(BaseConfig):
    """Base of the algorithm configs: the learning rate and the torch class to build."""

    optimizer_class: ClassVar[type[torch.optim.Optimizer]]
    """The torch optimizer this config builds."""

    lr: LearningRateOrSchedule | None = pydantic.Field(
        None,
        description="The learning rate: a number, or a schedule (a LearningRate). May be left out "
        "when the optimizer config sets learning_rate, which then wins.",
    )

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the torch optimizer's constructor, all but ``lr``."""
        kwargs = self.model_dump(exclude={"lr"})
        return {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}


class AdamConfig(OptimizerAlgorithmConfig):
    """Adam (``torch.optim.Adam``)."""

    optimizer_class = torch.optim.Adam

    betas: tuple[UnitIntervalOpen, UnitIntervalOpen] = pydantic.Field(
        (0.9, 0.999), description="Decay rates of the running averages of the gradient and its square."
    )
    eps: NonNegativeFloat = pydantic.Field(
        1e-7, description="Added to the denominator for numerical stability (tml's default: 1e-7)."
    )


class SgdConfig(OptimizerAlgorithmConfig):
    """Stochastic gradient descent (``torch.optim.SGD``)."""

    optimizer_class = torch.optim.SGD

    momentum: NonNegativeFloat = pydantic.Field(0.0, description="Momentum factor.")


SGDConfig = SgdConfig


class AdagradConfig(OptimizerAlgorithmConfig):
    """Adagrad (``torch.optim.Adagrad``)."""

    optimizer_class = torch.optim.Adagrad

    eps: PositiveFloat = pydantic.Field(
        1e-10,
        description="Added to the denominator for numerical stability; > 0 (with 0, an entry "
        "whose gradient is zero becomes NaN on the first step).",
    )
