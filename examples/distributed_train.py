"""Distributed training with tml-optimizers: DDP, FSDP2 or ZeRO-1, with resumable DCP checkpoints.

Run under torchrun (gloo on CPU, NCCL on GPUs), see docs/distributed.md::

    torchrun --standalone --nproc_per_node 2 examples/distributed_train.py \
        --config examples/single_task.yaml --steps 8 --checkpoint-dir runs/dist --checkpoint-every 4

The data is synthetic and fixed by the step: every step draws one global batch, and each rank
trains on its slice of it, so runs at different world sizes see the same data.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, build_optimizer
from tml.optimizers.distributed import (
    check_learning_rates_equal,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

HERE = Path(__file__).parent
FEATURES = 8
GLOBAL_BATCH = 32


def make_model() -> torch.nn.Sequential:
    """A small MLP, initialized from a fixed seed (the same on every rank)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    )  # fmt: skip


def make_batch(step: int, rank: int, world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's slice of the global batch of ``step`` (a fixed function of the step)."""
    generator = torch.Generator().manual_seed(1000 + step)
    inputs = torch.randn(GLOBAL_BATCH, FEATURES, generator=generator)
    targets = torch.sin(inputs.sum(dim=1, keepdim=True))
    rows = GLOBAL_BATCH // world_size
    return inputs[rank * rows : (rank + 1) * rows], targets[rank * rows : (rank + 1) * rows]


def wrap(model: torch.nn.Sequential, shard: str) -> torch.nn.Module:
    """DDP (replicated parameters) or FSDP2 (each Linear's parameters sharded as DTensors)."""
    if shard == "fsdp":
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer)
        fully_shard(model)
        return model
    return DistributedDataParallel(model)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", type=Path, default=HERE / "single_task.yaml", help="optimizer YAML")
    parser.add_argument("--steps", type=int, default=100, help="train until this step")
    parser.add_argument(
        "--shard",
        choices=["ddp", "fsdp", "zero"],
        default="ddp",
        help="ddp: replicate everything; fsdp: shard parameters, gradients and optimizer state "
        "(FSDP2); zero: DDP with the optimizer state sharded (ZeRO-1, no checkpoints yet)",
    )
    parser.add_argument("--checkpoint-dir", type=Path, help="where checkpoints go (shared by all ranks)")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="steps between checkpoints")
    parser.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--final-state", type=Path, help="write the final model state here (rank 0)")
    parser.add_argument("--log-every", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, on_step: Callable[[int], None] | None = None) -> None:
    """Train; ``on_step(step)`` is called after every step (with the number of steps done)."""
    args = parse_args(argv)
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    config = load_config_from_yaml(OptimizerConfig, args.config, key="optimizer")
    model = wrap(make_model(), "fsdp" if args.shard == "fsdp" else "ddp")
    if args.shard == "zero":  # the config option; build_zero_optimizer(model, config) does the same
        config = config.model_copy(update={"shard_optimizer_state": True})
    optimizer, scheduler = build_optimizer(model, config)

    start = 0
    if args.resume and args.checkpoint_dir is not None:
        path = latest_checkpoint(args.checkpoint_dir)
        if path is not None:
            info = load_checkpoint(path, model, optimizer, scheduler, config=config)
            start = info.step
            if rank == 0:
                print(f"resumed from {path} (step {info.step}, saved by {info.world_size} ranks)")

    for step in range(start, args.steps):
        inputs, targets = make_batch(step, rank, world_size)
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        done = step + 1
        learning_rates = check_learning_rates_equal(optimizer)  # the same on every rank, or an error
        if on_step is not None:
            on_step(done)
        if args.checkpoint_dir is not None and done % args.checkpoint_every == 0:
            save_checkpoint(
                args.checkpoint_dir, done, model, optimizer, scheduler, config=config, keep=args.keep
            )
        if rank == 0 and (done % args.log_every == 0 or done == args.steps):
            print(f"step {done:5d}  loss {loss.item():.6f}  lr {learning_rates[0]:.6g}  ranks {world_size}")

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    final_state = get_model_state_dict(model, options=options)  # collective under FSDP2
    if args.final_state is not None and rank == 0:
        torch.save(final_state, args.final_state)
    if rank == 0 and args.checkpoint_dir is not None:
        print(f"checkpoints in {args.checkpoint_dir}: latest {latest_checkpoint(args.checkpoint_dir)}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
