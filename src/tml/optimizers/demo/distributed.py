"""``tml-optim train``'s place in a job: the process group, each rank's data shard, agreeing ranks.

Under torchrun (``WORLD_SIZE`` > 1) the demo model is wrapped in DDP on a gloo process group and
every rank trains on its slice of each global batch (the batch of the data position, as in one
process). Without torchrun the same code runs as rank 0 of 1, without a process group: the
collectives below then have nothing to exchange (torch's need a process group).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist

BACKEND = "gloo"
"""CPU training; the demo model is small."""


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place in the job: rank 0 of 1 without torchrun."""

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        """Several ranks: a process group, DDP, collectives."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints and writes the plots."""
        return self.rank == 0


def launched_ranks() -> Ranks:
    """The rank and world size torchrun gave this process (``RANK``, ``WORLD_SIZE``); 0 of 1 otherwise."""
    return Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def start_process_group(ranks: Ranks) -> bool:
    """Join the job's gloo process group when there are several ranks; True if this call started it."""
    if not ranks.distributed or dist.is_initialized():
        return False
    dist.init_process_group(BACKEND)
    return True


def rank_seed(seed: int, rank: int) -> int:
    """The seed of a rank's torch RNG (dropout) after the model is built: distinct per rank."""
    return seed * 1_000_003 + 7919 * (rank + 1)


def shard(tensors: tuple[torch.Tensor, ...], ranks: Ranks) -> tuple[torch.Tensor, ...]:
    """This rank's rows of a global batch (``tensor_split``: sizes differ by at most one row)."""
    return tuple(tensor.tensor_split(ranks.world_size)[ranks.rank] for tensor in tensors)


def agree(loss: float, signal_number: int | None, ranks: Ranks) -> tuple[float, int | None]:
    """The loss averaged over the ranks and a stop request seen by any rank; collective.

    A signal may reach the ranks at different steps (or only one): every rank stops after the same
    step, so that the checkpoint they write together is consistent.
    """
    if not ranks.distributed:
        return loss, signal_number
    mine = torch.tensor([loss, float(signal_number or 0)], dtype=torch.float64)
    gathered = [torch.empty_like(mine) for _ in range(ranks.world_size)]
    dist.all_gather(gathered, mine)
    mean = sum(float(values[0]) for values in gathered) / ranks.world_size
    signals = [int(values[1]) for values in gathered if values[1] != 0]
    return mean, (signals[0] if signals else None)


def gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank; collective."""
    if not ranks.distributed:
        return [value]
    values: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(values, value)
    return values


def barrier(ranks: Ranks) -> None:
    """Wait until every rank is here; collective."""
    if ranks.distributed:
        dist.barrier()


__all__ = [
    "BACKEND",
    "Ranks",
    "agree",
    "barrier",
    "gather",
    "launched_ranks",
    "rank_seed",
    "shard",
    "start_process_group",
]
