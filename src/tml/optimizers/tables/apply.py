"""``apply_table_rules(model, config)``: the first of the two calls, before sharding.

It gives every table of the model its rule's algorithm the way torchrec's sharders read it
(``torch.distributed.optim._apply_optimizer_in_backward``, what ``torchrec.optim.
apply_optimizer_in_backward`` calls), so that ``DistributedModelParallel`` builds FBGEMM's fused
kernels from them:

- the keyword arguments name FBGEMM's optimizer (``optimizer: EmbOptimType``) and give every
  hyperparameter the kernel reads for it, so a sharder's ``fused_params`` cannot change them;
- they carry ``_batch_key: "tml:<group>"``, a key torchrec groups tables by and leaves out of the
  kernel's arguments, so tables of different table groups never share a kernel (a kernel reads one
  learning rate);
- the optimizer class is torchrec's class of that algorithm (``torchrec.optim.RowWiseAdagrad``…), so
  the planner estimates the optimizer's memory right.

The table groups are recorded on the model, where ``build_optimizer`` finds them once the model is
sharded. The tables must not be trained before sharding (torchrec's classes other than
``RowWiseAdagrad`` do not run outside a fused kernel).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import torch

from tml.optimizers.schedules import compute_lr
from tml.optimizers.tables.assign import TableGroup, assign_tables, find_tables

if TYPE_CHECKING:
    from tml.optimizers.config import OptimizerConfig

RECORD_ATTRIBUTE = "_tml_table_groups"
"""The attribute of the model's root module that holds its :class:`AppliedTables`."""

BATCH_KEY_PREFIX = "tml:"
"""The ``_batch_key`` of a table's fused params is this prefix and its table group's name."""


@dataclasses.dataclass(frozen=True)
class AppliedTables:
    """What :func:`apply_table_rules` did to a model: its table groups and the rules they came from."""

    groups: tuple[TableGroup, ...]
    rules: str
    """The config's ``embedding_tables`` as JSON: ``build_optimizer`` refuses other rules."""


def _placeholder_class(key: str) -> type[torch.optim.Optimizer]:
    from torchrec import optim as trec

    classes: dict[str, type[torch.optim.Optimizer]] = {
        "exact_sgd": trec.SGD,
        "exact_adagrad": trec.Adagrad,
        "exact_row_wise_adagrad": trec.RowWiseAdagrad,
        "adam": trec.Adam,
        "partial_row_wise_adam": trec.PartialRowWiseAdam,
        "lamb": trec.LAMB,
    }
    return classes[key]


def rules_record(config: OptimizerConfig) -> str:
    """The config's table rules as one JSON string (what must not change between the two calls)."""
    return json.dumps([rule.model_dump(mode="json", exclude_none=True) for rule in config.embedding_tables])


def fused_kwargs(group: TableGroup) -> dict[str, Any]:
    """The in-backward optimizer keyword arguments of a table of ``group``: FBGEMM's fused params."""
    return {
        **group.algorithm.fused_params(compute_lr(group.schedule, 0)),
        "_batch_key": BATCH_KEY_PREFIX + group.name,
    }


