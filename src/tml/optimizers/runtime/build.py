"""Build the torch optimizers and the ``LRShim`` of an ``OptimizerPlan`` (see ``tml.optimizers.plan``)."""

from __future__ import annotations

from typing import Any

import torch

from tml.optimizers.algorithms.facts import groups_filled_after_init
from tml.optimizers.plan import OptimizerPlan, PlannedOptimizer
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.flat import FlatOptimizer, FlattenError
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import ResumeContract
from tml.optimizers.runtime.tensor_lr import make_lr_tensor


def build_from_plan(plan: OptimizerPlan, model: torch.nn.Module) -> tuple[torch.optim.Optimizer, LRShim]:
    """The optimizer of ``plan`` (one torch optimizer, or a ``CombinedOptimizer`` of several) and its
    ``LRShim``.

    Raises:
      FlattenError: a flat group holds parameters flat buffers cannot take (the message names the
        groups and why); nothing of the model is changed then.
    """
    children = [build_torch_optimizer(planned, model) for planned in plan.optimizers]
    for planned, child in zip(plan.optimizers, children, strict=True):
        ResumeContract(planned.groups, plan.resume_policy).attach(child)
    optimizer: torch.optim.Optimizer
    if len(children) == 1:
        optimizer = children[0]
        refuse_new_param_groups(optimizer)
    else:
        optimizer = CombinedOptimizer(children, [group.name for group in plan.groups])
    return optimizer, build_scheduler(plan, optimizer)


def build_scheduler(plan: OptimizerPlan, optimizer: torch.optim.Optimizer) -> LRShim:
    """The ``LRShim`` of ``plan``'s groups over ``optimizer`` (whose groups are the plan's, in order)."""
    scheduler = LRShim(
        optimizer,
        plan.schedules(),
        lr_multipliers=plan.lr_multipliers(),
        schedule_position=plan.schedule_position,
        plateaus=plan.plateaus(),
    )
    scheduler.resume_policy = plan.resume_policy
    return scheduler


def build_torch_optimizer(planned: PlannedOptimizer, model: torch.nn.Module) -> torch.optim.Optimizer:
    """One torch optimizer (a ``FlatOptimizer`` with ``flatten``) over the planned groups, with the
    ``lr`` of its ``tensor_lr`` groups made 0-dim tensors."""
    param_groups = [dict(group) for group in planned.param_groups]
    constructor: Any = planned.torch_class
    optimizer: torch.optim.Optimizer
    if planned.flatten:
        try:
            optimizer = FlatOptimizer(
                param_groups, planned.torch_class, model=model, lr=planned.lr, **planned.defaults
            )
        except FlattenError as error:
            names = ", ".join(repr(group.name) for group in planned.groups)
            raise FlattenError(f"param group(s) {names}: {error}") from None
    elif groups_filled_after_init(planned.torch_class) and len(param_groups) > 1:
        # torch's add_param_group checks each new group against every earlier group's parameters
        # (O(groups × parameters): most of the build time of a model with 10,000 parameters). The
        # groups are disjoint by construction (assign_param_groups checks it), and these classes read
        # no parameter in their constructor: they get empty groups, filled in afterwards.
        optimizer = constructor(
            [{**group, "params": []} for group in param_groups], lr=planned.lr, **planned.defaults
        )
        for group_dict, group in zip(optimizer.param_groups, param_groups, strict=True):
            group_dict["params"] = list(group["params"])
    else:
        optimizer = constructor(param_groups, lr=planned.lr, **planned.defaults)
    apply_tensor_lr(optimizer, planned)
    return optimizer


def apply_tensor_lr(optimizer: torch.optim.Optimizer, planned: PlannedOptimizer) -> None:
    """Make the ``lr`` of every group of ``optimizer`` whose algorithm sets ``tensor_lr`` a 0-dim
    tensor (``optimizer`` holds ``planned``'s groups, by name)."""
    names = set(planned.tensor_lr_groups())
    for group_dict in optimizer.param_groups:
        if group_dict["name"] in names:
            make_lr_tensor(
                group_dict, f"param group {group_dict['name']!r}", optimizer_class=planned.torch_class
            )


def refuse_new_param_groups(optimizer: torch.optim.Optimizer) -> None:
    """Make ``optimizer.add_param_group`` raise: a group added after the build has no schedule,
    multiplier or record in the checkpoint contract (its ``lr`` would stay the placeholder)."""

    def add_param_group(param_group: dict[str, Any]) -> None:
        raise TypeError(ADD_PARAM_GROUP_REFUSAL)

    optimizer.add_param_group = add_param_group  # type: ignore[method-assign]


ADD_PARAM_GROUP_REFUSAL = (
    "an optimizer of build_optimizer does not take new param groups: a group added after the build "
    "would have no schedule (LRShim schedules the config's groups) and no place in the checkpoint; "
    "give the parameters a param_groups rule (frozen parameters can be in it: requires_grad=False "
    "parameters are skipped, so build the optimizer once they are unfrozen) and rebuild the optimizer"
)


__all__ = [
    "ADD_PARAM_GROUP_REFUSAL",
    "apply_tensor_lr",
    "build_from_plan",
    "build_scheduler",
    "build_torch_optimizer",
    "refuse_new_param_groups",
]
