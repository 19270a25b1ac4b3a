"""The JSON Schema of ``OptimizerConfig``, for editors (yaml-language-server) and validators.

Besides pydantic's schema, every one-of group becomes a JSON Schema ``oneOf`` (exactly one key
set and not null) and every at-most-one-of group a ``not``/``anyOf`` over its pairs, so an editor
flags a config with two algorithms or none.
"""

from __future__ import annotations

import itertools
from typing import Any

from tml.optimizers.config import OptimizerConfig

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_GROUP_KINDS = ("one_of", "at_most_one_of")


def optimizer_schema(key: str | None = None) -> dict[str, Any]:
    """The JSON Schema of ``OptimizerConfig``; with ``key`` (``"optimizer"``, ``"model.optimizer"``), of a
    document that holds it under that dotted key (other keys of the document are allowed).

    Examples:
      >>> schema = optimizer_schema()
      >>> schema["title"], schema["additionalProperties"]
      ('OptimizerConfig', False)
      >>> sorted(optimizer_schema("optimizer")["properties"])
      ['optimizer']
    """
    schema = _standard_bounds(OptimizerConfig.model_json_schema())
    for definition in [schema, *schema.get("$defs", {}).values()]:
        _add_field_groups(definition)
    if not key:
        return {"$schema": DIALECT, **schema}
    definitions = schema.pop("$defs", {})
    wrapped: dict[str, Any] = schema
    for part in reversed(key.split(".")):
        wrapped = {"type": "object", "properties": {part: wrapped}, "required": [part]}
    return {
        "$schema": DIALECT,
        "title": f"document with OptimizerConfig at {key}",
        **wrapped,
        "$defs": definitions,
    }


_BOUND_KEYWORDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _standard_bounds(node: Any) -> Any:
    """Rename the bounds pydantic leaves as ``ge``/``gt``/``le``/``lt`` (it does so for a constrained
    number inside a tagged union, such as an algorithm's ``lr``) to JSON Schema's keywords, which
    validators and editors understand."""
    if isinstance(node, list):
        return [_standard_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    numeric = node.get("type") in {"number", "integer"}
    return {
        (_BOUND_KEYWORDS[key] if numeric and key in _BOUND_KEYWORDS else key): _standard_bounds(value)
        for key, value in node.items()
    }


def _add_field_groups(definition: dict[str, Any]) -> None:
    groups: dict[tuple[str, str], list[str]] = {}
    for name, property_schema in definition.get("properties", {}).items():
        for kind in _GROUP_KINDS:
            if kind in property_schema:
                groups.setdefault((kind, str(property_schema[kind])), []).append(name)
    constraints: list[dict[str, Any]] = []
    for (kind, _), names in groups.items():
        if kind == "one_of":
            constraints.append({"oneOf": [_is_set(name) for name in names]})
        else:
            pairs = [_all_set(pair) for pair in itertools.combinations(names, 2)]
            if pairs:
                constraints.append({"not": {"anyOf": pairs}})
    if constraints:
        definition["allOf"] = [*definition.get("allOf", []), *constraints]


def _is_set(name: str) -> dict[str, Any]:
    return _all_set((name,))


def _all_set(names: tuple[str, ...]) -> dict[str, Any]:
    return {"required": list(names), "properties": {name: {"not": {"type": "null"}} for name in names}}


__all__ = ["DIALECT", "optimizer_schema"]
