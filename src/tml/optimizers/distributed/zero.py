"""Optimizer-state sharding (ZeRO stage 1) for DDP runs, built from an ``OptimizerConfig``."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.optim import ZeroRedundancyOptimizer

from tml.optimizers.optimizer import build_optimizer
from tml.optimizers.runtime.lr_shim import LRShim

_CHILD_ATTRIBUTES = ("_optims", "optimizers")
"""Where a container optimizer (one torch optimizer per algorithm) keeps its children."""


def build_zero_optimizer(
    model: torch.nn.Module, optimizer_config: Any, **zero_options: Any
) -> tuple[ZeroRedundancyOptimizer, LRShim]:
    """Build ``build_optimizer``'s param groups as a ``ZeroRedundancyOptimizer`` with its ``LRShim``.

    Each rank keeps the optimizer state of its share of the parameters only (ZeRO-1) and
    broadcasts its updated parameters after every step; the result equals the unsharded
    optimizer's. The param groups (names, hyperparameters, schedules) are those of
    ``build_optimizer(model, optimizer_config)``. Use it with a DDP-wrapped model in an
    initialized process group; call ``optimizer.step()`` then ``scheduler.step()`` as usual.

    Args:
      model: the (usually DDP-wrapped) model.
      optimizer_config: an ``OptimizerConfig`` whose groups all use one algorithm.
      zero_options: passed to ``ZeroRedundancyOptimizer`` (e.g. ``parameters_as_bucket_view``).

    Returns:
      ``(optimizer, scheduler)``: the ``ZeroRedundancyOptimizer`` and an ``LRShim`` over its groups.

    Raises:
      RuntimeError: no torch.distributed process group is initialized.
      ValueError: the groups use more than one algorithm (ZeRO wraps a single optimizer class).
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "optimizer-state sharding (shard_optimizer_state, ZeRO-1) needs an initialized "
            "torch.distributed process group, and none is: launch with torchrun and call "
            "torch.distributed.init_process_group() before building the optimizer, or set "
            "shard_optimizer_state: false for a single-process run"
        )
    if getattr(optimizer_config, "shard_optimizer_state", False):
        # The unsharded optimizer gives the param groups; build_optimizer would come back here.
        optimizer_config = optimizer_config.model_copy(update={"shard_optimizer_state": False})
    reference, reference_scheduler = build_optimizer(model, optimizer_config)
    optimizer_class = single_optimizer_class(reference)
    param_groups = [
        {key: value for key, value in group.items() if key != "initial_lr"}
        for group in reference.param_groups
    ]
    defaults = {key: value for key, value in reference.defaults.items() if key != "initial_lr"}
    optimizer = ZeroRedundancyOptimizer(
        param_groups, optimizer_class=optimizer_class, **zero_options, **defaults
    )
    scheduler = LRShim(
        optimizer,
        reference_scheduler.lr_dict,
        lr_multipliers=reference_scheduler.lr_multipliers,
        schedule_position=reference_scheduler.schedule_position,
    )
    return optimizer, scheduler


def single_optimizer_class(optimizer: torch.optim.Optimizer) -> type[torch.optim.Optimizer]:
    """The one torch optimizer class behind ``optimizer``.

    Raises:
      ValueError: ``optimizer`` combines optimizers of several classes, naming each group's.
    """
    for attribute in _CHILD_ATTRIBUTES:
        children = getattr(optimizer, attribute, None)
        if children is None:
            continue
        optimizers = [child[1] if isinstance(child, tuple) else child for child in children]
        classes = {type(child) for child in optimizers}
        if len(classes) == 1:
            return classes.pop()
        per_group = [
            f"{group.get('name', index)!r}: {type(child).__name__}"
            for child in optimizers
            for index, group in enumerate(child.param_groups)
        ]
        raise ValueError(
            "ZeRO-1 (ZeroRedundancyOptimizer) shards one optimizer class, but these param groups use "
            f"{len(classes)} algorithms ({', '.join(per_group)}); give every group the same algorithm "
            "or train without optimizer-state sharding"
        )
    return type(optimizer)


__all__ = ["build_zero_optimizer", "single_optimizer_class"]
