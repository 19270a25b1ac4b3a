"""``muon``: momentum orthogonalized by Newton-Schulz, for 2-D parameters only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import pydantic
import torch

from tml.optimizers.algorithms.base import OptimizerAlgorithmConfig
from tml.optimizers.fields import FiniteFloat, NonNegativeFloat

_MAX_NAMES_SHOWN = 5


class MuonConfig(OptimizerAlgorithmConfig):
    """Muon (``torch.optim.Muon``): takes 2-D parameters (matrices) only.

    Give it a param group of matrices (``params: ["*.weight"]`` with ``exclude_from_weight_decay:
    [1d]`` or a group of its own) and another algorithm for the rest: a group holding a parameter
    that is not 2-D is refused when the optimizer is built, with its name.
    """

    key = "muon"
    optimizer_class = torch.optim.Muon
    state_tensors = 1  # momentum_buffer

    weight_decay: NonNegativeFloat = pydantic.Field(0.1, description="Decoupled weight decay; >= 0.")
    momentum: NonNegativeFloat = pydantic.Field(0.95, description="Momentum factor; >= 0.")
    nesterov: bool = pydantic.Field(True, description="Use Nesterov momentum.")
    ns_coefficients: tuple[FiniteFloat, FiniteFloat, FiniteFloat] = pydantic.Field(
        (3.4445, -4.775, 2.0315), description="Coefficients (a, b, c) of the quintic Newton-Schulz iteration."
    )
    eps: NonNegativeFloat = pydantic.Field(
        1e-7, description="Added to the norm before the Newton-Schulz iteration; >= 0."
    )
    ns_steps: Annotated[int, pydantic.Field(ge=0, lt=100, strict=True)] = pydantic.Field(
        5, description="Number of Newton-Schulz iterations; in [0, 100) (torch refuses 100 or more)."
    )
    adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = pydantic.Field(
        None,
        description="How the LR is scaled by the matrix shape: null (torch's default, 'original'), "
        "'original' or 'match_rms_adamw'.",
    )

    def check_parameters(self, named_parameters: Sequence[tuple[str, torch.Tensor]]) -> str | None:
        """Muon takes 2-D parameters only: name those that are not."""
        wrong = [
            f"{name} {tuple(parameter.shape)}" for name, parameter in named_parameters if parameter.ndim != 2
        ]
        if not wrong:
            return None
        shown = ", ".join(wrong[:_MAX_NAMES_SHOWN]) + (
            f" and {len(wrong) - _MAX_NAMES_SHOWN} more" if len(wrong) > _MAX_NAMES_SHOWN else ""
        )
        return f"muon takes 2-D parameters only, got {len(wrong)} that are not: {shown}"
