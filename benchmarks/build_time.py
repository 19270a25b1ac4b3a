"""Benchmark 4: ``build_optimizer`` on a model with 10,000 named parameters and 20 group rules.

The model: 40 towers of 125 ``Linear(4, 4)`` layers (weight and bias: 10,000 parameters). The
config: Adam with ``exclude_from_weight_decay: [bias]`` and 20 rules claiming the towers by glob
or regex, with their own schedules, multipliers, hyperparameters and (for some) SGD, so the build
creates 40 param groups and a ``CombinedOptimizer``. Target: ≤ 100 ms.

Run alone: ``python -m benchmarks.build_time``.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.common import verdict
from tml.optimizers import build_optimizer
from tml.optimizers.config import OptimizerConfig

TOWERS, LAYERS, RULES = 40, 125, 20
TARGET_MS = 100.0


def make_model() -> torch.nn.Module:
    towers = torch.nn.ModuleDict(
        {
            f"tower_{index}": torch.nn.Sequential(*(torch.nn.Linear(4, 4) for _ in range(LAYERS)))
            for index in range(TOWERS)
        }
    )
    model = torch.nn.Module()
    model.towers = towers
    return model


def make_config() -> OptimizerConfig:
    rules: list[dict[str, Any]] = []
    for index in range(RULES):
        rule: dict[str, Any] = {"name": f"rule_{index}"}
        if index % 2:
            rule["params"] = [f"towers.tower_{index}.*"]
        else:
            rule["params"] = [rf"re:^towers\.tower_{index}\."]
        if index % 4 == 0:
            rule["learning_rate"] = {"constant": 0.001 * (index + 1)}
        elif index % 4 == 1:
            rule["lr_multiplier"] = 0.5
        elif index % 4 == 2:
            rule["hyperparameters"] = {"weight_decay": 1e-5}
        else:
            rule["sgd"] = {"lr": 0.01, "momentum": 0.9}
        rules.append(rule)
    return OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.001, "weight_decay": 1e-4},
            "exclude_from_weight_decay": ["bias"],
            "learning_rate": {
                "linear_ramp_to_cosine": {
                    "learning_rate": 0.001,
                    "final_learning_rate": 1e-5,
                    "num_ramp_steps": 1000,
                    "final_num_steps": 100_000,
                }
            },
            "param_groups": rules,
        }
    )


def run(repeats: int = 7) -> tuple[dict[str, float], list[tuple[str, float, float, str]]]:
    """Median seconds of ``build_optimizer`` (a fresh model each time) and the target row."""
    config = make_config()
    times = []
    groups = 0
    for _ in range(repeats):
        model = make_model()
        start = time.perf_counter()
        optimizer, _ = build_optimizer(model, config)
        times.append(time.perf_counter() - start)
        groups = len(optimizer.param_groups)
    times.sort()
    median = times[len(times) // 2]
    parameters = sum(1 for _ in make_model().parameters())
    results = {"seconds": median, "parameters": parameters, "groups": groups, "rules": RULES}
    ms = median * 1e3
    return results, [
        (
            f"build_optimizer ms ({parameters:,} parameters, {RULES} rules)",
            ms,
            TARGET_MS,
            verdict(ms, TARGET_MS),
        )
    ]


def table(results: dict[str, float]) -> str:
    return (
        "| parameters | rules | param groups built | build_optimizer ms (median) |\n|---|---|---|---|\n"
        f"| {results['parameters']:,} | {results['rules']} | {results['groups']} "
        f"| {results['seconds'] * 1e3:.1f} |"
    )


def main() -> None:
    torch.set_num_threads(1)
    results, targets = run()
    print(table(results))
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.1f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
