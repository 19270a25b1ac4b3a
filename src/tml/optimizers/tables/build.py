"""``build_optimizer`` on a ``DistributedModelParallel``: the dense optimizer and the fused tables as one.

``build_optimizer(sharded_model, config)`` comes here when the config has ``embedding_tables`` or
the model is sharded. It checks what torchrec built against the rules, then returns a
``CombinedOptimizer`` holding, in this order:

- the dense param groups of the config (``param_groups`` and ``default``), over every parameter
  but the tables';
- ``<group>.dense`` for each table group with tables that torchrec gave no fused kernel (tables the
  planner shards ``data_parallel``, whose in-backward optimizer torchrec drops: they get ``.grad``
  like a dense parameter): they are trained by the python optimizer that makes their rule's update
  (``exact_sgd``: ``torch.optim.SGD``; ``exact_adagrad``: ``torch.optim.Adagrad``;
  ``exact_row_wise_adagrad``: ``torchrec.optim.RowWiseAdagrad``; ``adam``: ``torch.optim.AdamW``),
  under the rule's schedule; a rule whose algorithm has none (``partial_row_wise_adam``, ``lamb``,
  ``decouple`` weight decay) is refused, naming the tables;
- one group per table group with fused tables, named after it (:class:`FusedTableOptimizer`).

It refuses what would train silently wrong: a model whose rules were not applied before sharding;
other rules than those applied; a kernel holding tables of two table groups, or a table no rule
claims; a kernel whose optimizer or hyperparameters are not its rule's (a sharder's
``fused_params`` cannot change them, but a plan or an edit of the model could); a sharded model with
fused tables and no ``embedding_tables`` (its fused optimizer would never be stepped, nor its LR
scheduled).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from tml.optimizers.groups.assign import ParamGroup
from tml.optimizers.groups.names import named_parameters
from tml.optimizers.plan import OptimizerPlan, plan_optimizer, plan_torch_optimizers
from tml.optimizers.runtime.build import build_torch_optimizer
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import ResumeContract
from tml.optimizers.schedules import LearningRate, compute_lr
from tml.optimizers.tables.apply import applied_tables, has_unsharded_tables, rules_record
from tml.optimizers.tables.assign import Table, TableGroup
from tml.optimizers.tables.fused import FusedTable, FusedTableOptimizer

if TYPE_CHECKING:
    from tml.optimizers.config import OptimizerConfig

DENSE_SUFFIX = ".dense"
"""The suffix of the param group of a table group's tables that have no fused kernel."""

