"""The docs are true: every Python snippet and every ``tml-optim`` command of README.md and docs/*.md runs.

Each fenced block of a doc is one of:

- a ``python`` block: run as a program in a fresh interpreter (in a folder holding ``examples/``);
  a block of ``>>>`` examples is run by doctest instead and must print what it shows;
- a ``sh`` or ``console`` block of ``tml-optim`` commands: each run in process, exit status 0;
- marked ``<!-- run by: tests/....py -->`` on the line before it: a test that reads the doc runs the
  block as written and checks what it gives (the torchrun commands, the framework recipes);
- marked ``<!-- not run: REASON -->``: it cannot run here, for one of the reasons of
  :data:`NOT_RUN`, each checked against the block (it installs packages, it needs a package that is
  not installed, ...). The list is short: :data:`MAX_NOT_RUN`.

Other blocks (``yaml``, ``text``, no language) are data or output; the YAML ones are checked in
tests/cli/test_docs_commands.py.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.image import imread

from tml.optimizers.schedules import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = ("python", "sh", "console")
FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
MARKER = re.compile(r"^\s*<!-- (?P<kind>not run|run by): (?P<reason>.+?) -->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced block of a doc, with the marker on the line before it, if any."""

    doc: Path
    line: int
    language: str
    body: str
    marker: str | None
    """``not run`` or ``run by``."""
    reason: str

    @property
    def name(self) -> str:
        return f"{self.doc.name}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = next((lines[index] for index in range(line - 2, -1, -1) if lines[index].strip()), "")
        marker = MARKER.match(before)
        body = "\n".join(
            row[len(match["indent"]) :] if row.startswith(match["indent"]) else row
            for row in match["body"].splitlines()
        )
        found.append(
            Block(
                doc,
                line,
                match["language"],
                body + "\n",
                marker["kind"] if marker else None,
                marker["reason"] if marker else "",
            )
        )
    return found


ALL = [block for doc in DOCS for block in blocks(doc)]
PROGRAMS = [
    block for block in ALL if block.language == "python" and block.marker is None and ">>> " not in block.body
]
COMMANDS = [block for block in ALL if block.language in ("sh", "console") and block.marker is None]


def _runs_elsewhere_in_the_doc(block: Block) -> bool:
    """Every line of a fragment is in a block of the same doc that runs."""
    runs = [other.body for other in ALL if other.doc == block.doc and other in PROGRAMS]
    return all(any(line in body for body in runs) for line in block.body.splitlines() if line.strip())


def _needs_a_missing_package(block: Block) -> bool:
    """``needs PACKAGE``: the block imports it (or a module that wraps it, such as
    ``torch.utils.tensorboard``), and it cannot be imported here."""
    match = re.match(r"needs (\w+)", block.reason)
    if match is None:
        return False
    package = match[1]
    # import timm, from timm.scheduler import ..., from torch.utils.tensorboard import ...
    imported = re.search(rf"^\s*(from|import) ([\w.]+\.)?{package}\b", block.body, flags=re.M)
    return imported is not None and importlib.util.find_spec(package) is None


NOT_RUN: dict[str, Callable[[Block], bool]] = {
    "installs packages": lambda block: (
        "pip install" in block.body or re.search(r"^make \w", block.body, flags=re.M) is not None
    ),
    "rewrites the generated docs": lambda block: "tml.optimizers.cli.docgen" in block.body,
    "needs": _needs_a_missing_package,
    "a fragment of the program below": _runs_elsewhere_in_the_doc,
}
"""Why a block may be left out, each reason with the check that it holds for the block."""
MAX_NOT_RUN = 8
"""At most this many blocks of all the docs are not run: everything else that can run, runs."""


def test_every_block_that_is_not_run_says_why_and_the_reason_holds() -> None:
    marked = [block for block in ALL if block.marker == "not run"]
    assert 0 < len(marked) <= MAX_NOT_RUN, [block.name for block in marked]
    for block in marked:
        assert block.language in RUN_LANGUAGES, f"{block.name}: only runnable blocks are marked"
        reason = next((key for key in NOT_RUN if block.reason.startswith(key)), None)
        assert reason is not None, f"{block.name}: 'not run: {block.reason}' is none of {list(NOT_RUN)}"
        assert NOT_RUN[reason](block), f"{block.name}: 'not run: {block.reason}' does not hold for the block"


def test_every_block_run_elsewhere_names_the_test_that_reads_the_doc() -> None:
    elsewhere = [block for block in ALL if block.marker == "run by"]
    assert elsewhere
    for block in elsewhere:
        test = ROOT / block.reason
        assert block.reason.startswith("tests/") and test.is_file(), f"{block.name}: no test {block.reason}"
        assert block.doc.name in test.read_text(encoding="utf-8"), (
            f"{block.reason} does not read {block.doc.name}"
        )


def test_the_docs_have_programs_and_commands() -> None:
    assert {block.doc.name for block in PROGRAMS} >= {"README.md", "schedules.md", "migrating.md"}
    assert {block.doc.name for block in COMMANDS} >= {"README.md", "cli.md"}


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: block.name)
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    result = subprocess.run(
        [sys.executable, "-c", block.body], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{block.name}:\n{result.stderr}"


def command_lines(block: Block) -> list[list[str]]:
    """The commands of a ``sh`` block (``console``: the lines after a ``$`` prompt), comments stripped."""
    commands = []
    for line in block.body.splitlines():
        if block.language == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


@pytest.mark.parametrize("block", COMMANDS, ids=lambda block: block.name)
def test_documented_commands_run(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In process (one torch import for all): tests/cli/test_commands.py covers the console script.
    from tml.optimizers.cli.main import main

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    commands = command_lines(block)
    assert commands, f"{block.name}: no command"
    for words in commands:
        assert words[0] == "tml-optim", f"{block.name}: {shlex.join(words)} is not tml-optim: mark the block"
        assert main(words[1:]) == 0, f"{block.name}: {shlex.join(words)}"


def test_every_schedule_kind_shows_its_plot() -> None:
    text = (ROOT / "docs" / "schedules.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    for kind in {entry.key for entry in SCHEDULES.values()}:
        image = f"img/schedule_{kind}.png"
        assert f"]({image})" in sections[kind], f"docs/schedules.md: {kind} does not embed {image}"
        height, width = imread(ROOT / "docs" / image).shape[:2]
        assert (width, height) == (800, 300), image


def test_every_image_the_docs_embed_exists() -> None:
    for doc in DOCS:
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+\.(?:png|svg))\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / image).is_file(), f"{doc.name}: {image}"


@pytest.mark.parametrize(
    "path",
    [path for path in DOCS if ">>> " in path.read_text(encoding="utf-8")],
    ids=lambda path: path.name,
)
def test_the_examples_of_the_docs_print_what_they_show(path: Path) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(path), module_relative=False, optionflags=flags, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{path.name}: {result.failed} of {result.attempted} examples differ"
