"""Suggest the nearest valid key for a typo'd one, by walking the config classes along its path."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
from typing import Any

import pydantic

from tml.core.config.errors import ConfigError, ConfigIssue
from tml.core.config.types import element_types, models_in

EXTRA_KEY_MESSAGE = "Extra inputs are not permitted"
"""pydantic's message for a key that the config class does not have (``extra="forbid"``)."""


def models_at(root: type[pydantic.BaseModel], path: tuple[str | int, ...]) -> list[type[pydantic.BaseModel]]:
    """The config classes that can stand at ``path`` under ``root`` (several where a field is a union).

    List indices and dictionary keys are stepped over; a path through a non-config value yields none.

    Examples:
      >>> from tml.optimizers.config import OptimizerConfig
      >>> [model.__name__ for model in models_at(OptimizerConfig, ("adam",))]
      ['AdamConfig']
    """
    current: list[Any] = [root]
    for part in path:
        following: list[Any] = []
        for annotation in current:
            following.extend(element_types(annotation, mapping=not isinstance(part, int)))
            if isinstance(part, str):
                for model in models_in(annotation):
                    field = model.model_fields.get(part)
                    if field is not None:
                        following.append(field.annotation)
        current = following
    return _unique(model for annotation in current for model in models_in(annotation))


def valid_keys(root: type[pydantic.BaseModel], parent: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the mapping at ``parent`` (the union of every class that can stand there)."""
    return _unique(name for model in models_at(root, parent) for name in model.model_fields)


def suggest_key(root: type[pydantic.BaseModel], path: tuple[str | int, ...]) -> str | None:
    """The valid key nearest to the last part of ``path``, if one is close enough (difflib).

    Examples:
      >>> from tml.optimizers.config import OptimizerConfig
      >>> suggest_key(OptimizerConfig, ("adam", "beta"))
      'betas'
      >>> suggest_key(OptimizerConfig, ("adma",))
      'adam'
      >>> suggest_key(OptimizerConfig, ("adam", "completely_unrelated")) is None
      True
    """
    if not path or not isinstance(path[-1], str):
        return None
    word = path[-1]
    keys = valid_keys(root, path[:-1])
    # A capitalised or hyphenated spelling of a valid key ("SGD", "decay-steps") is that key.
    normalized = word.lower().replace("-", "_")
    if normalized in keys:
        return normalized
    matches = difflib.get_close_matches(word, keys, n=3, cutoff=0.6)
    # Swapped letters are the commonest typo ("adma"): prefer a key with exactly the same letters.
    swapped = [match for match in matches if sorted(match) == sorted(word)]
    if swapped:
        return swapped[0]
    return matches[0] if matches else None


def issue_hint(root: type[pydantic.BaseModel], issue: ConfigIssue, prefix_length: int) -> str:
    """A hint for an unknown key (the nearest valid key and every valid one); ``""`` otherwise."""
    if EXTRA_KEY_MESSAGE not in issue.message:
        return ""
    path = issue.path[prefix_length:]
    keys = valid_keys(root, path[:-1])
    if not keys:
        return ""
    nearest = suggest_key(root, path)
    did_you_mean = f"did you mean {nearest!r}? " if nearest else ""
    return f"{did_you_mean}valid keys: {', '.join(keys)}"


def with_hints(error: ConfigError, root: type[pydantic.BaseModel], prefix_length: int = 0) -> ConfigError:
    """``error`` with a hint on each unknown key: the nearest valid key and every valid one.

    Args:
      error: issues of a config of class ``root``.
      root: the config class validated.
      prefix_length: how many leading parts of each issue's path lead to the config in its document.
    """
    issues = [
        dataclasses.replace(issue, hint=issue_hint(root, issue, prefix_length)) if not issue.hint else issue
        for issue in error.issues
    ]
    return type(error)(issues, title=error.title)


def _unique(items: Iterator[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


__all__ = ["issue_hint", "models_at", "suggest_key", "valid_keys", "with_hints"]
