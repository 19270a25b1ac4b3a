"""The recipes of docs/integrations.md run as written, and end with the LRs their schedules give."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def recipe(framework: str) -> str:
    """The python block of the doc that imports ``framework``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    (block,) = [block for block in blocks if re.search(rf"^import {framework}$", block, flags=re.MULTILINE)]
    return block


def run(framework: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, Any] = {"__name__": f"docs_integrations_{framework}"}
    exec(compile(recipe(framework), f"{DOC}:{framework}", "exec"), namespace)
    return namespace


def test_the_doc_has_one_recipe_per_framework() -> None:
    for framework in ("lightning", "transformers", "torchrec"):
        assert recipe(framework)


def test_lightning_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    namespace = run("lightning", monkeypatch, tmp_path)
    trainer = namespace["trainer"]
    assert trainer.global_step == 8
    # Step 8 of a 4-step ramp to 0.01, then a half cosine to 0.001 at step 20.
    expected = 0.001 + (0.01 - 0.001) * 0.5 * (1 + math.cos(math.pi * (8 - 4) / (20 - 4)))
    assert trainer.lr_scheduler_configs[0].scheduler.get_last_lr() == [pytest.approx(expected, rel=1e-12)]


def test_transformers_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    namespace = run("transformers", monkeypatch, tmp_path)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == 6
    # Step 6 is final_num_steps: every group (with and without weight decay) is at the final LR.
    assert [group["name"] for group in trainer.optimizer.param_groups] == [
        "default",
        "default.no_weight_decay",
    ]
    assert trainer.lr_scheduler.get_last_lr() == [pytest.approx(1e-4, rel=1e-12)] * 2


def test_torchrec_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    namespace = run("torchrec", monkeypatch, tmp_path)
    # Step 3: the constant 0.1, and 3/100 of the way up the ramp to 1e-3.
    assert [group["lr"] for group in namespace["optimizer"].param_groups] == [
        0.1,
        pytest.approx(3e-5, rel=1e-12),
    ]
