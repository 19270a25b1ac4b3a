"""``describe_param_groups(model, config)``: the param groups ``build_optimizer`` would build, as rows;
``describe_table_groups(model, config)``: the table groups of a torchrec model's ``embedding_tables``.

What users ask most — which of my parameters went where, with which algorithm, kernel, learning
rate and weight decay, and how much optimizer state — answered from the plan
(``tml.optimizers.plan``), so nothing is built and the model is not touched. ``tml-optim groups``
prints the same rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.plan import PlannedOptimizer, plan_optimizer
from tml.optimizers.schedules import compute_lr, schedule_bounds
from tml.optimizers.tables.algorithms import TABLE_ALGORITHMS
from tml.optimizers.tables.assign import assign_tables, table_parameter_names

Kernel = Literal["fused", "foreach", "for_loop", "flat"]
"""How a group is stepped: torch's fused kernel, its foreach kernel, its for-loop, or one flat buffer."""


@dataclasses.dataclass(frozen=True)
class ParameterDescription:
    """One parameter: its name (as the config's patterns see it), shape and group."""

    name: str
    shape: tuple[int, ...]
    group: str


@dataclasses.dataclass(frozen=True)
class GroupDescription:
    """One param group as ``build_optimizer`` builds it."""

    name: str
    algorithm: str
    """The algorithm key (``adam``)."""
    torch_class: str
    """The torch optimizer's class name (``Adam``)."""
    kernel: Kernel
    lr_at_start: float
    """The group's learning rate at step 0 (its schedule's value times its multiplier)."""
    lr_peak: float
    """The greatest learning rate the group takes over all steps."""
    weight_decay: float | None
    """``None`` for an algorithm without weight decay."""
    lr_multiplier: float
    tensors: int
    elements: int
    state_bytes: int | None
    """Bytes of per-parameter optimizer state once stepped (moments, accumulators; 0-dim counters
    left out); ``None`` when the algorithm's state is not known (a ``custom`` class)."""
    parameters: tuple[ParameterDescription, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (``--format json``)."""
        data = dataclasses.asdict(self)
        data["parameters"] = [
            {**parameter, "shape": list(parameter["shape"])} for parameter in data["parameters"]
        ]
        return data


def describe_param_groups(model: torch.nn.Module, config: OptimizerConfig) -> list[GroupDescription]:
    """Every param group of ``build_optimizer(model, config)``, in the optimizer's order, described.

    Companion groups (``<group>.no_weight_decay``, ``.layer_<l>``) are listed as built. Nothing is
    built and the model is not changed. With ``embedding_tables`` rules the tables they claim are
    left out (see :func:`describe_table_groups`).

    Raises:
      ValueError: as ``build_optimizer``: the model does not fit the config's rules.

    Examples:
      >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
      >>> config = OptimizerConfig.model_validate({
      ...     "adamw": {"lr": 0.001}, "exclude_from_weight_decay": ["bias"]})
      >>> [(g.name, g.kernel, g.weight_decay, g.tensors, g.elements, g.state_bytes)
      ...  for g in describe_param_groups(model, config)]
      [('default', 'fused', 0.01, 2, 20, 160), ('default.no_weight_decay', 'fused', 0.0, 2, 5, 40)]
    """
    leave_out = table_parameter_names(assign_tables(model, config)) if config.embedding_tables else set()
    plan = plan_optimizer(model, config, leave_out=leave_out)
    described: dict[str, GroupDescription] = {}
    for planned in plan.optimizers:
        for group, group_dict in zip(planned.groups, planned.param_groups, strict=True):
            algorithm = group.algorithm
            described[group.name] = GroupDescription(
                name=group.name,
                algorithm=algorithm.key,
                torch_class=planned.torch_class.__name__,
                kernel=_kernel(planned, group_dict),
                lr_at_start=group.lr_multiplier * compute_lr(group.schedule, 0),
                lr_peak=group.lr_multiplier * schedule_bounds(group.schedule)[1],
                weight_decay=group_dict.get("weight_decay"),
                lr_multiplier=group.lr_multiplier,
                tensors=len(group.params),
                elements=sum(parameter.numel() for parameter in group.params),
                state_bytes=_state_bytes(group.algorithm, group.params),
                parameters=tuple(
                    ParameterDescription(name, tuple(parameter.shape), group.name)
                    for name, parameter in zip(group.param_names, group.params, strict=True)
                ),
            )
    return [described[group.name] for group in plan.groups]


def _state_bytes(algorithm: OptimizerAlgorithmConfig, params: list[torch.nn.Parameter]) -> int | None:
    total = 0
    for parameter in params:
        elements = algorithm.state_elements(tuple(parameter.shape))
        if elements is None:
            return None
        total += elements * parameter.element_size()
    return total


def _kernel(planned: PlannedOptimizer, group_dict: dict[str, Any]) -> Kernel:
    if planned.flatten:
        return "flat"
    if group_dict.get("fused"):
        return "fused"
    return "foreach" if group_dict.get("foreach") else "for_loop"


STATE_FLOAT_BYTES = 4
"""FBGEMM keeps the optimizer state of float32 tables in float32."""


@dataclasses.dataclass(frozen=True)
class TableDescription:
    """One table of a table group: its name (what the rules match), rows and dimension."""

    name: str
    rows: int
    dim: int
    state_bytes: int
    """Bytes of optimizer state the group's kernel keeps for the table."""


@dataclasses.dataclass(frozen=True)
class TableGroupDescription:
    """One table group (an ``embedding_tables`` rule and the tables it claims), before sharding."""

    name: str
    algorithm: str
    """The table algorithm key, FBGEMM's name (``exact_row_wise_adagrad``)."""
    lr_at_start: float
    lr_peak: float
    weight_decay: float | None
    """``None`` for an algorithm without weight decay."""
    tables: tuple[TableDescription, ...]
    rows: int
    elements: int
    """Rows × dimension, summed over the tables."""
    state_bytes: int
    """Bytes of optimizer state of the group's kernels (summed over every shard of every table)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (``--format json``)."""
        return dataclasses.asdict(self)


def table_state_bytes(algorithm: str, rows: int, dim: int) -> int:
    """Bytes of optimizer state of a table of ``rows`` × ``dim`` under the table algorithm ``algorithm``.

    Examples:
      >>> table_state_bytes("exact_row_wise_adagrad", 1000, 64), table_state_bytes("adam", 1000, 64)
      (4000, 512000)
    """
    per_dim, per_row = TABLE_ALGORITHMS[algorithm].state_floats
    return rows * (per_dim * dim + per_row) * STATE_FLOAT_BYTES


def describe_table_groups(model: torch.nn.Module, config: OptimizerConfig) -> list[TableGroupDescription]:
    """The table groups of ``config.embedding_tables`` on the unsharded ``model``, in rule order; ``[]``
    without table rules. Nothing is sharded and the model is not changed.

    Raises:
      ValueError: the rules do not fit the model's tables (see ``assign_tables``).
    """
    if not config.embedding_tables:
        return []
    described = []
    for group in assign_tables(model, config):
        key = group.algorithm.key
        tables = tuple(
            TableDescription(
                table.name,
                table.num_embeddings,
                table.embedding_dim,
                table_state_bytes(key, table.num_embeddings, table.embedding_dim),
            )
            for table in group.tables
        )
        weight_decay = getattr(group.algorithm, "weight_decay", None)
        described.append(
            TableGroupDescription(
                name=group.name,
                algorithm=key,
                lr_at_start=compute_lr(group.schedule, 0),
                lr_peak=schedule_bounds(group.schedule)[1],
                weight_decay=None if weight_decay is None else float(weight_decay),
                tables=tables,
                rows=sum(table.rows for table in tables),
                elements=sum(table.rows * table.dim for table in tables),
                state_bytes=sum(table.state_bytes for table in tables),
            )
        )
    return described


__all__ = [
    "GroupDescription",
    "Kernel",
    "ParameterDescription",
    "TableDescription",
    "TableGroupDescription",
    "describe_param_groups",
    "describe_table_groups",
    "table_state_bytes",
]
