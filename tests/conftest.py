"""Fixtures shared by the test suite: the repository's folders and the original's real configs.

The real configs of the original (``../shared/data`` beside the checkout) are not part of the
repository (AGPL-3.0): a test that reads one gets it through :func:`shared_config`, which skips with
the reason when the folder is absent, as it is in a user's clone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
"""The repository's root folder."""
SHARED_DATA = REPO.parent / "shared" / "data"
"""Where the original's real configs are, when this checkout has them beside it."""


def shared_config_path(name: str) -> Path:
    """The path of a real config of the original, or a skip (with the reason) when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the original's configs are not beside this checkout")
    return path


@pytest.fixture
def shared_config() -> Callable[[str], Path]:
    """``shared_config(name)``: the path of one of the original's real configs (skips when absent)."""
    return shared_config_path


@pytest.fixture
def repo() -> Path:
    """The repository's root folder."""
    return REPO
