"""Compose a YAML document in one pass over the parser's events, refusing what would load silently wrong.

PyYAML's own composer keeps the last of two equal keys, reads numbers by YAML 1.1 rules (``010`` is
8, ``1:30`` is 90, ``1e4`` is a string), recurses over aliases and counts nothing. This one walks the
event stream (libyaml's parser where it is installed) with an explicit stack and, while it composes:

- counts every node, aliases expanded, and stops at ``max_nodes``;
- measures the nesting, aliases expanded, and stops at ``max_depth``;
- refuses a key given twice in one mapping (naming both lines), a recursive alias, and a boolean or
  null key (``true:``, ``on:``, ``~:``);
- reads plain numbers by YAML 1.2 rules (``1e4`` and ``1.0e5`` are floats, ``0o17`` and ``0x1f``
  integers) and refuses the forms whose value differs between YAML 1.1 and 1.2: a leading zero
  (``010``: 8 or 10) and base 60 (``1:30``: 90 or a string).

The nodes are then constructed by PyYAML's ``SafeConstructor``: the tags a safe load knows, nothing more.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from typing import Any, cast

import yaml
from yaml.resolver import Resolver

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_REFUSED_KEY_TAGS = {"tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:null": "null"}

PARSER: type[Any] = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
"""The event parser: libyaml's when installed (the pure-Python one is ~30 times slower)."""

_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_BASE_60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


class _Yaml12Numbers(Resolver):
    """PyYAML's resolver with YAML 1.2's (core schema) integers and floats instead of 1.1's."""


_Yaml12Numbers.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_Yaml12Numbers.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$"), list("-+0123456789")
)
_Yaml12Numbers.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


_AMBIGUOUS = "ambiguous number"


@functools.lru_cache(maxsize=4096)
def _plain_scalar_tag(value: str) -> str:
    """The tag of a plain scalar, or ``_AMBIGUOUS`` for a number that YAML 1.1 and 1.2 read apart."""
    if value[:1] in _DIGITS_AND_SIGNS and (_LEADING_ZERO.match(value) or _BASE_60.match(value)):
        return _AMBIGUOUS
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)))


_DIGITS_AND_SIGNS = frozenset("+-0123456789")


_RESOLVER = _Yaml12Numbers()


