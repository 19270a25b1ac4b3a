"""Check that every rank trains with the same learning rates (gathered across the process group)."""

from __future__ import annotations

import torch
import torch.distributed as dist


class LearningRateMismatchError(RuntimeError):
    """The ranks of a process group hold different learning rates."""


def local_learning_rates(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every param group of ``optimizer``, as floats (tensor LRs read out)."""
    return [float(group["lr"]) for group in optimizer.param_groups]


def gather_learning_rates(
    optimizer: torch.optim.Optimizer, group: dist.ProcessGroup | None = None
) -> list[list[float]]:
    """Every rank's learning rates, indexed by rank; collective (call it on every rank).

    Without an initialized process group, the list of this process's learning rates alone.
    """
    mine = local_learning_rates(optimizer)
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    gathered: list[list[float] | None] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, mine, group=group)
    return [rates for rates in gathered if rates is not None]


def check_learning_rates_equal(
    optimizer: torch.optim.Optimizer, group: dist.ProcessGroup | None = None
) -> list[float]:
    """Gather every rank's learning rates and require them to be equal (exactly); collective.

    Returns:
      The learning rates, one per param group (the same on every rank).

    Raises:
      LearningRateMismatchError: on every rank, naming the ranks and groups that differ.
    """
    gathered = gather_learning_rates(optimizer, group)
    reference = gathered[0]
    names = [param_group.get("name", index) for index, param_group in enumerate(optimizer.param_groups)]
    problems = []
    for rank, rates in enumerate(gathered[1:], start=1):
        if len(rates) != len(reference):
            problems.append(f"rank {rank} has {len(rates)} param groups, rank 0 has {len(reference)}")
            continue
        problems += [
            f"group {name!r}: rank 0 has lr {first!r}, rank {rank} has {other!r}"
            for name, first, other in zip(names, reference, rates, strict=True)
            if first != other
        ]
    if problems:
        raise LearningRateMismatchError("the ranks' learning rates differ: " + "; ".join(problems))
    return reference


__all__ = [
    "LearningRateMismatchError",
    "check_learning_rates_equal",
    "gather_learning_rates",
    "local_learning_rates",
]
