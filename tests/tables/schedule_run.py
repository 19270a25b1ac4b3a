"""Each table group follows its own schedule at every step, measured from the rows' updates: run
in-process (one rank) by test_build.py and, as a script, under torchrun on two gloo ranks (each rank
checks the tables it holds)."""

from __future__ import annotations

import bisect
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.tables.table_models import (
    BAGS,
    ROWS,
    TableModel,
    all_fused,
    fixed_batch,
    gloo_world,
    head_slice,
    local_rows,
    shard,
)

from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer

STEPS = 6


def piecewise(boundaries: list[int], values: list[float]) -> dict[str, Any]:
    return {"piecewise_constant": {"learning_rate_boundaries": boundaries, "learning_rate_values": values}}


def piecewise_lr(boundaries: list[int], values: list[float], step: int) -> float:
    return values[bisect.bisect_right(boundaries, step)]


# Two groups with the same algorithm and the same LR at step 0, apart from step 2 on: they must not
# share a kernel (a kernel reads one LR).
IDS = ([2], [0.1, 0.01])
ITEMS = ([4], [0.1, 0.05])
REST_LR = 0.2
CONFIG = {
    "adam": {"lr": 0.001},
    "embedding_tables": [
        {"name": "ids", "tables": ["user"], "exact_sgd": {}, "learning_rate": piecewise(*IDS)},
        {"name": "items", "tables": ["item"], "exact_sgd": {}, "learning_rate": piecewise(*ITEMS)},
        {"name": "rest", "tables": ["*"], "exact_row_wise_adagrad": {"lr": REST_LR, "eps": 1.0e-8}},
    ],
}


SCHEDULES = {"user": IDS, "item": ITEMS}


def check_schedules() -> list[str]:
    """Train STEPS steps on :func:`fixed_batch`; at every step, check the update of every local table's
    looked-up row against its group's LR (exact_sgd: ``lr * grad``; row-wise Adagrad by its formula).

    Returns:
      The tables checked on this rank.
    """
    cfg = OptimizerConfig.model_validate(CONFIG)
    torch.manual_seed(0)
    model = TableModel()
    apply_table_rules(model, cfg)
    model = shard(model, all_fused())
    optimizer, scheduler = build_optimizer(model, cfg)
    assert [group["name"] for group in optimizer.param_groups] == ["default", "ids", "items", "rest"]
    local = [name for name in ROWS if local_rows(model, name) is not None]
    # Every rank's batch looks the rows up; torchrec averages a table's gradient over the ranks, as DDP
    # does a dense one: with the same batch on every rank, a row's gradient is one rank's.
    bags = BAGS
    accumulator = torch.zeros(())
    for step in range(STEPS):
        before = {name: local_rows(model, name)[ROWS[name]] for name in local}
        head = model.module.head.weight.detach().clone()[0]
        optimizer.zero_grad()
        model(fixed_batch()).sum().backward()
        optimizer.step()
        # BAGS bags per rank, sum pooling, loss = sum of the outputs.
        grads = {name: bags * head[head_slice(name)] for name in local}
        after = {name: local_rows(model, name)[ROWS[name]] for name in local}
        for name in local:
            if name in SCHEDULES:
                # float32 rows: the difference of two rows is exact to about 1e-5 of the update
                applied = (before[name] - after[name]) / grads[name]
                expected = piecewise_lr(*SCHEDULES[name], step)
                assert applied.tolist() == pytest.approx([expected] * 4, rel=1e-4), (step, name)
            else:  # row-wise Adagrad, by its formula: s += mean(g^2); w -= lr * g / (sqrt(s) + eps)
                accumulator = accumulator + grads[name].pow(2).mean()
                expected_row = before[name] - REST_LR * grads[name] / (accumulator.sqrt() + 1.0e-8)
                torch.testing.assert_close(after[name], expected_row, rtol=1e-5, atol=1e-7)
        assert scheduler.lrs_by_group()["ids"] == piecewise_lr(*IDS, step)
        scheduler.step()
    if "small" in local:
        (momentum,) = optimizer.state_dict()["groups"]["rest"]["state"][0].values()
        assert momentum.local_shards()[0].tensor[ROWS["small"]].item() == pytest.approx(
            accumulator.item(), rel=1e-6
        )
    return local


if __name__ == "__main__":
    with gloo_world():
        checked = check_schedules()
        Path(sys.argv[1], f"rank-{dist.get_rank()}.json").write_text(json.dumps(checked))
