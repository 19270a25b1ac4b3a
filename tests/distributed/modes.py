"""Worker (under torchrun): build_optimizer under DDP, FSDP2 (also fused Adam) and ZeRO-1 (two ways).

Writes ``results.json`` (every rank's learning rates at every step, as gathered) and each
variant's final full model state (``<variant>.pt``) into the output directory, from rank 0.
Usage: torchrun --nproc_per_node 2 modes.py CONFIG_YAML OUT_DIR STEPS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import EXAMPLE, load_module

from tml.core.config import load_config_from_yaml
from tml.optimizers import LRShim, OptimizerConfig, build_optimizer, compute_lr
from tml.optimizers.distributed import (
    LearningRateMismatchError,
    build_zero_optimizer,
    check_learning_rates_equal,
    gather_learning_rates,
)

example = load_module(EXAMPLE, "distributed_train")


def train(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRShim, steps: int
) -> tuple[list[list[list[float]]], dict[str, torch.Tensor]]:
    rank, world_size = dist.get_rank(), dist.get_world_size()
    learning_rates = [gather_learning_rates(optimizer)]
    for step in range(steps):
        inputs, targets = example.make_batch(step, rank, world_size)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()
        check_learning_rates_equal(optimizer)
        learning_rates.append(gather_learning_rates(optimizer))
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return learning_rates, state


def main() -> None:
    config_path, out_dir, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    config = load_config_from_yaml(OptimizerConfig, config_path)
    results: dict[str, Any] = {}

    def record(
        name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRShim
    ) -> None:
        learning_rates, state = train(model, optimizer, scheduler, steps)
        results[name] = {"learning_rates": learning_rates}
        if rank == 0:
            torch.save(state, out_dir / f"{name}.pt")

    model = DistributedDataParallel(example.make_model())
    record("ddp", model, *build_optimizer(model, config))

    model = example.wrap(example.make_model(), "fsdp")
    results["fsdp_parameter_types"] = sorted({type(parameter).__name__ for parameter in model.parameters()})
    record("fsdp", model, *build_optimizer(model, config))

    model = example.wrap(example.make_model(), "fsdp")
    adam = config.algorithm()
    schedule = config.schedule()
    fused = torch.optim.Adam(
        [{"params": list(model.parameters()), "name": "default"}],
        lr=compute_lr(schedule, 0),
        betas=adam.optimizer_kwargs()["betas"],
        eps=adam.optimizer_kwargs()["eps"],
        fused=True,
    )
    record("fsdp_fused", model, fused, LRShim(fused, {"default": schedule}))
    local_shapes = [
        parameter.to_local().numel() for parameter in model.parameters() if isinstance(parameter, DTensor)
    ]
    results["fsdp_local_numel"] = gather(sum(local_shapes))

    model = DistributedDataParallel(example.make_model())
    zero, zero_scheduler = build_zero_optimizer(model, config)
    record("zero", model, zero, zero_scheduler)
    results["zero_optimizer_class"] = type(zero.optim).__name__
    results["zero_local_state_numel"] = gather(
        sum(
            value.numel()
            for state in zero.optim.state.values()
            for key, value in state.items()
            if key == "exp_avg"
        )
    )

    # The config option: build_optimizer itself returns a ZeroRedundancyOptimizer.
    model = DistributedDataParallel(example.make_model())
    sharded_config = config.model_copy(update={"shard_optimizer_state": True})
    optimizer, scheduler = build_optimizer(model, sharded_config)
    results["zero_config_optimizer_types"] = [type(optimizer).__name__, type(optimizer.optim).__name__]
    record("zero_config", model, optimizer, scheduler)
    results["zero_config_local_state"] = gather(state_sizes(optimizer))

    # A rank with another learning rate is caught, on every rank.
    optimizer = zero
    if rank == 1:
        optimizer.param_groups[0]["lr"] = 0.5
    try:
        check_learning_rates_equal(optimizer)
        results["mismatch_error"] = None
    except LearningRateMismatchError as error:
        results["mismatch_error"] = str(error)
    results["mismatch_errors_on_ranks"] = gather(results["mismatch_error"] is not None)

    if rank == 0:
        (out_dir / "results.json").write_text(json.dumps(results))
    dist.barrier()
    dist.destroy_process_group()


def state_sizes(optimizer: Any) -> dict[str, int]:
    """The entries of each optimizer state tensor this rank holds (ZeRO's local optimizer)."""
    sizes: dict[str, int] = {}
    for state in optimizer.optim.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                sizes[key] = sizes.get(key, 0) + value.numel()
    return sizes


def gather(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


if __name__ == "__main__":
    main()