def apply_table_rules(
    model: torch.nn.Module, config: OptimizerConfig, *, device: torch.device | str | None = None
) -> list[TableGroup]:
    """Give every embedding table of ``model`` its table rule's fused algorithm, before sharding.

    Call it on the unsharded model (tables on the ``meta`` device are fine), then shard it with
    ``DistributedModelParallel``, then call ``build_optimizer(sharded_model, config)`` with the same
    config::

        apply_table_rules(model, config)
        sharded = DistributedModelParallel(model, device=device)
        optimizer, scheduler = build_optimizer(sharded, config)

    Args:
      model: a module holding ``EmbeddingBagCollection`` / ``EmbeddingCollection`` modules, unsharded.
      config: an ``OptimizerConfig`` with ``embedding_tables`` rules.
      device: the device ``DistributedModelParallel`` will put the tables on (default: CUDA when
        it is available, else the CPU). FBGEMM's CPU kernels run ``exact_sgd``, ``exact_adagrad``
        and ``exact_row_wise_adagrad`` only: a rule with another algorithm is refused for the CPU
        here, rather than by FBGEMM's assertion inside ``DistributedModelParallel``.

    Returns:
      The table groups, in rule order.

    Raises:
      ValueError: the model is sharded already; the rules do not fit its tables (see
        ``assign_tables``); a table already has an in-backward optimizer (given by
        ``apply_optimizer_in_backward``, or by an earlier call of this function); a rule's algorithm
        has no kernel on ``device``.
    """
    _refuse_sharded(model)
    groups = assign_tables(model, config)
    _refuse_kernels_the_device_lacks(groups, device)
    for group in groups:
        for table in group.tables:
            existing = getattr(table.parameter, "_optimizer_kwargs", None)
            if existing is None and not hasattr(table.parameter, "_in_backward_optimizers"):
                continue
            kwargs = existing[0] if existing else {}
            if str(kwargs.get("_batch_key", "")).startswith(BATCH_KEY_PREFIX):
                raise ValueError(
                    "apply_table_rules was already called on this model: call it once, before sharding"
                )
            classes = [cls.__name__ for cls in getattr(table.parameter, "_optimizer_classes", [])]
            raise ValueError(
                f"table {table.name!r} ({table.parameter_name}) is claimed by {group.path} but already has "
                f"an in-backward optimizer ({', '.join(classes) or 'unknown'} with {kwargs}): torchrec would "
                "train it with one of them silently; remove the other apply_optimizer_in_backward call, "
                "or leave the table out of the rules' patterns"
            )
    from torch.distributed.optim import _apply_optimizer_in_backward

    for group in groups:
        optimizer_class = _placeholder_class(group.algorithm.key)
        for table in group.tables:
            # One dict per table: torchrec's sharder edits it in place.
            _apply_optimizer_in_backward(optimizer_class, [table.parameter], fused_kwargs(group))
    setattr(model, RECORD_ATTRIBUTE, AppliedTables(tuple(groups), rules_record(config)))
    return groups


def _refuse_kernels_the_device_lacks(groups: list[TableGroup], device: torch.device | str | None) -> None:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type != "cpu":
        return
    from tml.optimizers.tables.algorithms import TABLE_ALGORITHMS

    for group in groups:
        if not group.algorithm.runs_on_cpu:
            on_cpu = ", ".join(key for key, config in TABLE_ALGORITHMS.items() if config.runs_on_cpu)
            raise ValueError(
                f"{group.path}: FBGEMM has no CPU kernel for {group.algorithm.key!r} (it runs on CUDA); "
                f"on the CPU a table rule takes one of: {on_cpu}"
            )


def _refuse_sharded(model: torch.nn.Module) -> None:
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.types import ShardedModule

    if isinstance(model, DistributedModelParallel) or any(
        isinstance(module, ShardedModule) for module in model.modules()
    ):
        raise ValueError(
            "apply_table_rules takes the unsharded model: call it before DistributedModelParallel "
            "(which builds the fused kernels from the rules), then build_optimizer on the sharded model"
        )


def applied_tables(model: torch.nn.Module) -> AppliedTables | None:
    """The record :func:`apply_table_rules` left on ``model`` (or on the module a
    ``DistributedModelParallel`` wraps), or ``None``."""
    root = getattr(model, "module", model) if _is_dmp(model) else model
    record = getattr(root, RECORD_ATTRIBUTE, None)
    return record if isinstance(record, AppliedTables) else None


def _is_dmp(model: torch.nn.Module) -> bool:
    try:
        from torchrec.distributed.model_parallel import DistributedModelParallel
    except ImportError:
        return False
    return isinstance(model, DistributedModelParallel)


def has_unsharded_tables(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds an unsharded ``EmbeddingBagCollection`` / ``EmbeddingCollection``."""
    try:
        return bool(find_tables(model))
    except ImportError:
        return False


__all__ = [
    "AppliedTables",
    "applied_tables",
    "apply_table_rules",
    "fused_kwargs",
    "has_unsharded_tables",
    "rules_record",
]
