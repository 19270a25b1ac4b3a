"""Base class of every config: extra keys forbidden, one-of field groups, YAML printing."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import pydantic
import yaml

_GROUP_KINDS = ("one_of", "at_most_one_of")


def _mark_field_groups(schema: dict[str, Any], model_class: type[Any]) -> None:
    """Mark each property of the JSON schema with its group, as ``model_class`` counts it."""
    properties = schema.get("properties", {})
    for kind in _GROUP_KINDS:
        for group, names in model_class.field_groups(kind).items():
            for name in names:
                marked = properties.get(name)
                if isinstance(marked, dict):
                    for other in _GROUP_KINDS:
                        marked.pop(other, None)
                    marked[kind] = group


class BaseConfig(pydantic.BaseModel):
    """Base class of every config class.

    - Unknown keys are an error (``extra="forbid"``): a typo never passes silently.
    - ``one_of`` groups: fields declared with ``json_schema_extra={"one_of": "group"}`` form a group
      of which exactly one must be set (not ``None``).
    - ``at_most_one_of`` groups: likewise, but none set is allowed.
    - ``optional_groups``: names of inherited ``one_of`` groups that a subclass relaxes to
      ``at_most_one_of`` (fields declared once, e.g. the algorithm keys, serve both kinds). The JSON
      schema marks every field with its group as this class counts it.

    Examples:
      >>> class Example(BaseConfig):
      ...     x: int | None = pydantic.Field(None, json_schema_extra={"one_of": "xy"})
      ...     y: int | None = pydantic.Field(None, json_schema_extra={"one_of": "xy"})
      >>> Example(x=1).x
      1
      >>> Example(x=1, y=2)
      Traceback (most recent call last):
      ...
      pydantic_core._pydantic_core.ValidationError: 1 validation error for Example
        Value error, exactly one of x, y must be set, got 2: x, y [...]
      ...
    """

    model_config = pydantic.ConfigDict(
        extra="forbid", validate_default=True, frozen=False, json_schema_extra=_mark_field_groups
    )

    optional_groups: ClassVar[frozenset[str]] = frozenset()
    """Inherited ``one_of`` groups that this class counts as ``at_most_one_of``."""

    @classmethod
    @functools.cache
    def field_groups(cls, kind: str) -> dict[str, tuple[str, ...]]:
        """The ``kind`` groups (``one_of`` or ``at_most_one_of``) of this class: group -> fields."""
        groups: dict[str, list[str]] = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict):
                continue
            for declared in _GROUP_KINDS:
                if declared not in extra:
                    continue
                group = str(extra[declared])
                counted = "at_most_one_of" if group in cls.optional_groups else declared
                if counted == kind:
                    groups.setdefault(group, []).append(name)
        return {group: tuple(names) for group, names in groups.items()}

    @pydantic.model_validator(mode="after")
    def _check_field_groups(self) -> BaseConfig:
        for kind in _GROUP_KINDS:
            for names in self.field_groups(kind).values():
                chosen = [name for name in names if getattr(self, name) is not None]
                if kind == "one_of" and len(chosen) != 1:
                    raise ValueError(
                        f"exactly one of {', '.join(names)} must be set, got {len(chosen)}"
                        + (f": {', '.join(chosen)}" if chosen else "")
                    )
                if kind == "at_most_one_of" and len(chosen) > 1:
                    raise ValueError(f"at most one of {', '.join(names)} may be set, got {', '.join(chosen)}")
        return self

    def chosen(self, group: str = "") -> tuple[str, Any]:
        """The ``(field name, value)`` set in a one-of group (the only group when ``group`` is empty)."""
        groups = self.field_groups("one_of")
        names = groups[group] if group else next(iter(groups.values()))
        for name in names:
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise ValueError(f"{type(self).__name__}: none of {', '.join(names)} is set")

    def pretty_print(self) -> str:
        """A human-readable YAML rendering of the config (unset fields left out), for logs."""
        return yaml.safe_dump(
            self.model_dump(mode="json", exclude_none=True), sort_keys=False, default_flow_style=False
        )
