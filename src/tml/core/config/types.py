"""Walking pydantic field annotations: the config classes and element types an annotation holds.

The one type walker of the project: the suggestions (valid keys along a path) and the generated
config reference both read annotations through it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

import pydantic

_CONTAINERS = (list, tuple, set, frozenset)


def options(annotation: Any) -> Iterator[Any]:
    """The alternatives of an annotation, through ``Annotated`` and unions (``X | None`` gives ``X``
    and ``None``'s type).

    Examples:
      >>> list(options(int | typing.Annotated[str, "meta"]))
      [<class 'int'>, <class 'str'>]
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from options(typing.get_args(annotation)[0])
    elif origin is typing.Union or origin is types.UnionType:
        for argument in typing.get_args(annotation):
            yield from options(argument)
    else:
        yield annotation


def models_in(annotation: Any, *, nested: bool = False) -> list[type[pydantic.BaseModel]]:
    """The config classes an annotation can hold directly (through ``X | None``, unions and
    ``Annotated``); with ``nested``, also those inside lists, tuples and dict values.

    Examples:
      >>> class Inner(pydantic.BaseModel):
      ...     x: int = 0
      >>> models_in(Inner | None), models_in(list[Inner]), models_in(list[Inner], nested=True)
      ([<class 'tml.core.config.types.Inner'>], [], [<class 'tml.core.config.types.Inner'>])
    """
    found: list[type[pydantic.BaseModel]] = []
    for option in options(annotation):
        if isinstance(option, type) and issubclass(option, pydantic.BaseModel):
            found.append(option)
        elif nested:
            for argument in typing.get_args(option):
                if argument is not Ellipsis:
                    found.extend(models_in(argument, nested=True))
    return list(dict.fromkeys(found))


def element_types(annotation: Any, *, mapping: bool) -> Iterator[Any]:
    """The value types of the dicts (``mapping``) or the item types of the lists and tuples an
    annotation holds."""
    for option in options(annotation):
        origin = typing.get_origin(option)
        arguments = typing.get_args(option)
        if mapping and origin is dict and len(arguments) == 2:
            yield arguments[1]
        elif not mapping and origin in _CONTAINERS:
            yield from (argument for argument in arguments if argument is not Ellipsis)


__all__ = ["element_types", "models_in", "options"]
