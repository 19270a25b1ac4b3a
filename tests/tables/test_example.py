"""examples/embedding_tables.yaml loads, and trains a sharded table model under its schedules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from tests.tables.table_models import TableModel, gloo_world, random_batch, shard

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer, compute_lr

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedding_tables.yaml"
TABLES = {"user_id": 2000, "item_id": 3000, "country": 10}


def test_the_example_trains_a_sharded_table_model() -> None:
    config = load_config_from_yaml(OptimizerConfig, EXAMPLE, key="optimizer")
    ids, small = config.embedding_tables
    with gloo_world():
        torch.manual_seed(0)
        model = TableModel(tables=TABLES)
        groups = apply_table_rules(model, config)
        assert [(group.name, group.table_names) for group in groups] == [
            ("ids", ["user_id", "item_id"]),
            ("small", ["country"]),
        ]
        sharded = shard(model)  # the default planner: the 10-row table is data-parallel
        optimizer, scheduler = build_optimizer(sharded, config)
        assert [group["name"] for group in optimizer.param_groups] == ["default", "small.dense", "ids"]
        schedules = [config.schedule(), small.schedule(), ids.schedule()]
        generator = torch.Generator().manual_seed(0)
        for step in range(5):
            assert [group["lr"] for group in optimizer.param_groups] == pytest.approx(
                [compute_lr(schedule, step) for schedule in schedules], rel=1e-12
            )
            optimizer.zero_grad()
            loss = sharded(random_batch(generator, tables=TABLES)).pow(2).mean()
            loss.backward()
            optimizer.step()
            scheduler.step()
            assert torch.isfinite(loss)


def test_validate_and_show_list_the_table_groups(capsys: pytest.CaptureFixture[str]) -> None:
    from tml.optimizers.cli.main import main

    assert main(["validate", str(EXAMPLE)]) == 0
    summary = capsys.readouterr().out
    assert "then the table rules" in summary
    assert re.search(
        r"ids\s+│\s+tables: user_\*, item_\*\s+│\s+exact_row_wise_adagrad\s+│"
        r".*│\s+linear_ramp_to_constant\s+│\s+0\.05\b",
        summary,
    ), summary
    assert re.search(r"small\s+│\s+tables: \*\s+│\s+exact_sgd\s+│.*│\s+constant\s+│\s+0\.01\b", summary), (
        summary
    )
    assert main(["show", str(EXAMPLE), "--at", "50"]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"step\s+┃\s+default\s+┃\s+ids\s+┃\s+small", shown), shown
    # step 50: the dense ramp is half-way to 1e-3, the ids ramp half-way to 0.05; small is constant
    assert re.search(r"│\s+50\s+│\s+0\.0005\s+│\s+0\.025\s+│\s+0\.01\s+│", shown), shown
