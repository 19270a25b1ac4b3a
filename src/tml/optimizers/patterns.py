"""Parameter-name patterns: ``fnmatch`` globs over the whole name, or ``re:`` regexes (``re.search``)."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence

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
            return re.compile(source).search
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regex: {error}") from None
    return re.compile(fnmatch.translate(pattern)).match


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


def matching_positions(patterns: Sequence[str], names: Sequence[str]) -> list[int]:
    """The positions (ascending) of the names that at least one of ``patterns`` matches."""
    found: set[int] = set()
    for pattern in patterns:
        matcher = pattern_matcher(pattern)
        found.update(position for position, name in enumerate(names) if matcher(name))
    return sorted(found)


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate a list of patterns (for a pydantic field validator); the error names the bad one."""
    for index, pattern in enumerate(patterns):
        try:
            pattern_matcher(pattern)
        except ValueError as error:
            raise ValueError(f"pattern {index}: {error}") from None
    return patterns
