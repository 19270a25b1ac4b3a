"""Parameter-name patterns: ``fnmatch`` globs over the whole name, or ``re:`` regexes (``re.search``)."""

from __future__ import annotations

import bisect
import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

try:  # Python >= 3.11
    import re._parser as _sre_parser  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parser  # type: ignore[no-redef,unused-ignore]

REGEX_PREFIX = "re:"


@functools.cache
def pattern_matcher(pattern: str) -> Callable[[str], object]:
    """The compiled form of a pattern: a regex's ``match`` (globs) or ``search`` (``re:``) method.

    Truthy for a matching name; the fastest form, for loops over many names. See
    :func:`compile_pattern` for the semantics.

    Raises:
      ValueError: the pattern is empty, or its regex does not compile.
    """
    if not pattern:
        raise ValueError("a pattern must not be empty")
    if pattern.startswith(REGEX_PREFIX):
        source = pattern[len(REGEX_PREFIX) :]
        if not source:
            raise ValueError(f"the regex of {pattern!r} is empty")
        try:
            compiled = re.compile(source)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regex: {error}") from None
        check_backtracking(source, pattern)
        return compiled.search
    return re.compile(fnmatch.translate(pattern)).match


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def check_backtracking(source: str, pattern: str | None = None) -> None:
    """Refuse a regex whose matching time can grow exponentially with the name's length.

    Python's ``re`` backtracks, and has no time limit: ``^(\\w+\\.?)+\\.bias$`` took 69 s on a
    three-parameter model. The culprits are a repeated part that can itself repeat (a nested
    quantifier, ``(a+)+``) or that is an alternation of several-character branches (``(ab|a)*``);
    such a regex is refused, and can always be written without (``^[\\w.]+\\.bias$``).

    Raises:
      ValueError: naming the repeated part.
    """
    tree = _sre_parser.parse(source)
    for inner in _repeated_parts(tree):
        shown = pattern if pattern is not None else source
        raise ValueError(
            f"{shown!r} repeats a part that itself {inner} (such as '(a+)+' or '(ab|a)*'), which can "
            "make matching take exponential time on a long name: write it without, e.g. "
            "'re:^[\\w.]+\\.bias$' for 're:^(\\w+\\.?)+\\.bias$'"
        )


def _repeated_parts(tree: object, repeated: bool = False) -> list[str]:
    """What makes a repeated part ambiguous (``"repeats"``, ``"has alternatives"``), for each such part."""
    found: list[str] = []
    items: Any = getattr(tree, "data", tree)
    for op, argument in items:
        name = str(op)
        if name in _REPEATS:
            _, maximum, body = argument
            many = maximum > 1
            if repeated and many:
                found.append("repeats")
            found.extend(_repeated_parts(body, repeated or many))
        elif name == "BRANCH":
            if repeated:
                found.append("has alternatives")
            for branch in argument[1]:
                found.extend(_repeated_parts(branch, repeated))
        elif isinstance(argument, (tuple, list)):
            for part in argument:
                if hasattr(part, "data"):
                    found.extend(_repeated_parts(part, repeated))
    return found


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate over parameter names.

    A glob (``towers.*.weight``) must match the whole name, with ``fnmatch`` semantics (``*`` also
    crosses dots; case-sensitive on every platform). ``re:<regex>`` matches when ``re.search`` finds
    the regex anywhere in the name.

    Raises:
      ValueError: the pattern is empty, or its regex does not compile.

    Examples:
      >>> compile_pattern("towers.*")("towers.a.weight"), compile_pattern("*.bias")("bias")
      (True, False)
      >>> compile_pattern(r"re:blocks\\.\\d+\\.")("model.blocks.3.weight")
      True
    """
    matcher = pattern_matcher(pattern)
    return lambda name: matcher(name) is not None


_GLOB_SPECIAL = frozenset("*?[")
_QUANTIFIERS = frozenset("*+?{")


@functools.cache
def literal_prefix(pattern: str) -> str:
    """A string every name the pattern matches starts with (``""`` when none is known).

    For a glob, the characters before its first wildcard; for a ``re:`` regex anchored with ``^``
    and without alternation, its leading literal characters (plain letters, digits, ``_``, and
    escaped punctuation such as ``\\.``), stopping before a character a quantifier applies to.

    Examples:
      >>> literal_prefix("towers.a.*"), literal_prefix(r"re:^towers\\.b\\d+"), literal_prefix("re:tower")
      ('towers.a.', 'towers.b', '')
    """
    if not pattern.startswith(REGEX_PREFIX):
        for index, character in enumerate(pattern):
            if character in _GLOB_SPECIAL:
                return pattern[:index]
        return pattern
    source = pattern[len(REGEX_PREFIX) :]
    if not source.startswith("^") or "|" in source:
        return ""
    literal: list[str] = []
    index = 1
    while index < len(source):
        character = source[index]
        if character == "\\":
            if index + 1 >= len(source) or source[index + 1].isalnum():
                break  # \d, \w, \b...: a class or an assertion, not a literal
            value, width = source[index + 1], 2
        elif character.isalnum() or character == "_":
            value, width = character, 1
        else:
            break
        following = source[index + width] if index + width < len(source) else ""
        if following in _QUANTIFIERS:
            break
        literal.append(value)
        index += width
    return "".join(literal)


class NameIndex:
    """Parameter names sorted once, so a pattern with a literal prefix only tests the names that
    start with it (a binary search) instead of every name."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        order = sorted(range(len(self.names)), key=self.names.__getitem__)
        self.sorted_names = [self.names[position] for position in order]
        self.positions = order

    def candidates(self, prefix: str) -> tuple[list[str], list[int]]:
        """The names starting with ``prefix`` and their positions (all names for ``""``)."""
        if not prefix:
            return self.names, list(range(len(self.names)))
        start = bisect.bisect_left(self.sorted_names, prefix)
        end = start
        names = self.sorted_names
        while end < len(names) and names[end].startswith(prefix):
            end += 1
        return names[start:end], self.positions[start:end]


def matching_positions(
    patterns: Sequence[str], names: Sequence[str], index: NameIndex | None = None
) -> list[int]:
    """The positions (ascending) of the names that at least one of ``patterns`` matches.

    Args:
      patterns: globs or ``re:`` regexes.
      names: the parameter names.
      index: a :class:`NameIndex` of ``names``, built once by a caller that matches many patterns.
    """
    if index is None:
        index = NameIndex(names)
    found: set[int] = set()
    for pattern in patterns:
        matcher = pattern_matcher(pattern)
        candidates, positions = index.candidates(literal_prefix(pattern))
        found.update(position for position, name in zip(positions, candidates, strict=True) if matcher(name))
    return sorted(found)


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate a list of patterns (for a pydantic field validator); the error names the bad one."""
    for index, pattern in enumerate(patterns):
        try:
            pattern_matcher(pattern)
        except ValueError as error:
            raise ValueError(f"pattern {index}: {error}") from None
    return patterns
