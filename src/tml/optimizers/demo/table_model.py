"""The table demo's model and data: a torchrec ranking model of three embedding tables and two towers.

The model has the shape of the Heavy Ranker's sparse side in miniature: three categorical features,
each looked up in its own table of an ``EmbeddingBagCollection`` (``user_id``, ``item_id`` and the
small ``country``), the pooled embeddings concatenated with dense features, and one tower per binary
task. Its names fit ``examples/embedding_tables.yaml``: the rule ``["user_*", "item_*"]`` claims the
two id tables, ``["*"]`` the country table; the towers are ``towers.<task>``.

The data is a pure function of the seed and the position (as the dense demo's): a checkpoint needs
only the position to continue the same stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

TABLE_TASKS = ("is_clicked", "is_liked")
"""The binary tasks of the table model: one tower each."""

TABLE_ROWS = {"user_id": 1000, "item_id": 2000, "country": 10}
"""Table name -> rows. torchrec's default planner shards ``country`` (10 rows) data-parallel."""


@dataclasses.dataclass(frozen=True)
class TableModelShape:
    """The sizes of the table model and its data."""

    tables: tuple[tuple[str, int], ...] = tuple(TABLE_ROWS.items())
    """Each table's name (also its feature's) and rows."""
    embedding_dim: int = 8
    dense_features: int = 8
    tower_hidden: int = 16
    tasks: tuple[str, ...] = TABLE_TASKS

    @property
    def table_names(self) -> list[str]:
        return [name for name, _ in self.tables]


def _ids_to_features(ids: torch.Tensor, names: list[str]) -> Any:
    """A ``KeyedJaggedTensor`` of one id per bag and feature from ids of shape ``(batch, features)``."""
    from torchrec import KeyedJaggedTensor

    return KeyedJaggedTensor.from_lengths_sync(
        keys=names,
        values=ids.t().reshape(-1),
        lengths=torch.ones(ids.numel(), dtype=torch.int64),
    )


class TableRankingModel(nn.Module):
    """An ``EmbeddingBagCollection`` of three tables (``ebc``) and one tower per task (``towers``).

    ``forward(dense, ids)`` takes dense features ``(batch, dense_features)`` and one id per table
    ``(batch, tables)``, and returns one logit per task ``(batch, tasks)``.

    Examples:
      >>> model = TableRankingModel(TableModelShape())
      >>> [name for name, _ in model.named_parameters()][:3]  # doctest: +NORMALIZE_WHITESPACE
      ['ebc.embedding_bags.user_id.weight', 'ebc.embedding_bags.item_id.weight',
       'ebc.embedding_bags.country.weight']
      >>> sorted(model.towers)
      ['is_clicked', 'is_liked']
    """

    def __init__(self, shape: TableModelShape, device: str | torch.device = "cpu") -> None:
        super().__init__()
        import torchrec

        self.shape = shape
        self.names = shape.table_names
        self.ebc = torchrec.EmbeddingBagCollection(
            tables=[
                torchrec.EmbeddingBagConfig(
                    name=name, embedding_dim=shape.embedding_dim, num_embeddings=rows, feature_names=[name]
                )
                for name, rows in shape.tables
            ],
            device=torch.device(device),
        )
        inputs = shape.dense_features + len(shape.tables) * shape.embedding_dim
        self.towers = nn.ModuleDict(
            {
                task: nn.Sequential(
                    nn.Linear(inputs, shape.tower_hidden), nn.ReLU(), nn.Linear(shape.tower_hidden, 1)
                )
                for task in shape.tasks
            }
        )

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, tasks)``."""
        pooled = self.ebc(_ids_to_features(ids, self.names))  # key order is the sharding's: by name
        hidden = torch.cat([dense, *(pooled[name] for name in self.names)], dim=1)
        return torch.cat([tower(hidden) for tower in self.towers.values()], dim=1)


class SyntheticTableData:
    """An endless stream of synthetic examples, fixed by ``seed``: one fresh batch per position.

    Labels are Bernoulli draws from a random teacher: a function of the dense features plus a per-id
    effect of each table's id, so the tables have something to learn. ``batch(position)`` depends on
    nothing but the seed and the position.
    """

    def __init__(self, shape: TableModelShape, *, seed: int, batch_size: int = 128) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.seed = seed
        self.batch_size = batch_size
        tasks = len(shape.tasks)
        self.dense_weights = torch.randn(shape.dense_features, tasks, generator=generator)
        self.id_effects = [torch.randn(rows, tasks, generator=generator) for _, rows in shape.tables]

    def batch(self, position: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``position``-th batch of the stream: ``(dense, ids, labels)``."""
        shape = self.shape
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + position)
        dense = torch.randn(self.batch_size, shape.dense_features, generator=generator)
        ids = torch.stack(
            [torch.randint(rows, (self.batch_size,), generator=generator) for _, rows in shape.tables], dim=1
        )
        logits = torch.tanh(dense @ self.dense_weights / shape.dense_features**0.5)
        for index, effects in enumerate(self.id_effects):
            logits = logits + effects[ids[:, index]]
        labels = torch.bernoulli(torch.sigmoid(logits), generator=generator)
        return dense, ids, labels


def make_table_model(**sizes: Any) -> TableRankingModel:
    """The table model with the sizes of :class:`TableModelShape` (``embedding_dim``,
    ``dense_features``, ``tower_hidden``), as ``tml-optim groups --model`` calls it
    (``--model tml.optimizers.demo.table_model:make_table_model``)."""
    return TableRankingModel(TableModelShape(**sizes))


__all__ = [
    "TABLE_ROWS",
    "TABLE_TASKS",
    "SyntheticTableData",
    "TableModelShape",
    "TableRankingModel",
    "make_table_model",
]
