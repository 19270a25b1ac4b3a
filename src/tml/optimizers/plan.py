"""``plan_optimizer(model, config)``: every decision about the optimizer, before anything is built.

The plan lists the param groups (``ParamGroup``: parameters, names, algorithm, schedule,
multiplier), which torch optimizers hold them (one per torch class and ``flatten``), and each
group's constructor keywords, including the kernel that ``implementation`` picks. Making it reads
the model's parameters (names, shapes, devices, dtypes) and changes nothing: no optimizer, no
state, no flat buffer. The local builder (``build_optimizer``) and ZeRO-1
(``tml.optimizers.distributed.zero``) both build from it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Collection, Sequence
from typing import Any

import torch

from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.groups.assign import ParamGroup, assign_param_groups, check_arguments
from tml.optimizers.runtime.implementation import accepts_keyword, implementation_kwargs
from tml.optimizers.schedules import compute_lr
from tml.optimizers.schedules.plateau import ReduceOnPlateau


@dataclasses.dataclass(frozen=True)
class PlannedOptimizer:
    """One torch optimizer to build: its class, whether its groups are flat, and its group dicts."""

    torch_class: type[torch.optim.Optimizer]
    flatten: bool
    groups: tuple[ParamGroup, ...]
    param_groups: tuple[dict[str, Any], ...]
    """The constructor's param-group dicts, in group order: ``params``, ``name``, the initial ``lr``,
    every hyperparameter of the group's algorithm and the ``fused`` / ``foreach`` keywords."""
    lr: float
    """The constructor's ``lr``: only a default for groups that set none (every group sets its own);
    the first group's initial LR, or, when that is 0 (a warmup), the class's default, since some
    classes (SparseAdam) refuse ``lr=0``."""
    defaults: dict[str, Any]
    """The constructor's other keywords: the first group's hyperparameters."""

    def tensor_lr_groups(self) -> list[str]:
        """The names of the groups whose algorithm sets ``tensor_lr``."""
        return [group.name for group in self.groups if group.algorithm.tensor_lr]


@dataclasses.dataclass(frozen=True)
class OptimizerPlan:
    """The optimizers to build, the param groups in the config's order, and how the schedule counts."""

    optimizers: tuple[PlannedOptimizer, ...]
    groups: tuple[ParamGroup, ...]
    schedule_position: str
    resume_policy: str = "strict"
    """The config's ``resume``: how a load treats a checkpoint saved with other hyperparameters."""

    def schedules(self) -> dict[str, LearningRate]:
        """Each group's schedule, in group order (``LRShim``'s ``lr_dict``)."""
        return {group.name: group.schedule for group in self.groups}

    def lr_multipliers(self) -> dict[str, float]:
        """Each group's LR multiplier, in group order."""
        return {group.name: group.lr_multiplier for group in self.groups}

    def plateaus(self) -> dict[str, ReduceOnPlateau]:
        """The ``reduce_on_plateau`` of each group that has one, in group order."""
        return {
            group.name: group.reduce_on_plateau
            for group in self.groups
            if group.reduce_on_plateau is not None
        }


def plan_optimizer(
    model: torch.nn.Module, config: OptimizerConfig, *, leave_out: Collection[str] = ()
) -> OptimizerPlan:
    """The plan of ``build_optimizer(model, config)``: groups, torch classes and keyword arguments.

    Groups that share a torch class and ``flatten`` share one optimizer (torch optimizers read every
    hyperparameter from the group), in the order their first group comes. Parameters named in
    ``leave_out`` are not planned (see ``assign_param_groups``).

    Every group's schedule is the one that trains: its lengths relative to the run resolved to steps
    (with the config's ``total_steps`` / ``steps_per_epoch``; see ``OptimizerConfig.for_run``).

    Raises:
      ValueError: the model has no trainable parameter, or does not fit the config's rules (see
        ``assign_param_groups``); a schedule has a length relative to the run that the config does
        not give (a ``pydantic.ValidationError`` at its path).

    Examples:
      >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
      >>> plan = plan_optimizer(model, OptimizerConfig.model_validate({
      ...     "adam": {"lr": 0.001},
      ...     "param_groups": [{"name": "head", "params": ["1.*"], "sgd": {"lr": 0.1}}]}))
      >>> [(planned.torch_class.__name__, [group.name for group in planned.groups])
      ...  for planned in plan.optimizers]
      [('SGD', ['head']), ('Adam', ['default'])]
    """
    check_arguments(model, config)
    config.require_run()
    groups = assign_param_groups(model, config, leave_out=leave_out)
    return OptimizerPlan(
        optimizers=plan_torch_optimizers(groups),
        groups=tuple(groups),
        schedule_position=config.schedule_position,
        resume_policy=config.resume,
    )


def plan_torch_optimizers(groups: Sequence[ParamGroup]) -> tuple[PlannedOptimizer, ...]:
    """The torch optimizers that hold ``groups``: one per torch class and ``flatten``, in the order
    their first group comes."""
    by_key: dict[object, list[ParamGroup]] = {}
    for group in groups:
        by_key.setdefault((group.algorithm.group_key(), group.algorithm.flatten), []).append(group)
    return tuple(_plan_one(members) for members in by_key.values())


def _plan_one(groups: list[ParamGroup]) -> PlannedOptimizer:
    torch_class = groups[0].algorithm.torch_class()
    param_groups = tuple(
        {
            "params": group.params,
            "name": group.name,
            "lr": group.lr_multiplier * compute_lr(group.schedule, 0),
            **group.algorithm.optimizer_kwargs(),
            **group_implementation_kwargs(torch_class, group),
        }
        for group in groups
    )
    first = param_groups[0]
    return PlannedOptimizer(
        torch_class=torch_class,
        flatten=groups[0].algorithm.flatten,
        groups=tuple(groups),
        param_groups=param_groups,
        lr=first["lr"] if first["lr"] > 0 else _placeholder_lr(torch_class),
        defaults={key: value for key, value in first.items() if key not in ("params", "name", "lr")},
    )


def group_implementation_kwargs(
    optimizer_class: type[torch.optim.Optimizer], group: ParamGroup
) -> dict[str, Any]:
    """The ``fused`` / ``foreach`` keywords of one group dict, from its algorithm's speed fields.

    Both keywords are set when the class takes them, so a group never inherits the other groups'
    choice through the optimizer's defaults. With ``tensor_lr``, ``auto``'s foreach becomes the
    for-loop where torch refuses a tensor lr with foreach.
    """
    algorithm = group.algorithm
    kwargs = implementation_kwargs(optimizer_class, group.params, algorithm.implementation)
    if algorithm.tensor_lr and kwargs.get("foreach") and algorithm.foreach_refuses_tensor_lr():
        kwargs = {"foreach": False}
    if kwargs.get("fused") and accepts_keyword(optimizer_class, "foreach"):
        kwargs["foreach"] = False
    if not kwargs.get("fused") and accepts_keyword(optimizer_class, "fused"):
        kwargs["fused"] = False
    return kwargs


def _placeholder_lr(optimizer_class: type[torch.optim.Optimizer]) -> float:
    default = inspect.signature(optimizer_class.__init__).parameters.get("lr")
    if default is not None and isinstance(default.default, (int, float)) and default.default > 0:
        return float(default.default)
    return 1e-3


__all__ = [
    "OptimizerPlan",
    "PlannedOptimizer",
    "group_implementation_kwargs",
    "plan_optimizer",
    "plan_torch_optimizers",
]
