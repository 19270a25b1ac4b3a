"""Small models and a training loop shared by the param-group, algorithm and recap tests; the
metric sequences and settings of the ``reduce_on_plateau`` tests, and torch's peer scheduler."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st

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


METRIC_VALUES = st.one_of(
    st.sampled_from([1.0, 1.0, 0.99995, 0.9, 0.5, 0.0, -0.5, -1.0, 2.0]),  # repeats make plateaus
    st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)


@st.composite
def plateau_settings(draw: st.DrawFn) -> dict[str, Any]:
    """A ``reduce_on_plateau`` mapping over every field's range (torch's defaults included)."""
    threshold_mode = draw(st.sampled_from(["rel", "abs"]))
    threshold = draw(
        st.one_of(
            st.sampled_from([0.0, 1e-4, 0.01, 0.1]),
            st.floats(min_value=0.0, max_value=0.9 if threshold_mode == "rel" else 2.0),
        )
    )
    return {
        "metric": "loss",
        "mode": draw(st.sampled_from(["min", "max"])),
        "factor": draw(st.one_of(st.sampled_from([0.1, 0.5]), st.floats(min_value=0.01, max_value=0.99))),
        "patience": draw(st.integers(min_value=0, max_value=4)),
        "threshold": threshold,
        "threshold_mode": threshold_mode,
        "cooldown": draw(st.integers(min_value=0, max_value=3)),
        "min_learning_rate": draw(st.sampled_from([0.0, 1e-4, 0.02])),
    }


def torch_plateau(settings: dict[str, Any], lr: float, *, eps: float = 0.0) -> tuple[Any, Any]:
    """torch's ``ReduceLROnPlateau`` with the same settings over an SGD optimizer of one group."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=settings["mode"],
        factor=settings["factor"],
        patience=settings["patience"],
        threshold=settings["threshold"],
        threshold_mode=settings["threshold_mode"],
        cooldown=settings["cooldown"],
        min_lr=settings["min_learning_rate"],
        eps=eps,
    )
    return optimizer, scheduler


def compile_counting_graphs(
    function: Callable[..., Any],
) -> tuple[Callable[..., Any], list[torch.fx.GraphModule]]:
    """``torch.compile(function)`` (dynamo reset first) with a backend that records every graph it
    is given and runs it as is: the list's length is the number of compilations."""
    graphs: list[torch.fx.GraphModule] = []

    def counting_backend(graph: torch.fx.GraphModule, example_inputs: Any) -> Any:
        graphs.append(graph)
        return graph.forward

    torch._dynamo.reset()
    return torch.compile(function, backend=counting_backend), graphs