class ComposeError(Exception):
    """A document that composes but must not load: the message, the config path and the mark."""

    def __init__(self, message: str, path: tuple[str | int, ...], mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.mark = mark


@dataclasses.dataclass
class _Open:
    """A sequence or mapping being composed."""

    node: yaml.SequenceNode | yaml.MappingNode
    path: tuple[str | int, ...]
    anchor: str | None
    size: int = 1
    height: int = 1
    key: yaml.Node | None = None
    seen: dict[Any, Any] = dataclasses.field(default_factory=dict)

    def child_path(self) -> tuple[str | int, ...]:
        if isinstance(self.node, yaml.SequenceNode):
            return (*self.path, len(self.node.value))
        return (*self.path, key_of(self.key)) if self.key is not None else self.path


def key_of(node: yaml.Node) -> str | int:
    """The config-path part of a mapping key node: an integer for an integer key, else its text."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _INT_TAG:
            try:
                return int(node.value.replace("_", ""), 0)
            except ValueError:
                return str(node.value)
        return str(node.value)
    return "?"


def _base_60(value: str) -> str:
    sign = -1 if value.startswith("-") else 1
    total = 0.0
    for part in value.lstrip("+-").replace("_", "").split(":"):
        total = total * 60 + float(part)
    number = sign * total
    return str(int(number)) if "." not in value else str(number)


def _describe(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class Composer:
    """One pass over the events of a single-document stream (see the module's docstring)."""

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.resolver = _Yaml12Numbers()
        self.nodes = 0
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[yaml.Node, int, int]] = {}
        self.open_anchors: set[str] = set()

    def compose(self, events: Iterable[yaml.Event]) -> yaml.Node | None:
        """The document's root node (``None`` for an empty stream).

        Raises:
          ComposeError: a limit is passed or a rule above is broken.
          yaml.YAMLError: the text is not valid YAML, or holds several documents.
        """
        root: yaml.Node | None = None
        documents = 0
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise yaml.composer.ComposerError(
                        "expected a single document in the stream",
                        None,
                        "but found another document",
                        cast(Any, event.start_mark),
                    )
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                node, size, height = self._leaf(event)
                root = self._add(node, size, height) or root
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self._open(event)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                closed = self.stack.pop()
                if closed.anchor is not None:
                    self.anchors[closed.anchor] = (closed.node, closed.size, closed.height)
                    self.open_anchors.discard(closed.anchor)
                closed.node.end_mark = event.end_mark
                root = self._add(closed.node, closed.size, closed.height) or root
        return root

    def _count(self, size: int, mark: Any) -> None:
        self.nodes += size
        if self.nodes > self.max_nodes:
            raise ComposeError(
                f"the document has more than {self.max_nodes} nodes once aliases are expanded",
                self._path(),
                mark,
            )

    def _depth_check(self, depth: int, mark: Any, aliased: bool) -> None:
        if depth > self.max_depth:
            how = " once aliases are expanded" if aliased else ""
            raise ComposeError(
                f"the document is nested more than {self.max_depth} levels deep{how}", self._path(), mark
            )

    def _path(self) -> tuple[str | int, ...]:
        return self.stack[-1].child_path() if self.stack else ()

    def _leaf(self, event: yaml.ScalarEvent | yaml.AliasEvent) -> tuple[yaml.Node, int, int]:
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in self.open_anchors:
                raise ComposeError(
                    f"the alias *{anchor} refers to a node that contains it (a recursive alias)",
                    self._path(),
                    event.start_mark,
                )
            if anchor not in self.anchors:
                raise ComposeError(
                    f"the alias *{anchor} refers to no anchor before it", self._path(), event.start_mark
                )
            node, size, height = self.anchors[anchor]
            self._count(size, event.start_mark)
            self._depth_check(len(self.stack) + height, event.start_mark, aliased=True)
            return node, size, height
        self._count(1, event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            if event.implicit[0]:
                tag = _plain_scalar_tag(event.value)
                if tag == _AMBIGUOUS:
                    self._refuse_number_form(event.value, event.start_mark)
            else:
                tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        start: Any = event.start_mark  # libyaml's marks are not yaml.Mark, but have its line and column
        end: Any = event.end_mark
        node = yaml.ScalarNode(tag, event.value, start, end, style=event.style)
        if event.anchor is not None:
            self.anchors[event.anchor] = (node, 1, 0)
        return node, 1, 0

    def _refuse_number_form(self, value: str, mark: Any) -> None:
        if _LEADING_ZERO.match(value):
            digits = value.lstrip("+-").lstrip("0_") or "0"
            raise ComposeError(
                f"{value} has a leading zero: YAML 1.1 reads it as an octal number, YAML 1.2 as a decimal "
                f"one; write {value[0] if value[0] in '+-' else ''}{digits} (or 0o{digits} for octal), or "
                "quote it if it is text",
                self._path(),
                mark,
            )
        if _BASE_60.match(value):
            raise ComposeError(
                f"{value} is a base-60 number in YAML 1.1 ({_base_60(value)}) and text in YAML 1.2: "
                "write the number itself, or quote it if it is text",
                self._path(),
                mark,
            )

    def _open(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        path = self._path()
        self._count(1, event.start_mark)
        self._depth_check(len(self.stack) + 1, event.start_mark, aliased=False)
        tag = event.tag
        start: Any = event.start_mark
        if isinstance(event, yaml.SequenceStartEvent):
            if tag is None or tag == "!":
                tag = self.resolver.resolve(yaml.SequenceNode, None, event.implicit)
            node: yaml.SequenceNode | yaml.MappingNode = yaml.SequenceNode(
                tag, [], start, None, flow_style=event.flow_style
            )
        else:
            if tag is None or tag == "!":
                tag = self.resolver.resolve(yaml.MappingNode, None, event.implicit)
            node = yaml.MappingNode(tag, [], start, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Open(node, path, event.anchor))

    def _add(self, node: yaml.Node, size: int, height: int) -> yaml.Node | None:
        """Put a finished node into its parent; the node itself when it is the root."""
        if not self.stack:
            return node
        parent = self.stack[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.node, yaml.SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            self._check_key(parent, node)
            parent.key = node
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None
        return None

    def _check_key(self, parent: _Open, key: yaml.Node) -> None:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            return
        path = (*parent.path, key_of(key))
        refused = _REFUSED_KEY_TAGS.get(key.tag)
        if refused is not None:
            raise ComposeError(
                f"the key {key.value or '~'!r} is read as {refused}, not as a name: quote it "
                f"('{key.value}':) if it is a name",
                path,
                key.start_mark,
            )
        identity = (key.tag, key_of(key))
        first = parent.seen.get(identity)
        if first is not None:
            raise ComposeError(
                f"the key {key.value!r} is given twice in this mapping, at {_describe(first)} and at "
                f"{_describe(key.start_mark)}; YAML would keep only the last: give it once",
                path,
                key.start_mark,
            )
        parent.seen[identity] = key.start_mark


class _Constructor(yaml.constructor.SafeConstructor):
    """PyYAML's safe constructor, on its own (the nodes come from :class:`Composer`)."""


def construct(node: yaml.Node) -> Any:
    """The Python value of a composed document (``yaml.safe_load``'s constructors)."""
    return _Constructor().construct_document(node)


def events(text: str) -> Iterable[yaml.Event]:
    """The parser's events of ``text``, lazily (a limit stops the parse where it is passed)."""
    return yaml.parse(text, Loader=PARSER)
