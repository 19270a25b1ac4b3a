"""Parameter-name patterns: ``fnmatch`` globs over the whole name, or ``re:`` regexes (``re.search``)."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence

REGEX_PREFIX = "re:"


@functools.cache
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
    if not pattern:
        raise ValueError("a pattern must not be empty")
    if pattern.startswith(REGEX_PREFIX):
        source = pattern[len(REGEX_PREFIX) :]
        if not source:
            raise ValueError(f"the regex of {pattern!r} is empty")
        try:
            search = re.compile(source).search
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regex: {error}") from None
        return lambda name: search(name) is not None
    match = re.compile(fnmatch.translate(pattern)).match
    return lambda name: match(name) is not None


def compile_patterns(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A predicate true for names that at least one of ``patterns`` matches."""
    predicates = [compile_pattern(pattern) for pattern in patterns]

    def matches(name: str) -> bool:
        return any(predicate(name) for predicate in predicates)

    return matches


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate a list of patterns (for a pydantic field validator); the error names the bad one."""
    for index, pattern in enumerate(patterns):
        try:
            compile_pattern(pattern)
        except ValueError as error:
            raise ValueError(f"pattern {index}: {error}") from None
    return patterns
