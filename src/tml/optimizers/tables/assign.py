"""The tables of a torchrec model, and their assignment to the config's table rules.

A table is an entry of an ``EmbeddingBagCollection`` or ``EmbeddingCollection`` anywhere in the
model (an ``EmbeddingBagConfig`` / ``EmbeddingConfig``): its name, the module holding it and its
weight. :func:`assign_tables` gives every table to the first rule whose patterns match its name; a
rule that matches no table, one whose tables are all claimed earlier, and a table no rule claims are
errors that name the rule (``embedding_tables[1] 'small'``) or the table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from tml.optimizers.groups.names import some_names, unwrapped_name
from tml.optimizers.groups.patterns import compile_pattern
from tml.optimizers.schedules import LearningRate
from tml.optimizers.schedules.plateau import ReduceOnPlateau
from tml.optimizers.tables.algorithms import TableAlgorithmConfig

if TYPE_CHECKING:
    from tml.optimizers.config import OptimizerConfig


@dataclasses.dataclass(frozen=True)
class Table:
    """One embedding table of a model, before sharding."""

    name: str
    """The table's name (``EmbeddingBagConfig.name``): what the rules' patterns match."""
    module_name: str
    """The name of the collection holding it in the model (wrappers left out)."""
    parameter_name: str
    """The name of its weight in the model (``ebc.embedding_bags.user.weight``): the key torchrec's
    fused optimizer gives its state."""
    parameter: torch.nn.Parameter
    num_embeddings: int
    embedding_dim: int


@dataclasses.dataclass(frozen=True)
class TableGroup:
    """The tables one rule claims, with the rule's algorithm and schedule."""

    name: str
    path: str
    """Where the rule stands in the config, for messages (``embedding_tables[0] 'ids'``)."""
    algorithm: TableAlgorithmConfig
    schedule: LearningRate
    tables: tuple[Table, ...]
    reduce_on_plateau: ReduceOnPlateau | None = None
    """The rule's metric-driven decay, if it sets one."""

    @property
    def table_names(self) -> list[str]:
        """The names of the group's tables, in the model's order."""
        return [table.name for table in self.tables]


def is_table_collection(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a torchrec ``EmbeddingBagCollection`` or ``EmbeddingCollection``
    (unsharded). ``False`` when torchrec is not installed."""
    try:
        from torchrec import EmbeddingBagCollection, EmbeddingCollection
    except ImportError:
        return False
    return isinstance(module, (EmbeddingBagCollection, EmbeddingCollection))


def find_tables(model: torch.nn.Module) -> list[Table]:
    """Every table of the (unsharded) collections in ``model``, in the order of the modules."""
    from torchrec import EmbeddingBagCollection

    tables = []
    for raw_name, module in model.named_modules():
        if not is_table_collection(module):
            continue
        module_name = unwrapped_name(model, f"{raw_name}.x")[: -len(".x")] if raw_name else ""
        if isinstance(module, EmbeddingBagCollection):
            configs, holder, attribute = (
                module.embedding_bag_configs(),
                module.embedding_bags,
                "embedding_bags",
            )
        else:
            configs, holder, attribute = module.embedding_configs(), module.embeddings, "embeddings"
        for config in configs:
            prefix = f"{module_name}.{attribute}" if module_name else attribute
            tables.append(
                Table(
                    name=config.name,
                    module_name=module_name,
                    parameter_name=f"{prefix}.{config.name}.weight",
                    parameter=holder[config.name].weight,
                    num_embeddings=config.num_embeddings,
                    embedding_dim=config.embedding_dim,
                )
            )
    return tables


def assign_tables(model: torch.nn.Module, config: OptimizerConfig) -> list[TableGroup]:
    """The table groups of ``model`` under ``config.embedding_tables``, in rule order.

    Raises:
      ValueError: the config has no table rules; the model has no table; a rule matches no table, or
        only tables an earlier rule claims; a table no rule claims (each message names the rule's
        path or the table, and the tables there are).
    """
    rules = config.embedding_tables
    if not rules:
        raise ValueError(
            "the config has no embedding_tables rules: give one per table group (a last rule "
            "tables: ['*'] gives every other table one algorithm)"
        )
    tables = find_tables(model)
    if not tables:
        raise ValueError(
            f"{type(model).__name__} has no EmbeddingBagCollection or EmbeddingCollection, but the "
            "config has embedding_tables rules"
        )
    names = [table.name for table in tables]
    owner: dict[int, int] = {}
    for rule_index, rule in enumerate(rules):
        path = _path(rule_index, rule.name)
        matched = []
        for pattern in rule.tables:
            predicate = compile_pattern(pattern)
            found = [position for position, name in enumerate(names) if predicate(name)]
            if not found:
                raise ValueError(
                    f"{path}: its pattern {pattern!r} matches no table of {type(model).__name__}; a typo "
                    f"must not pass silently: fix or remove it; its tables: {some_names(names, [pattern])}"
                )
            matched.extend(found)
        claimed = [position for position in dict.fromkeys(matched) if position not in owner]
        if not claimed:
            earlier = sorted({owner[position] for position in matched})
            matched_names = some_names([names[position] for position in matched])
            raise ValueError(
                f"{path}: claims no table: every table it matches ({matched_names}) "
                f"is claimed by an earlier rule ({', '.join(_path(i, rules[i].name) for i in earlier)}), "
                "since the first rule that matches wins; move it before them, or remove it"
            )
        for position in claimed:
            owner[position] = rule_index
    unclaimed = [tables[position] for position in range(len(tables)) if position not in owner]
    if unclaimed:
        listing = ", ".join(f"{table.name!r} ({table.parameter_name})" for table in unclaimed)
        raise ValueError(
            f"no embedding_tables rule claims the table(s) {listing}: every table needs a rule (add a "
            "last rule with tables: ['*'] to give the rest one algorithm)"
        )
    schedules = config.table_schedules()
    return [
        TableGroup(
            name=rule.name,
            path=_path(rule_index, rule.name),
            algorithm=rule.algorithm(),
            schedule=schedules[rule.name],
            tables=tuple(tables[p] for p in sorted(p for p, r in owner.items() if r == rule_index)),
            reduce_on_plateau=rule.plateau(),
        )
        for rule_index, rule in enumerate(rules)
    ]


def _path(index: int, name: str) -> str:
    return f"embedding_tables[{index}] {name!r}"


def table_parameter_names(groups: Sequence[TableGroup]) -> set[str]:
    """The parameter names of every table of ``groups``."""
    return {table.parameter_name for group in groups for table in group.tables}


__all__ = [
    "Table",
    "TableGroup",
    "assign_tables",
    "find_tables",
    "is_table_collection",
    "table_parameter_names",
]
