"""Build a torch optimizer and its ``LRShim`` scheduler from an ``OptimizerConfig``.

The original's module: ``build_optimizer`` and ``get_optimizer_class``. The work is done by
``tml.optimizers.plan`` (what to build) and ``tml.optimizers.runtime.build`` (building it).
"""

from __future__ import annotations

import torch

from tml.optimizers.config import OptimizerConfig
from tml.optimizers.distributed.zero import build_zero_optimizer_from_plan
from tml.optimizers.groups.assign import check_arguments
from tml.optimizers.groups.rules import DEFAULT_GROUP
from tml.optimizers.plan import plan_optimizer
from tml.optimizers.runtime.build import build_from_plan
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.schedules import compute_lr
from tml.optimizers.tables.build import build_table_optimizer, needs_table_build

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
    model: torch.nn.Module,
    optimizer_config: OptimizerConfig,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
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

    On a torchrec ``DistributedModelParallel`` (after ``apply_table_rules(model, config)`` on the
    unsharded model, when the config has ``embedding_tables``), the result also holds the model's
    fused table optimizer, one param group per table group, named after it; see
    ``tml.optimizers.tables.build``.

    Call ``optimizer.step()`` then ``scheduler.step()`` once per training step.

    ``total_steps`` and ``steps_per_epoch`` give the run that schedule lengths written relative to it
    (``"2%"`` of ``total_steps``, ``"3ep"``) are resolved with, once, here: the config's own fields
    of the same names, when it sets them, must then be equal. The scheduler and the checkpoint hold
    the resolved schedules (what trains).

    Raises:
      ValueError: the model has no trainable parameter, or does not fit the config's rules.
      pydantic.ValidationError: a schedule length is relative to a run that is not given, or the
        resolved schedule breaks a rule (at the field's config path); ``total_steps`` or
        ``steps_per_epoch`` differs from the config's (a ``ValueError``).
      FlattenError: a group with ``flatten`` holds parameters flat buffers cannot take (sparse
        gradients, DTensor / FSDP parameters, non-float dtypes); the message names the group and why.
    """
    check_arguments(model, optimizer_config)
    optimizer_config = optimizer_config.for_run(total_steps, steps_per_epoch)
    if needs_table_build(model, optimizer_config):  # torchrec: see tml.optimizers.tables.build
        if optimizer_config.shard_optimizer_state:
            raise ValueError(
                "shard_optimizer_state (ZeRO-1) is not available for a torchrec model: "
                "DistributedModelParallel shards the tables, and its dense part is replicated by DDP"
            )
        return build_table_optimizer(model, optimizer_config)
    plan = plan_optimizer(model, optimizer_config)
    if optimizer_config.shard_optimizer_state:  # ZeRO-1: see tml.optimizers.distributed.zero
        return build_zero_optimizer_from_plan(plan)
    return build_from_plan(plan, model)
