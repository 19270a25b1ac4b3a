"""The demo job's model and data: a small multi-task ranking model on synthetic engagement labels.

The model has the shape of a recommendation ranker (the Heavy Ranker's, in miniature): categorical
features through embedding tables, a shared MLP backbone, and one tower per task predicting the
probability of an engagement. Module names follow the param-group convention, so that rules such as
``towers.is_favorited.*`` or ``*embedding*`` match: ``embeddings.<feature>``, ``backbone``,
``towers.<task>``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

TASKS = ("is_favorited", "is_replied", "is_retweeted")
"""The tasks of the demo model: one tower each."""


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """The sizes of the demo model and its data."""

    dense_features: int = 32
    categorical_features: int = 2
    vocabulary_size: int = 500
    embedding_dim: int = 16
    hidden: int = 128
    tower_hidden: int = 32
    dropout: float = 0.1
    tasks: tuple[str, ...] = TASKS


class RankingModel(nn.Module):
    """Embeddings + MLP backbone + one tower per task; returns one logit per task.

    Examples:
      >>> model = RankingModel(ModelShape())
      >>> sorted({name.split(".")[0] for name, _ in model.named_parameters()})
      ['backbone', 'embeddings', 'towers']
      >>> [name for name, _ in model.named_parameters() if name.startswith("towers.is_replied")]
      ['towers.is_replied.0.weight', 'towers.is_replied.0.bias', 'towers.is_replied.2.weight',
       'towers.is_replied.2.bias']
    """

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        self.embeddings = nn.ModuleDict(
            {
                f"feature_{index}": nn.Embedding(shape.vocabulary_size, shape.embedding_dim)
                for index in range(shape.categorical_features)
            }
        )
        inputs = shape.dense_features + shape.categorical_features * shape.embedding_dim
        self.backbone = nn.Sequential(
            nn.Linear(inputs, shape.hidden),
            nn.ReLU(),
            nn.Dropout(shape.dropout),
            nn.Linear(shape.hidden, shape.hidden),
            nn.ReLU(),
        )
        self.towers = nn.ModuleDict(
            {
                task: nn.Sequential(
                    nn.Linear(shape.hidden, shape.tower_hidden), nn.ReLU(), nn.Linear(shape.tower_hidden, 1)
                )
                for task in shape.tasks
            }
        )

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, tasks)`` from dense features and categorical ids."""
        embedded = [table(categorical[:, index]) for index, table in enumerate(self.embeddings.values())]
        hidden = self.backbone(torch.cat([dense, *embedded], dim=1))
        return torch.cat([tower(hidden) for tower in self.towers.values()], dim=1)


class SyntheticRankingData:
    """An endless stream of synthetic examples, fixed by ``seed``: one fresh batch per position.

    Labels are Bernoulli draws from a random "teacher" (a function of the dense features plus a
    per-id effect of each categorical feature), so there is something to learn and a floor the loss
    cannot pass. ``batch(position)`` depends on nothing but the seed and the position: the data
    position is all a checkpoint needs to continue the same stream.
    """

    def __init__(self, shape: ModelShape, *, seed: int, batch_size: int = 256) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.seed = seed
        self.batch_size = batch_size
        tasks = len(shape.tasks)
        self.dense_weights = torch.randn(shape.dense_features, tasks, generator=generator)
        self.id_effects = torch.randn(
            shape.categorical_features, shape.vocabulary_size, tasks, generator=generator
        )

    def batch(self, position: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``position``-th batch of the stream: ``(dense, categorical, labels)``."""
        shape = self.shape
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + position)
        dense = torch.randn(self.batch_size, shape.dense_features, generator=generator)
        categorical = torch.randint(
            shape.vocabulary_size, (self.batch_size, shape.categorical_features), generator=generator
        )
        logits = torch.tanh(dense @ self.dense_weights / shape.dense_features**0.5) * 2.0
        for feature in range(shape.categorical_features):
            logits = logits + self.id_effects[feature, categorical[:, feature]]
        labels = torch.bernoulli(torch.sigmoid(logits), generator=generator)
        return dense, categorical, labels


def ranking_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the examples and summed over the tasks."""
    per_task = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=0)
    return per_task.sum()


__all__ = ["TASKS", "ModelShape", "RankingModel", "SyntheticRankingData", "ranking_loss"]


def make_model(**sizes: Any) -> RankingModel:
    """The demo model with the sizes of :class:`ModelShape`, as ``tml-optim groups --model`` calls it
    (``--model tml.optimizers.demo.model:make_model --model-arg hidden=64``)."""
    return RankingModel(ModelShape(**sizes))
