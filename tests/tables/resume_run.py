"""A bit-identical resume of a sharded table model: run in-process (one rank) by test_checkpoint.py
and, as a script, under torchrun by it on two gloo ranks (each rank checks its own shards).

Both table groups reduce their LR on plateaus of the metrics reported after every step: 'ids' (fused
kernels) at every report after the first, 'small' (data_parallel: 'small.dense') in the middle of its
patience window when the checkpoint is saved, so the resumed run reduces it at the same report as
the straight one only if its tracker was restored."""

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
            "reduce_on_plateau": {"metric": "ctr_loss", "factor": 0.5, "patience": 0},
        },
        {
            "name": "small",
            "tables": ["small"],
            "exact_sgd": {"lr": 0.05},
            "reduce_on_plateau": {"metric": "loss", "factor": 0.5, "patience": 3},
        },
    ],
}
STEPS = 6
SAVE_AT = 3
METRICS = {"ctr_loss": 1.0, "loss": 1.0}
"""Reported after every step: no report after the first improves."""
SAVED_PLATEAUS = {
    # reports at positions 1, 2, 3: the first sets the best value, each later one reduces (patience 0)
    "ids": {"best": 1.0, "bad_reports": 0, "cooldown_left": 0, "reductions": [2, 3]},
    # two bad reports of the four tolerated: the reduction comes at the report of position 5
    "small.dense": {"best": 1.0, "bad_reports": 2, "cooldown_left": 0, "reductions": []},
}


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
        scheduler.report(METRICS)


def plateaus(scheduler: Any) -> list[tuple[str, dict[str, Any]]]:
    return sorted(scheduler.plateau_state().items())


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
    straight_plateaus = dict(plateaus(scheduler))

    model, optimizer, scheduler = build()
    train(model, optimizer, scheduler, range(SAVE_AT))
    saved = {name: {key: entry[key] for key in SAVED_PLATEAUS[name]} for name, entry in plateaus(scheduler)}
    assert saved == SAVED_PLATEAUS
    save_table_checkpoint(directory, model, optimizer, scheduler)
    model, optimizer, scheduler = build()
    load_table_checkpoint(directory, model, optimizer, scheduler)
    assert scheduler.last_epoch == SAVE_AT
    train(model, optimizer, scheduler, range(SAVE_AT, STEPS))
    resumed = local_state(model, optimizer)
    assert dict(plateaus(scheduler)) == straight_plateaus
    assert straight_plateaus["small.dense"]["reductions"] == [5]
    assert sorted(resumed) == sorted(straight)
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    return len(straight)


if __name__ == "__main__":
    with gloo_world():
        count = check_resume(Path(sys.argv[1]))
        import torch.distributed as dist

        Path(sys.argv[1], f"ok-{dist.get_rank()}").write_text(str(count))
