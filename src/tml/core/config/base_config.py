"""Base classes of every config: extra keys forbidden, one-of field groups, YAML printing.

``BaseConfig`` follows pydantic 1's rules for the fields a class declares (the original's config
classes, and those its users wrote on it, were written for them); ``StrictConfig``, the base of every
config class of tml, does not.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, ClassVar

import pydantic
import yaml
from pydantic.fields import FieldInfo

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


def _is_class_variable(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return typing.get_origin(annotation) is ClassVar


def _make_none_defaults_optional(config_class: type[BaseConfig]) -> None:
    """pydantic 1's implicit ``Optional``: a field of ``config_class``'s own whose default is ``None``
    (``x: int = None``, ``x: int = Field(None, ...)``) also accepts ``None``.

    Runs before pydantic reads the annotations. A string annotation (``from __future__ import
    annotations``) becomes ``Optional[ForwardRef(...)]``, which pydantic resolves like the string.
    """
    annotations = inspect.get_annotations(config_class)  # a copy, written back below
    namespace = vars(config_class)
    changed = False
    for name, annotation in annotations.items():
        if name.startswith("_") or name not in namespace or _is_class_variable(annotation):
            continue
        default = namespace[name]
        if isinstance(default, FieldInfo):
            default = default.default
        if default is None:
            annotations[name] = typing.Optional[annotation]  # noqa: UP045 (a string must stay a ForwardRef)
            changed = True
    if changed:
        config_class.__annotations__ = annotations


class BaseConfig(pydantic.BaseModel):
    """Base class of every config class, with pydantic 1's rules for the fields a subclass declares.

    - Unknown keys are an error (``extra="forbid"``): a typo never passes silently.
    - pydantic 1's rules, as the original's config classes (and those written on them) expect:
      defaults are not validated, and a field whose default is ``None`` accepts ``None``
      (``x: int = pydantic.Field(None)`` is ``x: int | None``), so an unused key may be left out or
      written as ``null``. The config classes of tml derive from :class:`StrictConfig` instead.
    - ``one_of`` groups: fields declared with ``json_schema_extra={"one_of": "group"}`` (or with
      pydantic 1's extra keyword, ``pydantic.Field(None, one_of="group")``, which pydantic 2 keeps
      in ``json_schema_extra``) form a group of which exactly one must be set (not ``None``).
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
        extra="forbid", validate_default=False, frozen=False, json_schema_extra=_mark_field_groups
    )

    implicit_optional: ClassVar[bool] = True
    """pydantic 1's implicit ``Optional`` for the fields this class declares with a ``None`` default."""

    optional_groups: ClassVar[frozenset[str]] = frozenset()
    """Inherited ``one_of`` groups that this class counts as ``at_most_one_of``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Called by type.__new__, before pydantic collects the fields from the annotations.
        super().__init_subclass__(**kwargs)
        if cls.implicit_optional:
            _make_none_defaults_optional(cls)

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
        """A human-readable YAML rendering of the config (unset fields left out), for logs.

        A default that was never validated (pydantic 1's rule) is printed as it is, e.g. a list
        given as the default of a tuple field, without pydantic's serialization warning.
        """
        data = self.model_dump(mode="json", exclude_none=True, warnings=False)
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


class StrictConfig(BaseConfig):
    """The base of every config class of tml: :class:`BaseConfig` without pydantic 1's rules.

    Defaults are validated (a wrong default fails when the class is first instantiated, in the
    tests), and ``None`` is accepted only where the annotation says so (``X | None``).
    """

    model_config = pydantic.ConfigDict(validate_default=True)
    implicit_optional: ClassVar[bool] = False
