"""A bit-identical resume of a sharded table model: run in-process (one rank) by test_checkpoint.py
and, as a script, under torchrun by it on two gloo ranks (each rank checks its own shards)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.tables.table_models import TableModel, gloo_world, random_batch, shard

from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer
from tml.optimizers.tables.checkpoint import load_table_checkpoint, save_table_checkpoint

CONFIG = {
    "adam": {"lr": 0.01},
    "embedding_tables": [
        {
            "name": "ids",
            "tables": ["user", "item"],
            "exact_row_wise_adagrad": {},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 3}},
        },
        {"name": "small", "tables": ["small"], "exact_sgd": {"lr": 0.05}},
    ],
}
STEPS = 6
SAVE_AT = 3


def build(config: dict[str, Any] = CONFIG) -> tuple[Any, Any, Any]:
    cfg = OptimizerConfig.model_validate(config)
    torch.manual_seed(0)
    model = TableModel()
    apply_table_rules(model, cfg)
    sharded = shard(model)  # the default planner: 'small' data_parallel
    optimizer, scheduler = build_optimizer(sharded, cfg)
    return sharded, optimizer, scheduler


def train(model: Any, optimizer: Any, scheduler: Any, steps: range) -> None:
    for step in steps:
        generator = torch.Generator().manual_seed(step)
        optimizer.zero_grad()
        model(random_batch(generator)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()


def local_state(model: Any, optimizer: Any) -> dict[str, torch.Tensor]:
    """Every local tensor of the model and of the table groups' fused state, by name."""
    from tml.optimizers.tables.checkpoint import optimizer_tensors

    found = {}
    flat: dict[str, Any] = {f"model.{key}": value for key, value in model.state_dict().items()}
    for group, tables in optimizer_tensors(optimizer).items():
        for table, entries in tables.items():
            for key, value in entries.items():
                flat[f"optimizer.{group}.{table}.{key}"] = value
    for key, value in flat.items():
        if hasattr(value, "local_shards"):
            for index, piece in enumerate(value.local_shards()):
                found[f"{key}[{index}]"] = piece.tensor.detach().clone()
        elif isinstance(value, torch.Tensor):
            found[key] = value.detach().clone()
    return found


def check_resume(directory: Path) -> int:
    """Train straight, and with a checkpoint at SAVE_AT loaded into a fresh build; the number of
    tensors compared (all must be bit-identical)."""
    model, optimizer, scheduler = build()
    train(model, optimizer, scheduler, range(STEPS))
    straight = local_state(model, optimizer)

    model, optimizer, scheduler = build()
    train(model, optimizer, scheduler, range(SAVE_AT))
    save_table_checkpoint(directory, model, optimizer, scheduler)
    model, optimizer, scheduler = build()
    load_table_checkpoint(directory, model, optimizer, scheduler)
    assert scheduler.last_epoch == SAVE_AT
    train(model, optimizer, scheduler, range(SAVE_AT, STEPS))
    resumed = local_state(model, optimizer)
    assert sorted(resumed) == sorted(straight)
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    return len(straight)


if __name__ == "__main__":
    with gloo_world():
        count = check_resume(Path(sys.argv[1]))
        import torch.distributed as dist

        Path(sys.argv[1], f"ok-{dist.get_rank()}").write_text(str(count))
