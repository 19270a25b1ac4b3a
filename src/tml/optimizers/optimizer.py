"""Build a torch optimizer and its ``LRShim`` scheduler from an ``OptimizerConfig``."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from tml.optimizers.config import OptimizerConfig
from tml.optimizers.groups.assign import ParamGroup, assign_param_groups
from tml.optimizers.groups.rules import DEFAULT_GROUP
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.flat import FlatOptimizer, FlattenError
from tml.optimizers.runtime.implementation import accepts_keyword, implementation_kwargs
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.tensor_lr import make_lr_tensor
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
    ``tml.optimizers.groups.assign``); without rules they form one group, ``"default"``. Every group
    dict carries its ``"name"``. When every group uses the same algorithm (torch class) and the
    same ``flatten``, the result is one torch optimizer with one param group per group; otherwise a
    ``CombinedOptimizer`` of one torch optimizer per (algorithm, flatten), which behaves as one
    ``torch.optim.Optimizer``.

    Each algorithm's speed fields apply to its groups: ``implementation`` sets the group dict's
    ``fused`` / ``foreach`` (see ``tml.optimizers.runtime.implementation``); ``flatten`` builds a
    ``FlatOptimizer``; ``tensor_lr`` makes the group's ``lr`` a 0-dim float64 tensor before the
    ``LRShim`` is built (with ``tensor_lr``, ``auto`` never picks ``foreach`` for Adam/AdamW,
    where torch refuses a tensor lr).

    Call ``optimizer.step()`` then ``scheduler.step()`` once per training step.

    Raises:
      ValueError: the model has no trainable parameter, or does not fit the config's rules.
      FlattenError: a group with ``flatten`` holds parameters flat buffers cannot take (sparse
        gradients, DTensor / FSDP parameters, non-float dtypes); the message names the group and why.
    """
    if optimizer_config.shard_optimizer_state:  # ZeRO-1: see tml.optimizers.distributed.zero
        from tml.optimizers.distributed.zero import build_zero_optimizer

        return build_zero_optimizer(model, optimizer_config)
    groups = assign_param_groups(model, optimizer_config)
    by_key: dict[object, list[ParamGroup]] = {}
    for group in groups:
        by_key.setdefault((group.algorithm.group_key(), group.algorithm.flatten), []).append(group)
    children = [_torch_optimizer(members, model) for members in by_key.values()]
    for child in children:
        _apply_tensor_lr(child, {group.name: group for group in groups})
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


def _torch_optimizer(groups: list[ParamGroup], model: torch.nn.Module) -> torch.optim.Optimizer:
    """One torch optimizer for groups that share an algorithm and ``flatten``: each group dict holds
    its own hyperparameters, implementation keywords, name and initial LR."""
    optimizer_class = groups[0].algorithm.torch_class()
    param_groups = [
        {
            "params": group.params,
            "name": group.name,
            "lr": group.lr_multiplier * compute_lr(group.schedule, 0),
            **group.algorithm.optimizer_kwargs(),
            **group_implementation_kwargs(optimizer_class, group),
        }
        for group in groups
    ]
    # The constructor's lr is only a default for groups that set none, and every group sets its
    # own. It is the first group's initial LR as in the seed, but never 0: SparseAdam (and some
    # custom classes) reject lr=0 here, and a warmup starts from 0.
    initial_lr = param_groups[0]["lr"]
    defaults = {key: value for key, value in param_groups[0].items() if key not in ("params", "name", "lr")}
    lr = initial_lr if initial_lr > 0 else _placeholder_lr(optimizer_class)
    if groups[0].algorithm.flatten:
        try:
            return FlatOptimizer(param_groups, optimizer_class, model=model, lr=lr, **defaults)
        except FlattenError as error:
            names = ", ".join(repr(group.name) for group in groups)
            raise FlattenError(f"param group(s) {names}: {error}") from None
    constructor: Any = optimizer_class
    if optimizer_class in _GROUPS_ADDED_AFTER and len(param_groups) > 1:
        # torch's add_param_group checks each new group against every earlier group's parameters
        # (a set of all of them per group: O(groups × parameters), most of build_optimizer's time on
        # a model with 10,000 parameters). The groups here are disjoint by construction
        # (assign_param_groups checks it) and hold the model's leaf parameters, so the built-in
        # classes, which do not look at the parameters in their constructor, get their groups
        # with empty parameter lists, filled in afterwards.
        optimizer = constructor([{**group, "params": []} for group in param_groups], lr=lr, **defaults)
        for group_dict, group in zip(optimizer.param_groups, param_groups, strict=True):
            group_dict["params"] = list(group["params"])
        return optimizer
    return constructor(param_groups, lr=lr, **defaults)


_GROUPS_ADDED_AFTER: frozenset[type[torch.optim.Optimizer]] = frozenset(
    {
        torch.optim.Adam,
        torch.optim.AdamW,
        torch.optim.SGD,
        torch.optim.Adagrad,
        torch.optim.RMSprop,
        torch.optim.Adadelta,
        torch.optim.Adamax,
        torch.optim.NAdam,
        torch.optim.RAdam,
        torch.optim.ASGD,
        torch.optim.Rprop,
    }
)
"""torch's own classes (exactly these, not subclasses) whose constructors only read the defaults."""


def group_implementation_kwargs(
    optimizer_class: type[torch.optim.Optimizer], group: ParamGroup
) -> dict[str, Any]:
    """The ``fused`` / ``foreach`` keywords of one group dict, from its algorithm's speed fields.

    Both keywords are set when the class takes them, so a group never inherits the other groups'
    choice through the optimizer's defaults.
    """
    algorithm = group.algorithm
    kwargs = implementation_kwargs(optimizer_class, group.params, algorithm.implementation)
    if algorithm.tensor_lr and kwargs.get("foreach") and algorithm.foreach_refuses_tensor_lr():
        kwargs = {"foreach": False}  # auto's foreach: torch refuses a tensor lr there
    if kwargs.get("fused") and accepts_keyword(optimizer_class, "foreach"):
        kwargs["foreach"] = False
    if not kwargs.get("fused") and accepts_keyword(optimizer_class, "fused"):
        kwargs["fused"] = False
    return kwargs


def _apply_tensor_lr(optimizer: torch.optim.Optimizer, groups: dict[str, ParamGroup]) -> None:
    """Make the ``lr`` of every group whose algorithm sets ``tensor_lr`` a 0-dim tensor."""
    for group_dict in optimizer.param_groups:
        group = groups[group_dict["name"]]
        if group.algorithm.tensor_lr:
            inner = optimizer.optimizer_class if isinstance(optimizer, FlatOptimizer) else type(optimizer)
            make_lr_tensor(group_dict, f"param group {group.name!r}", optimizer_class=inner)


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
