"""Build a torch optimizer and its ``LRShim`` scheduler from an ``OptimizerConfig``."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from tml.optimizers.combined import CombinedOptimizer
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.group_config import DEFAULT_GROUP
from tml.optimizers.param_groups import ParamGroup, assign_param_groups
from tml.optimizers.scheduler import LRShim
from tml.optimizers.schedules import compute_lr

__all__ = ["DEFAULT_GROUP", "LRShim", "build_optimizer", "compute_lr", "get_optimizer_class"]


def get_optimizer_class(optimizer_config: OptimizerConfig) -> type[torch.optim.Optimizer]:
    """The torch optimizer class of the config's algorithm (``torch.optim.Adam`` for ``adam``…).

    When param groups set algorithms of their own, this is the class they all share; if they use
    different classes there is no single class to return, and ``build_optimizer`` would build a
    ``CombinedOptimizer`` of several.

    Raises:
      ValueError: the param groups use different optimizer classes (the message lists them).
    """
    classes = {spec.name: spec.algorithm.torch_class() for spec in optimizer_config.group_specs()}
    distinct = set(classes.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{name}: {cls.__name__}" for name, cls in classes.items())
        raise ValueError(
            f"the param groups use different optimizer classes ({listing}); build_optimizer builds "
            "a CombinedOptimizer of one optimizer per class"
        )
    return distinct.pop()


def build_optimizer(
    model: torch.nn.Module, optimizer_config: OptimizerConfig
) -> tuple[torch.optim.Optimizer, LRShim]:
    """Build the optimizer of ``model``'s trainable parameters and its learning-rate scheduler.

    The parameters are split into param groups by the config's rules (see
    ``tml.optimizers.param_groups``); without rules they form one group, ``"default"``. Every group
    dict carries its ``"name"``. When every group uses the same algorithm (torch class), the result
    is one torch optimizer with one param group per group; otherwise a ``CombinedOptimizer`` of one
    torch optimizer per algorithm, which behaves as one ``torch.optim.Optimizer``.

    Call ``optimizer.step()`` then ``scheduler.step()`` once per training step.

    Raises:
      ValueError: the model has no trainable parameter, or does not fit the config's rules.
    """
    if optimizer_config.shard_optimizer_state:  # ZeRO-1: see tml.optimizers.distributed.zero
        from tml.optimizers.distributed.zero import build_zero_optimizer

        return build_zero_optimizer(model, optimizer_config)
    groups = assign_param_groups(model, optimizer_config)
    by_key: dict[object, list[ParamGroup]] = {}
    for group in groups:
        by_key.setdefault(group.algorithm.group_key(), []).append(group)
    children = [_torch_optimizer(members) for members in by_key.values()]
    optimizer: torch.optim.Optimizer
    if len(children) == 1:
        optimizer = children[0]
        optimizer.register_load_state_dict_pre_hook(_check_group_names)
    else:
        optimizer = CombinedOptimizer(children, [group.name for group in groups])
    scheduler = LRShim(
        optimizer,
        {group.name: group.schedule for group in groups},
        lr_multipliers={group.name: group.lr_multiplier for group in groups},
        schedule_position=optimizer_config.schedule_position,
    )
    return optimizer, scheduler


def _torch_optimizer(groups: list[ParamGroup]) -> torch.optim.Optimizer:
    """One torch optimizer for groups that share an algorithm: each group dict holds its own
    hyperparameters, name and initial LR."""
    optimizer_class = groups[0].algorithm.torch_class()
    param_groups = [
        {
            "params": group.params,
            "name": group.name,
            "lr": group.lr_multiplier * compute_lr(group.schedule, 0),
            **group.algorithm.optimizer_kwargs(),
        }
        for group in groups
    ]
    # The constructor's lr is only a default for groups that set none, and every group sets its
    # own. It is the first group's initial LR as in the seed, but never 0: SparseAdam (and some
    # custom classes) reject lr=0 here, and a warmup starts from 0.
    initial_lr = param_groups[0]["lr"]
    constructor: Any = optimizer_class
    return constructor(
        param_groups,
        lr=initial_lr if initial_lr > 0 else _placeholder_lr(optimizer_class),
        **groups[0].algorithm.optimizer_kwargs(),
    )


def _placeholder_lr(optimizer_class: type[torch.optim.Optimizer]) -> float:
    default = inspect.signature(optimizer_class.__init__).parameters.get("lr")
    if default is not None and isinstance(default.default, (int, float)) and default.default > 0:
        return float(default.default)
    return 1e-3


def _check_group_names(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """Refuse a checkpoint whose param groups are named differently (torch only checks sizes)."""
    saved = [group.get("name") for group in state_dict.get("param_groups", [])]
    mine = [group.get("name") for group in optimizer.param_groups]
    if all(name is not None for name in saved) and saved != mine:
        raise ValueError(f"the checkpoint's param groups are {saved}, this optimizer's {mine}")
