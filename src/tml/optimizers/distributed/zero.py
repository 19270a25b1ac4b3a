"""Optimizer-state sharding (ZeRO stage 1) for DDP runs, built from an ``OptimizerConfig``."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.optim import ZeroRedundancyOptimizer

from tml.optimizers.config import OptimizerConfig
from tml.optimizers.plan import OptimizerPlan, plan_optimizer
from tml.optimizers.runtime.build import apply_tensor_lr, build_scheduler
from tml.optimizers.runtime.lr_shim import LRShim

_CHILD_ATTRIBUTES = ("_optims", "optimizers")
"""Where a container optimizer (one torch optimizer per algorithm) keeps its children."""


def build_zero_optimizer(
    model: torch.nn.Module, optimizer_config: OptimizerConfig, **zero_options: Any
) -> tuple[ZeroRedundancyOptimizer, LRShim]:
    """Build ``build_optimizer``'s param groups as a ``ZeroRedundancyOptimizer`` with its ``LRShim``.

    Each rank keeps the optimizer state of its share of the parameters only (ZeRO-1) and
    broadcasts its updated parameters after every step; the result equals the unsharded
    optimizer's. The param groups (names, hyperparameters, schedules) are those of
    ``build_optimizer(model, optimizer_config)``, read from the same plan
    (``tml.optimizers.plan``). Use it with a DDP-wrapped model in an initialized process group;
    call ``optimizer.step()`` then ``scheduler.step()`` as usual.

    Args:
      model: the (usually DDP-wrapped) model.
      optimizer_config: an ``OptimizerConfig`` whose groups all use one algorithm, none flattened.
      zero_options: passed to ``ZeroRedundancyOptimizer`` (e.g. ``parameters_as_bucket_view``).

    Returns:
      ``(optimizer, scheduler)``: the ``ZeroRedundancyOptimizer`` and an ``LRShim`` over its groups.

    Raises:
      RuntimeError: no torch.distributed process group is initialized.
      ValueError: the groups use more than one algorithm or flatten (ZeRO wraps a single optimizer
        class over the model's own parameters).
    """
    return build_zero_optimizer_from_plan(plan_optimizer(model, optimizer_config), **zero_options)


def build_zero_optimizer_from_plan(
    plan: OptimizerPlan, **zero_options: Any
) -> tuple[ZeroRedundancyOptimizer, LRShim]:
    """:func:`build_zero_optimizer` from a plan already made."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "optimizer-state sharding (shard_optimizer_state, ZeRO-1) needs an initialized "
            "torch.distributed process group, and none is: launch with torchrun and call "
            "torch.distributed.init_process_group() before building the optimizer, or set "
            "shard_optimizer_state: false for a single-process run"
        )
    if len(plan.optimizers) != 1 or plan.optimizers[0].flatten:
        per_group = [
            f"{group.name!r}: {planned.torch_class.__name__}{' (flatten)' if planned.flatten else ''}"
            for planned in plan.optimizers
            for group in planned.groups
        ]
        raise ValueError(
            "ZeRO-1 (ZeroRedundancyOptimizer) shards one optimizer class over the model's own "
            f"parameters, but these param groups use {', '.join(per_group)}; give every group the same "
            "algorithm without flatten, or train without optimizer-state sharding"
        )
    (planned,) = plan.optimizers
    optimizer = ZeroRedundancyOptimizer(
        [dict(group) for group in planned.param_groups],
        optimizer_class=planned.torch_class,
        **zero_options,
        lr=planned.lr,
        **planned.defaults,
    )
    apply_tensor_lr(optimizer, planned)
    return optimizer, build_scheduler(plan, optimizer)


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


__all__ = ["build_zero_optimizer", "build_zero_optimizer_from_plan", "single_optimizer_class"]
