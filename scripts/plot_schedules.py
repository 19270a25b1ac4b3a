"""Draw one PNG per schedule kind of docs/schedules.md with `tml-optim plot`, and embed it there.

Each kind's section holds a YAML example (`learning_rate: ...`). This script wraps the first one in
an optimizer config, runs `tml-optim plot` on it (the command users run) and writes
docs/img/schedule_<kind>.png; the section then shows the image under its example. Run it after
changing an example: ``.venv/bin/python scripts/plot_schedules.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "schedules.md"
IMAGES = ROOT / "docs" / "img"
SIZE = "800x300"
SECTION = re.compile(r"^## `(?P<kind>\w+)`\n(?P<body>.*?)(?=^## |\Z)", re.S | re.M)
YAML_BLOCK = re.compile(r"```yaml\n(?P<text>.*?)```\n", re.S)


def image_line(kind: str) -> str:
    return f"![{kind}: the learning rate per step](img/schedule_{kind}.png)\n"


def plot(kind: str, example: str, workdir: Path) -> Path:
    config = {"sgd": {}, **yaml.safe_load(example)}
    source = workdir / f"{kind}.yaml"
    source.write_text(yaml.safe_dump(config))
    output = IMAGES / f"schedule_{kind}.png"
    program = shutil.which("tml-optim") or "tml-optim"
    command = [program, "plot", str(source), "-o", str(output), "--size", SIZE]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return output


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text()
    with tempfile.TemporaryDirectory() as workdir:
        for match in SECTION.finditer(text):
            kind, body = match["kind"], match["body"]
            block = YAML_BLOCK.search(body)
            if block is None:
                print(f"{kind}: no YAML example", file=sys.stderr)
                return 1
            print(f"wrote {plot(kind, block['text'], Path(workdir)).relative_to(ROOT)}")
            if image_line(kind) not in body:
                text = text.replace(block.group(0), block.group(0) + "\n" + image_line(kind), 1)
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
