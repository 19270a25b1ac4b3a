"""Small models and a training loop shared by the param-group, algorithm and recap tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import torch

from tml.optimizers import LRShim


class Block(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, width)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.linear(x)) + x)


class BlockModel(torch.nn.Module):
    """embedding -> blocks.0..n-1 -> head: timm-like names for layer decay."""

    def __init__(self, num_blocks: int = 3, width: int = 4) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(3, width)
        self.blocks = torch.nn.ModuleList(Block(width) for _ in range(num_blocks))
        self.head = torch.nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class TowerModel(torch.nn.Module):
    """recap-like: embeddings, a backbone, and one tower per task (module names sanitized)."""

    def __init__(self, tasks: list[str], width: int = 4, vocabulary: int = 16) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, width)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.LayerNorm(width))
        self.towers = torch.nn.ModuleDict(
            {
                task.replace(".", "__"): torch.nn.Sequential(torch.nn.Linear(width, 2), torch.nn.Linear(2, 1))
                for task in tasks
            }
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.backbone(self.embedding(ids).mean(dim=1))
        return torch.cat([tower(h) for tower in self.towers.values()], dim=1)


def tower_batch(step: int, vocabulary: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1000 + step)
    return torch.randint(0, vocabulary, (8, 5), generator=generator)


def block_batch(step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2000 + step)
    return torch.randn(8, 3, generator=generator)


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    steps: range,
    batch: Callable[[int], torch.Tensor],
    on_step: Callable[[int], None] | None = None,
) -> None:
    """``optimizer.step(); scheduler.step()`` once per step of ``steps`` on a squared loss."""
    for step in steps:
        optimizer.zero_grad()
        output = model(batch(step))
        (output**2).mean().backward()
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(step)


def round_trip(state: Any) -> Any:
    """``state`` through ``torch.save`` / ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def parameters_equal(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    first_state, second_state = first.state_dict(), second.state_dict()
    return first_state.keys() == second_state.keys() and all(
        torch.equal(first_state[key], second_state[key]) for key in first_state
    )


def small_model(seed: int = 0) -> torch.nn.Module:
    """A 4 → 8 → 1 MLP with seeded weights."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """One optimizer step of ``model`` on a regression batch that depends only on ``step``."""
    generator = torch.Generator().manual_seed(step)
    inputs = torch.randn(16, 4, generator=generator)
    targets = torch.randn(16, 1, generator=generator)
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(inputs), targets).backward()
    optimizer.step()
