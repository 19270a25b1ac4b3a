"""Embedding tables: torchrec's fused table optimizers from the same config, scheduled per table group.

Two calls, in this order::

    from tml.optimizers import apply_table_rules, build_optimizer

    apply_table_rules(model, config)                      # the unsharded model
    sharded = DistributedModelParallel(model, device=device)
    optimizer, scheduler = build_optimizer(sharded, config)

- ``algorithms``: the table algorithms (FBGEMM's kernel optimizers) and their hyperparameters;
- ``rules``: the ``embedding_tables`` rules of ``OptimizerConfig``;
- ``assign``: the tables of a model and the rule that claims each;
- ``apply``: :func:`apply_table_rules`, before sharding;
- ``fused``: :class:`FusedTableOptimizer`, torchrec's fused optimizer with one group per table group;
- ``build``: ``build_optimizer`` on the sharded model;
- ``original``: the original's per-table optimizer configs as table rules.
"""

from tml.optimizers.tables.algorithms import TABLE_ALGORITHMS, TableAlgorithmConfig
from tml.optimizers.tables.apply import apply_table_rules
from tml.optimizers.tables.assign import Table, TableGroup, assign_tables, find_tables
from tml.optimizers.tables.fused import FusedTableOptimizer
from tml.optimizers.tables.rules import TableRuleConfig

__all__ = [
    "TABLE_ALGORITHMS",
    "FusedTableOptimizer",
    "Table",
    "TableAlgorithmConfig",
    "TableGroup",
    "TableRuleConfig",
    "apply_table_rules",
    "assign_tables",
    "find_tables",
]
