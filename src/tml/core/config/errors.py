"""Config errors that name the config path, the rule, the value and, from YAML, the file and line."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import pydantic
import pydantic_core

# Parts of a pydantic error location that name a union branch or a validator, not a config key.
_TYPE_TAG = re.compile(r"^(float|int|str|bool|list|dict|tuple|none|[A-Z]\w*)$|[\[\]-]")
_MAX_VALUE_CHARS = 80
_NO_DATA: Any = object()


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a key or value stands in a YAML file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclasses.dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong with a config: where, which rule, and the value received."""

    path: tuple[str | int, ...]
    message: str
    value: object = dataclasses.field(default=None)
    has_value: bool = False
    position: Position | None = None
    hint: str = ""
    """What may fix it, e.g. for an unknown key the nearest valid key and every valid one."""

    @property
    def dotted_path(self) -> str:
        return ".".join(str(part) for part in self.path)

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        text = f"{where}{self.dotted_path + ': ' if self.path else ''}{self.message}"
        if self.has_value and not _message_shows_value(self.message, self.value):
            text += f" (got {_short_repr(self.value)})"
        return f"{text}; {self.hint}" if self.hint else text


class ConfigError(ValueError):
    """A config that cannot be used, with every issue found in it (never raised mid-training)."""

    def __init__(self, issues: Sequence[ConfigIssue], title: str = "invalid config") -> None:
        self.issues = tuple(issues)
        self.title = title
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return f"{self.title}: {self.issues[0]}"
        lines = [f"{self.title}: {len(self.issues)} errors"]
        lines.extend(f"  {issue}" for issue in self.issues)
        return "\n".join(lines)

    @classmethod
    def from_validation_error(
        cls,
        error: pydantic.ValidationError,
        *,
        prefix: tuple[str | int, ...] = (),
        positions: Mapping[tuple[str | int, ...], Position] | None = None,
        title: str = "invalid config",
        data: Any = _NO_DATA,
    ) -> ConfigError:
        """Turn pydantic's error into ours: clean paths, one line per issue, YAML positions.

        ``data`` is the input that was validated (without ``prefix``): with it, a part of an error's
        location that is a key of the input is kept as a key even where it looks like a union branch
        (``Adam``, ``decay-steps``).
        """
        issues = []
        for detail in error.errors(include_url=False):
            path = prefix + _config_path(detail["loc"], data)
            message = str(detail["msg"]).removeprefix("Value error, ")
            has_value = detail["type"] not in {"missing", "model_type"} and not isinstance(
                detail.get("input"), (dict, list)
            )
            issues.append(
                ConfigIssue(
                    path=path,
                    message=message,
                    value=detail.get("input"),
                    has_value=has_value,
                    position=_nearest_position(path, positions or {}),
                )
            )
        return cls(issues, title=title)


def _is_type_tag(part: str | int) -> bool:
    return isinstance(part, str) and bool(_TYPE_TAG.search(part))


def _config_path(location: Sequence[str | int], data: Any) -> tuple[str | int, ...]:
    """The config keys and list indices of a pydantic location, union branches and validators left out.

    Where the input is known, a part that is a key (or an index) of the input at that point is a key,
    whatever it looks like; past the input (a missing field), the look of a part decides.
    """
    path: list[str | int] = []
    current = data
    for part in location:
        if current is not _NO_DATA:
            if isinstance(current, Mapping) and part in current:
                path.append(part)
                current = current[part]
                continue
            if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
                path.append(part)
                current = current[part]
                continue
        if _is_type_tag(part):
            continue
        path.append(part)
        current = _NO_DATA
    return tuple(path)


def _nearest_position(
    path: tuple[str | int, ...], positions: Mapping[tuple[str | int, ...], Position]
) -> Position | None:
    for end in range(len(path), -1, -1):
        position = positions.get(path[:end])
        if position is not None:
            return position
    return None


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _message_shows_value(message: str, value: object) -> bool:
    return f"got {value!r}" in message or f"got {value}" in message


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
