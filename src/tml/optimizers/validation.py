"""Config errors raised at an exact config path, from validators that check several fields at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import pydantic
import pydantic_core


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value}")
    return value


NO_BOOL = pydantic.BeforeValidator(_reject_bool)
"""Refuses a boolean where a number belongs (pydantic would read True as 1).

Use as ``Annotated[float, NO_BOOL, pydantic.Field(...)]``."""


def located_error(
    title: str, issues: Sequence[tuple[tuple[str | int, ...], str, Any]]
) -> pydantic_core.ValidationError:
    """A pydantic ``ValidationError`` whose issues sit at the given paths (relative to the model).

    pydantic lets a ``ValidationError`` raised inside a validator through, prefixing each path with
    the location of the model being validated; so a cross-field check can point at
    ``param_groups.1.hyperparameters.weight_decay`` rather than at the model as a whole, and a YAML
    error then names the line of that key.

    Args:
      title: the model's name (pydantic's error title).
      issues: ``(path, message, value received)`` triples.
    """
    return pydantic_core.ValidationError.from_exception_data(
        title,
        [
            {
                "type": pydantic_core.PydanticCustomError("value_error", "{message}", {"message": message}),
                "loc": path,
                "input": value,
            }
            for path, message, value in issues
        ],
    )


def raise_at(title: str, path: tuple[str | int, ...], message: str, value: Any = None) -> NoReturn:
    """Raise :func:`located_error` with one issue."""
    raise located_error(title, [(path, message, value)])


def relocate(
    title: str, prefix: tuple[str | int, ...], error: pydantic.ValidationError
) -> pydantic_core.ValidationError:
    """The issues of ``error`` (from validating a nested value by hand) moved under ``prefix``."""
    return located_error(
        title,
        [
            (
                prefix + tuple(detail["loc"]),
                str(detail["msg"]).removeprefix("Value error, "),
                detail.get("input"),
            )
            for detail in error.errors(include_url=False)
        ],
    )
