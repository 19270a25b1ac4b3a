"""Validation rules shared by the schedule families; each raises ``ValueError`` naming field and value."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic

from tml.optimizers.fields import NonNegativeLength


def _strictly_increasing(values: list[int], info: pydantic.ValidationInfo) -> list[int]:
    # Steps relative to the run ("50%") are compared once resolved, when the config is checked again.
    for index in range(1, len(values)):
        if not (isinstance(values[index], int) and isinstance(values[index - 1], int)):
            continue
        if values[index] <= values[index - 1]:
            raise ValueError(
                f"{info.field_name} must be strictly increasing, got {values[index]} at index {index} "
                f"after {values[index - 1]}"
            )
    return values


IncreasingSteps = Annotated[list[NonNegativeLength], pydantic.AfterValidator(_strictly_increasing)]
"""Steps each greater than the one before it (boundaries, milestones); each may be relative to the
run (``"50%"``), compared with the others once resolved."""


def final_at_most_peak() -> Any:
    """A field validator, shared by the decaying kinds: ``final_learning_rate <= learning_rate``."""

    def check(cls: type, final: float, info: pydantic.ValidationInfo) -> float:
        peak = info.data.get("learning_rate")
        if peak is not None and final > peak:
            raise ValueError(f"final_learning_rate must be at most learning_rate ({peak}), got {final}")
        return final

    return pydantic.field_validator("final_learning_rate")(check)
