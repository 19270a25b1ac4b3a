"""Validation rules shared by the schedule configs; each raises ``ValueError`` naming field and value."""

from __future__ import annotations

from typing import Any

import pydantic


def require_strictly_increasing(name: str, values: list[int]) -> list[int]:
    """``values`` unchanged if each is greater than the one before it."""
    for index in range(1, len(values)):
        if values[index] <= values[index - 1]:
            raise ValueError(
                f"{name} must be strictly increasing, got {values[index]} at index {index} "
                f"after {values[index - 1]}"
            )
    return values


def require_at_most(name: str, value: float, other_name: str, info: pydantic.ValidationInfo) -> float:
    """``value`` unchanged if it is at most the already validated field ``other_name``."""
    other = info.data.get(other_name)
    if other is not None and value > other:
        raise ValueError(f"{name} must be at most {other_name} ({other}), got {value}")
    return value


def final_at_most_peak() -> Any:
    """A field validator, shared by the decaying kinds: ``final_learning_rate <= learning_rate``."""

    def check(cls: type, final: float, info: pydantic.ValidationInfo) -> float:
        return require_at_most("final_learning_rate", final, "learning_rate", info)

    return pydantic.field_validator("final_learning_rate")(check)