FUSED_KERNELS = frozenset({"fused", "fused_uvm", "fused_uvm_caching", "key_value", "ssd_virtual_table"})
"""torchrec's compute kernels that run the table's optimizer in the backward pass."""


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a torchrec ``DistributedModelParallel``."""
    try:
        from torchrec.distributed.model_parallel import DistributedModelParallel
    except ImportError:
        return False
    return isinstance(model, DistributedModelParallel)


def needs_table_build(model: torch.nn.Module, config: OptimizerConfig) -> bool:
    """Whether ``build_optimizer`` must go through the table path: table rules, or a sharded model."""
    return bool(config.embedding_tables) or is_sharded(model)


def build_table_optimizer(
    model: torch.nn.Module, config: OptimizerConfig
) -> tuple[torch.optim.Optimizer, LRShim]:
    """The optimizer (a ``CombinedOptimizer``) and ``LRShim`` of a sharded model with table rules.

    Raises:
      ValueError: the calls came in the wrong order, the rules changed between them, or what torchrec
        built does not follow the rules (see the module's documentation).
    """
    if not is_sharded(model):
        if config.embedding_tables and has_unsharded_tables(model):
            raise ValueError(
                "build_optimizer with embedding_tables takes the sharded model: call "
                "apply_table_rules(model, config), then DistributedModelParallel(model, ...), then "
                "build_optimizer(sharded_model, config)"
            )
        raise ValueError(
            f"the config has embedding_tables rules, but {type(model).__name__} is not a torchrec "
            "DistributedModelParallel holding embedding tables"
        )
    fused_keys = _fused_parameter_keys(model)
    applied = applied_tables(model)
    if not config.embedding_tables:
        if fused_keys:
            raise ValueError(
                "the sharded model has fused embedding tables ("
                + ", ".join(sorted(fused_keys)[:5])
                + ") but the config has no embedding_tables: their fused optimizer would never be stepped "
                "and its learning rate never scheduled; give the tables embedding_tables rules (and call "
                "apply_table_rules before sharding)"
            )
        return _combine(model, config, [], {}, [])
    if applied is None:
        raise ValueError(
            "the tables of this sharded model were not given the config's table rules: call "
            "apply_table_rules(model, config) on the unsharded model, before DistributedModelParallel"
        )
    if applied.rules != rules_record(config):
        raise ValueError(
            "the config's embedding_tables differ from those apply_table_rules applied before sharding: "
            "the fused kernels were built from the others; use the same config for both calls"
        )
    groups = list(applied.groups)
    local = _local_fused_tables(model, groups)
    unfused = _unfused_tables(model, groups)
    return _combine(model, config, groups, local, unfused)


def _combine(
    model: torch.nn.Module,
    config: OptimizerConfig,
    groups: list[TableGroup],
    local: dict[str, list[FusedTable]],
    unfused: list[tuple[TableGroup, list[Table]]],
) -> tuple[torch.optim.Optimizer, LRShim]:
    table_names = {table.parameter_name for group in groups for table in group.tables}
    table_names |= _fused_parameter_keys(model)
    named = {name: parameter for name, parameter in named_parameters(model)}
    dense_left = [
        name for name, parameter in named.items() if name not in table_names and parameter.requires_grad
    ]
    planned_groups: list[ParamGroup] = []
    dense_plan: OptimizerPlan | None = None
    if dense_left:
        dense_plan = plan_optimizer(model, config, leave_out=table_names)
        planned_groups.extend(dense_plan.groups)
    unfused_groups = []
    for group, tables in unfused:
        algorithm = group.algorithm.dense_algorithm()
        if algorithm is None:
            listing = ", ".join(repr(table.name) for table in tables)
            raise ValueError(
                f"{group.path}: the table(s) {listing} have no fused kernel (the planner shards them "
                f"data_parallel, or gave them a dense kernel) and {group.algorithm.key} has no python "
                "implementation to train them with; keep them out of data_parallel (a ParameterConstraints "
                "with sharding_types=['table_wise'] or another) or give them a rule with exact_sgd, "
                "exact_adagrad, exact_row_wise_adagrad (l2 or no weight decay) or adam"
            )
        unfused_groups.append(
            ParamGroup(
                name=group.name + DENSE_SUFFIX,
                params=[named[table.parameter_name] for table in tables],
                param_names=[table.parameter_name for table in tables],
                algorithm=algorithm,
                schedule=group.schedule,
                reduce_on_plateau=group.reduce_on_plateau,
            )
        )
    dense_planned = list(dense_plan.optimizers) if dense_plan is not None else []
    planned = dense_planned + list(plan_torch_optimizers(unfused_groups))
    children: list[torch.optim.Optimizer] = []
    for item in planned:
        child = build_torch_optimizer(item, model)
        ResumeContract(item.groups, config.resume).attach(child)
        children.append(child)
    fused_groups = [group for group in groups if _has_fused_tables(model, group)]
    if fused_groups:
        children.append(
            FusedTableOptimizer(
                [(group, local.get(group.name, [])) for group in fused_groups],
                [compute_lr(group.schedule, 0) for group in fused_groups],
                resume_policy=config.resume,
            )
        )
    schedules: dict[str, LearningRate] = {group.name: group.schedule for group in planned_groups}
    multipliers = {group.name: group.lr_multiplier for group in planned_groups}
    for unfused_group in unfused_groups:
        schedules[unfused_group.name] = unfused_group.schedule
    for fused_group in fused_groups:
        schedules[fused_group.name] = fused_group.schedule
    # The dense groups' plateaus, then each table group's own (its `.dense` part reacts alike: the same
    # metric and setting give the same reductions).
    plateaus = {} if dense_plan is None else dense_plan.plateaus()
    table_groups: list[ParamGroup | TableGroup] = [*unfused_groups, *fused_groups]
    for table_group in table_groups:
        if table_group.reduce_on_plateau is not None:
            plateaus[table_group.name] = table_group.reduce_on_plateau
    if not children:
        raise ValueError(f"{type(model).__name__} has nothing to optimize")
    optimizer = CombinedOptimizer(children, list(schedules))
    scheduler = LRShim(
        optimizer,
        schedules,
        lr_multipliers=multipliers,
        schedule_position=config.schedule_position,
        plateaus=plateaus,
    )
    scheduler.resume_policy = config.resume
    return optimizer, scheduler


def _plan_entries(model: Any) -> dict[tuple[str, str], Any]:
    """(module name, table name) -> torchrec's ``ParameterSharding`` of the model's sharding plan."""
    entries = {}
    for module_name, tables in model.plan.plan.items():
        for table_name, sharding in getattr(tables, "items", lambda: [])():
            entries[(module_name, table_name)] = sharding
    return entries


def _has_fused_tables(model: Any, group: TableGroup) -> bool:
    entries = _plan_entries(model)
    return any(
        entries[(table.module_name, table.name)].compute_kernel in FUSED_KERNELS
        for table in group.tables
        if (table.module_name, table.name) in entries
    )


def _unfused_tables(model: Any, groups: list[TableGroup]) -> list[tuple[TableGroup, list[Table]]]:
    entries = _plan_entries(model)
    found = []
    for group in groups:
        tables = []
        for table in group.tables:
            sharding = entries.get((table.module_name, table.name))
            if sharding is None:
                raise ValueError(
                    f"table {table.name!r} ({table.parameter_name}) of {group.path} is not in the sharding "
                    "plan of the model: it was not sharded"
                )
            if sharding.compute_kernel not in FUSED_KERNELS:
                tables.append(table)
        if tables:
            found.append((group, tables))
    return found


def _kernels(optimizer: Any) -> Iterator[Any]:
    """The leaf optimizers (one per FBGEMM kernel) of torchrec's fused optimizer."""
    children = getattr(optimizer, "optimizers", None)
    if children is not None and not hasattr(optimizer, "_emb_module"):
        for _, child in children:
            yield from _kernels(child)
    elif getattr(optimizer, "params", None):
        yield optimizer


def _fused_parameter_keys(model: Any) -> set[str]:
    return set(model.fused_optimizer.params) if is_sharded(model) else set()


def _local_fused_tables(model: Any, groups: list[TableGroup]) -> dict[str, list[FusedTable]]:
    fused = model.fused_optimizer
    key_of = {id(tensor): key for key, tensor in fused.params.items()}
    owner = {table.parameter_name: (group, table) for group in groups for table in group.tables}
    local: dict[str, list[FusedTable]] = {group.name: [] for group in groups}
    for kernel in _kernels(fused):
        members = [(key_of[id(tensor)], key) for key, tensor in kernel.params.items()]
        claims: dict[str, list[str]] = {}
        for full_name, _ in members:
            if full_name not in owner:
                raise ValueError(
                    f"a fused kernel of the sharded model holds {full_name!r}, which no table rule claims "
                    "(was it given an in-backward optimizer some other way?); give it a rule, or leave it "
                    "without an optimizer"
                )
            group, table = owner[full_name]
            claims.setdefault(group.name, []).append(table.name)
        if len(claims) > 1:
            listing = "; ".join(f"{name}: {', '.join(tables)}" for name, tables in claims.items())
            raise ValueError(
                f"tables of different table groups share one fused kernel ({listing}): a kernel reads one "
                "learning rate, so they could not follow their own schedules; was the model sharded with "
                "other fused params than apply_table_rules set?"
            )
        group = owner[members[0][0]][0]
        emb_module = getattr(kernel, "_emb_module", None)
        if emb_module is not None:
            problems = []
            kernel_type = str(getattr(emb_module, "optimizer", ""))
            if kernel_type != group.algorithm.key:
                problems.append(
                    f"optimizer {kernel_type!r} in the kernel, {group.algorithm.key!r} in the rule"
                )
            args = getattr(emb_module, "optimizer_args", None)
            if args is not None:
                problems += group.algorithm.kernel_differences(args)
            if problems:
                raise ValueError(
                    f"{group.path}: the fused kernel of its table(s) {', '.join(claims[group.name])} "
                    f"does not run the rule's algorithm: {'; '.join(problems)}"
                )
        for full_name, key in members:
            table = owner[full_name][1]
            local[group.name].append(
                FusedTable(full_name, kernel, key, (table.num_embeddings, table.embedding_dim))
            )
    return local


__all__ = ["DENSE_SUFFIX", "build_table_optimizer", "is_sharded", "needs_table_build"]
