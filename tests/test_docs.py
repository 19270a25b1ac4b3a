"""Every Python block of the README runs; every schedule kind's section shows its plot."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from tml.optimizers.schedules import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
# A block that shows a call out of context (no imports, no model) is an illustration, not a program.
PROGRAMS = [block for block in PYTHON_BLOCKS if block.lstrip().startswith(("import", "from"))]


def test_the_readme_has_programs() -> None:
    assert len(PROGRAMS) >= 2
    fragments = [block for block in PYTHON_BLOCKS if block not in PROGRAMS]
    assert all(len(block.splitlines()) == 1 for block in fragments), fragments


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: f"block{PROGRAMS.index(block)}")
def test_readme_python_block_runs(block: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    result = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_every_schedule_kind_shows_its_plot() -> None:
    text = (ROOT / "docs" / "schedules.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    for kind in {entry.key for entry in SCHEDULES.values()}:
        image = f"img/schedule_{kind}.png"
        assert f"]({image})" in sections[kind], f"docs/schedules.md: {kind} does not embed {image}"
        height, width = imread(ROOT / "docs" / image).shape[:2]
        assert (width, height) == (800, 300), image


@pytest.mark.parametrize(
    "path",
    sorted(path for path in (ROOT / "docs").glob("*.md") if ">>> " in path.read_text(encoding="utf-8")),
    ids=lambda path: path.name,
)
def test_the_examples_of_the_docs_print_what_they_show(path: Path) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(path), module_relative=False, optionflags=flags, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{path.name}: {result.failed} of {result.attempted} examples differ"
