"""Stochastic gradient descent: ``sgd`` and its averaged variant ``asgd``."""

from __future__ import annotations

import pydantic
import torch

from tml.core.config import raise_at
from tml.optimizers.algorithms.base import OptimizerAlgorithmConfig
from tml.optimizers.fields import NonNegativeFloat

_MAXIMIZE = "Maximize the objective instead of minimizing it."


class SgdConfig(OptimizerAlgorithmConfig):
    """Stochastic gradient descent, with optional (Nesterov) momentum (``torch.optim.SGD``)."""

    key = "sgd"
    optimizer_class = torch.optim.SGD
    original_kwargs = ("momentum",)

    momentum: NonNegativeFloat = pydantic.Field(0.0, description="Momentum factor; >= 0.")
    dampening: NonNegativeFloat = pydantic.Field(0.0, description="Dampening of the momentum; >= 0.")
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description="Weight decay (L2 penalty); >= 0.")
    nesterov: bool = pydantic.Field(
        False, description="Nesterov momentum; needs momentum > 0 and dampening 0."
    )
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)

    def state_tensor_count(self) -> int:
        """A ``momentum_buffer`` with momentum, nothing without."""
        return int(self.momentum > 0)

    @pydantic.model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SgdConfig:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise_at(
                type(self).__name__,
                ("nesterov",),
                "nesterov needs momentum > 0 and dampening 0, got "
                f"momentum={self.momentum} and dampening={self.dampening}",
                self.nesterov,
            )
        return self


SGDConfig = SgdConfig


class AsgdConfig(OptimizerAlgorithmConfig):
    """Averaged SGD (``torch.optim.ASGD``).

    ``lambd``, ``alpha`` and ``t0`` keep torch's names; torch does not check them, tml requires
    them to be >= 0 (negative values make the step size grow without bound).
    """

    key = "asgd"
    optimizer_class = torch.optim.ASGD
    state_tensors = 1  # ax

    lambd: NonNegativeFloat = pydantic.Field(1e-4, description="Decay term; >= 0.")
    alpha: NonNegativeFloat = pydantic.Field(0.75, description="Power for the eta update; >= 0.")
    t0: NonNegativeFloat = pydantic.Field(1e6, description="The step at which averaging starts; >= 0.")
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description="Weight decay (L2 penalty); >= 0.")
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


ASGDConfig = AsgdConfig
