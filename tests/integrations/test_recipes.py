"""The recipes of docs/integrations.md run as written, and end with the LRs their schedules give."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def recipe(framework: str) -> str:
    """The python block of the doc that imports ``framework`` (``import x`` or ``from x import ...``)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    imports = rf"^(import {re.escape(framework)}|from {re.escape(framework)} import .*)$"
    (block,) = [block for block in blocks if re.search(imports, block, flags=re.MULTILINE)]
    return block


def run(framework: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, Any] = {"__name__": f"docs_integrations_{framework}"}
    exec(compile(recipe(framework), f"{DOC}:{framework}", "exec"), namespace)
    return namespace


def test_the_doc_has_one_recipe_per_framework() -> None:
    for framework in ("lightning", "transformers", "torchrec", "torch.utils.tensorboard"):
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


def test_tensorboard_recipe_logs_a_flat_mapping_of_group_names_to_floats(tmp_path: Path) -> None:
    # TensorBoard is not installed (not a dependency): the recipe runs up to its SummaryWriter, as
    # written, then the test steps as the recipe does and checks what it would hand to add_scalars.
    block = recipe("torch.utils.tensorboard")
    assert 'writer.add_scalars("lr", scheduler.lrs_by_group(), step)' in block
    statements = ast.parse(block).body
    first_writer = next(
        index for index, node in enumerate(statements) if "SummaryWriter(" in ast.unparse(node)
    )
    setup = [node for node in statements[:first_writer] if "tensorboard" not in ast.unparse(node)]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=setup, type_ignores=[]), f"{DOC}:tensorboard", "exec"), namespace)
    model, optimizer, scheduler = namespace["model"], namespace["optimizer"], namespace["scheduler"]
    # The recipe's rules: head = the last Linear, lr x 10; biases without weight decay.
    names = ["head", "head.no_weight_decay", "default", "default.no_weight_decay"]
    assert [group["name"] for group in optimizer.param_groups] == names
    for step in range(20):
        optimizer.zero_grad()
        model(torch.randn(4, 8)).pow(2).mean().backward()
        optimizer.step()
        logged = scheduler.lrs_by_group()
        # add_scalars' tag_scalar_dict: str tags, one plain float each (a flat mapping, JSON data).
        assert type(logged) is dict and list(logged) == names
        assert all(type(value) is float and math.isfinite(value) for value in logged.values())
        assert json.loads(json.dumps(logged)) == logged
        ramp = 1e-3 * min(step / 10, 1.0)  # linear_ramp_to_constant by its formula
        expected = [10 * ramp, 10 * ramp, ramp, ramp]
        assert list(logged.values()) == pytest.approx(expected, rel=1e-12, abs=0.0)
        assert list(logged.values()) == [float(group["lr"]) for group in optimizer.param_groups]
        scheduler.step()
