"""The docs' YAML blocks are valid configs, and docs/migrating.md's torch and HF rows give the peers' values.

The docs' Python blocks and ``tml-optim`` commands are run by tests/test_docs.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tml.optimizers import compute_lr
from tml.optimizers.config import LearningRate, LinearRampToConstant, LinearRampToCosine, OptimizerConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "cli.md", ROOT / "docs" / "migrating.md"]


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def as_optimizer_config(document: dict[str, Any]) -> OptimizerConfig:
    """A documented YAML block as an optimizer config: whole, under ``optimizer:``, or a schedule fragment."""
    if "optimizer" in document:
        document = document["optimizer"]
    if set(document) == {"learning_rate"}:
        document = {"sgd": {}, **document}
    return OptimizerConfig.model_validate(document)


def test_every_yaml_block_of_the_docs_is_a_valid_config() -> None:
    blocks = [block for path in DOCS for block in code_blocks(path, "yaml")]
    assert len(blocks) >= 6
    for block in blocks:
        as_optimizer_config(yaml.safe_load(block))


def test_migrating_torch_warmup_then_cosine_matches_torch() -> None:
    # SequentialLR([LinearLR(start_factor≈0, total_iters=W), CosineAnnealingLR(T_max=T - W)]) as
    # linear_ramp_to_cosine(num_ramp_steps=W, final_num_steps=T), stepped the normal way.
    peak, final, warmup, total = 1e-3, 1e-5, 10, 100
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=peak)
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-8, total_iters=warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=final),
        ],
        milestones=[warmup],
    )
    ours = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=peak, final_learning_rate=final, num_ramp_steps=warmup, final_num_steps=total
        )
    )
    for step in range(total + 1):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(compute_lr(ours, step), rel=1e-9, abs=1e-10)
        optimizer.step()
        scheduler.step()


def test_migrating_hf_schedules_match_their_formulas() -> None:
    # transformers' lambdas, written out: constant_with_warmup and cosine (num_cycles=0.5).
    peak, warmup, total = 3e-4, 50, 2000

    def hf_constant_with_warmup(step: int) -> float:
        return peak * (step / max(1, warmup) if step < warmup else 1.0)

    def hf_cosine(step: int) -> float:
        if step < warmup:
            return peak * step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return peak * max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

    constant = LearningRate(
        linear_ramp_to_constant=LinearRampToConstant(learning_rate=peak, num_ramp_steps=warmup)
    )
    cosine = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=peak, final_learning_rate=0.0, num_ramp_steps=warmup, final_num_steps=total
        )
    )
    for step in [*range(0, 2 * warmup), *range(warmup, total + 1, 97), total]:
        assert compute_lr(constant, step) == pytest.approx(
            hf_constant_with_warmup(step), rel=1e-12, abs=1e-18
        )
        assert compute_lr(cosine, step) == pytest.approx(hf_cosine(step), rel=1e-9, abs=1e-15)
