"""Per-coordinate adaptive methods: ``adagrad``, ``rmsprop``, ``adadelta``, ``adafactor``, ``rprop``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import pydantic
import torch

from tml.core.config import raise_at
from tml.optimizers.algorithms.base import OptimizerAlgorithmConfig
from tml.optimizers.fields import NO_BOOL, NonNegativeFloat, PositiveFloat

_EPS = "Added to the denominator for numerical stability; >= 0."
_WEIGHT_DECAY = "Weight decay (L2 penalty); >= 0."
_MAXIMIZE = "Maximize the objective instead of minimizing it."


class AdagradConfig(OptimizerAlgorithmConfig):
    """Adagrad (``torch.optim.Adagrad``)."""

    key = "adagrad"
    optimizer_class = torch.optim.Adagrad
    state_tensors = 1  # sum
    original_kwargs = ("eps",)

    lr_decay: NonNegativeFloat = pydantic.Field(0.0, description="Learning-rate decay; >= 0.")
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    initial_accumulator_value: NonNegativeFloat = pydantic.Field(
        0.0, description="Initial value of the sum of squared gradients; >= 0."
    )
    eps: PositiveFloat = pydantic.Field(
        1e-10,
        description="Added to the denominator for numerical stability; > 0 (with 0, an entry "
        "whose gradient is zero becomes NaN on the first step).",
    )
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


class RmspropConfig(OptimizerAlgorithmConfig):
    """RMSprop (``torch.optim.RMSprop``)."""

    key = "rmsprop"
    optimizer_class = torch.optim.RMSprop
    state_tensors = 1  # square_avg (and momentum_buffer, grad_avg)

    alpha: NonNegativeFloat = pydantic.Field(0.99, description="Smoothing constant; >= 0.")
    eps: NonNegativeFloat = pydantic.Field(1e-8, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    momentum: NonNegativeFloat = pydantic.Field(0.0, description="Momentum factor; >= 0.")
    centered: bool = pydantic.Field(
        False, description="Normalize by an estimate of the gradient's variance (centered RMSprop)."
    )
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)

    def state_tensor_count(self) -> int:
        """``square_avg``, plus ``momentum_buffer`` with momentum and ``grad_avg`` when centered."""
        return 1 + (self.momentum > 0) + self.centered


RMSpropConfig = RmspropConfig


class AdadeltaConfig(OptimizerAlgorithmConfig):
    """Adadelta (``torch.optim.Adadelta``).

    torch's default ``lr`` is 1.0; like every tml algorithm, the LR must be given explicitly.
    """

    key = "adadelta"
    optimizer_class = torch.optim.Adadelta
    state_tensors = 2  # square_avg, acc_delta

    rho: Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, le=1.0, allow_inf_nan=False)] = pydantic.Field(
        0.9, description="Decay rate of the running averages; in [0, 1]."
    )
    eps: NonNegativeFloat = pydantic.Field(1e-6, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


class AdafactorConfig(OptimizerAlgorithmConfig):
    """Adafactor: factored second moments, sublinear memory (``torch.optim.Adafactor``)."""

    key = "adafactor"
    optimizer_class = torch.optim.Adafactor

    beta2_decay: Annotated[float, NO_BOOL, pydantic.Field(le=0.0, allow_inf_nan=False)] = pydantic.Field(
        -0.8, description="Decay rate of the second-moment estimate; <= 0."
    )
    eps: tuple[NonNegativeFloat | None, NonNegativeFloat] = pydantic.Field(
        (None, 1e-3),
        description="Epsilon added to the squared gradient (null: the dtype's smallest normal "
        "number) and epsilon of the relative step size; each >= 0.",
    )
    d: Annotated[float, NO_BOOL, pydantic.Field(ge=1.0, allow_inf_nan=False)] = pydantic.Field(
        1.0, description="Clipping threshold of the update's RMS; >= 1."
    )
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)

    def state_elements(self, shape: Sequence[int]) -> int:
        """Factored second moments: a row and a column vector per matrix (``row_var``, ``col_var``,
        over the leading dimensions too); a full ``variance`` for a vector or scalar."""
        if len(shape) < 2:
            return math.prod(shape)
        return math.prod(shape[:-2]) * (shape[-2] + shape[-1])


class RpropConfig(OptimizerAlgorithmConfig):
    """Resilient backpropagation (``torch.optim.Rprop``). It has no weight decay."""

    key = "rprop"
    optimizer_class = torch.optim.Rprop
    state_tensors = 2  # prev, step_size

    etas: tuple[PositiveFloat, PositiveFloat] = pydantic.Field(
        (0.5, 1.2),
        description="(eta minus, eta plus): the step-size factors on a sign change and otherwise; "
        "0 < eta minus < 1 < eta plus.",
    )
    step_sizes: tuple[NonNegativeFloat, NonNegativeFloat] = pydantic.Field(
        (1e-6, 50.0),
        description="The least and greatest step size; 0 <= least <= greatest (torch does not check).",
    )
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)

    @pydantic.model_validator(mode="after")
    def _check_ranges(self) -> RpropConfig:
        title = type(self).__name__
        eta_minus, eta_plus = self.etas
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise_at(title, ("etas",), f"needs 0 < etas[0] < 1 < etas[1], got {list(self.etas)}", self.etas)
        least, greatest = self.step_sizes
        if least > greatest:
            raise_at(
                title,
                ("step_sizes",),
                f"needs step_sizes[0] <= step_sizes[1], got {list(self.step_sizes)}",
                self.step_sizes,
            )
        return self
