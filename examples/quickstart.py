"""Quickstart: load an optimizer config from YAML, build it for a model, train on synthetic data.

Run with ``.venv/bin/python examples/quickstart.py`` after ``make setup``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, build_optimizer

HERE = Path(__file__).parent


def make_data(samples: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic regression task: a fixed random two-layer teacher plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, features, generator=generator)
    teacher = torch.randn(features, 1, generator=generator) / features**0.5
    targets = torch.tanh(inputs @ teacher) + 0.01 * torch.randn(samples, 1, generator=generator)
    return inputs, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=HERE / "single_task.yaml")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--log-every", type=int, default=50)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = load_config_from_yaml(OptimizerConfig, args.config, key="optimizer")
    print(f"optimizer config from {args.config}:\n{config.pretty_print()}")

    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer, scheduler = build_optimizer(model, config)
    inputs, targets = make_data(samples=4096, features=16, seed=0)
    batch_size = 128

    for step in range(args.steps):
        start = step * batch_size % len(inputs)
        batch, target = inputs[start : start + batch_size], targets[start : start + batch_size]
        lr = scheduler.get_last_lr()[0]  # the learning rate this step trains with
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch), target)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % args.log_every == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.5f}  lr {lr:.6f}")


if __name__ == "__main__":
    main()
