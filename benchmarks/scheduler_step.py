"""Benchmark 2: ``LRShim.step()`` vs torch's ``SequentialLR(LinearLR, CosineAnnealingLR)`` and ``LambdaLR``.

The same warmup-then-cosine shape (100 ramp steps, then cosine to 1e-3 over 10**6 steps) on an SGD
optimizer with 1, 16 and 256 param groups, each group with its own peak learning rate (so no two
groups share a schedule config; `LRShim (shared schedule)` gives all groups one config, as
SequentialLR and LambdaLR do); the time is per ``scheduler.step()`` call.

Run alone: ``python -m benchmarks.scheduler_step``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR

from benchmarks.common import interleaved_medians, verdict
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.schedules import LearningRate, LinearRampToCosine

GROUP_COUNTS = (1, 16, 256)
PEAK, FINAL, RAMP, TOTAL = 0.1, 1e-3, 100, 10**6


def _optimizer(groups: int) -> torch.optim.Optimizer:
    optimizer = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(groups)], lr=PEAK
    )
    optimizer.step()  # no gradients: a no-op that tells torch's schedulers the optimizer stepped
    return optimizer


def _lambda(step: int) -> float:
    if step < RAMP:
        return step / RAMP
    progress = min(1.0, (step - RAMP) / (TOTAL - RAMP))
    return (FINAL + (PEAK - FINAL) * 0.5 * (1 + math.cos(math.pi * progress))) / PEAK


def _lr_dict(groups: int) -> dict[str, LearningRate]:
    """One schedule per group, each with its own peak (as towers with their own learning rates):
    the worst case for LRShim, which evaluates a schedule shared by several groups once."""
    return {
        f"group_{index}": LearningRate(
            linear_ramp_to_cosine=LinearRampToCosine(
                learning_rate=PEAK * (1 + index / 1000),
                num_ramp_steps=RAMP,
                final_learning_rate=FINAL,
                final_num_steps=TOTAL,
            )
        )
        for index in range(groups)
    }


def _shared_lr_dict(groups: int) -> dict[str, LearningRate]:
    """Every group on the same schedule (SequentialLR's and LambdaLR's setting)."""
    shared = _lr_dict(1)["group_0"]
    return {f"group_{index}": shared for index in range(groups)}


SCHEDULERS: dict[str, Callable[[int], LRScheduler]] = {
    "LRShim": lambda groups: LRShim(_optimizer(groups), _lr_dict(groups)),
    "LRShim (shared schedule)": lambda groups: LRShim(_optimizer(groups), _shared_lr_dict(groups)),
    "SequentialLR": lambda groups: _sequential(_optimizer(groups)),
    "LambdaLR": lambda groups: LambdaLR(_optimizer(groups), _lambda),
}


def _sequential(optimizer: torch.optim.Optimizer) -> LRScheduler:
    ramp = LinearLR(optimizer, start_factor=1 / RAMP, end_factor=1.0, total_iters=RAMP)
    cosine = CosineAnnealingLR(optimizer, T_max=TOTAL - RAMP, eta_min=FINAL)
    return SequentialLR(optimizer, [ramp, cosine], milestones=[RAMP])


def run(repeats: int = 9) -> tuple[dict[int, dict[str, float]], list[tuple[str, float, float, str]]]:
    """Seconds per ``step()`` by group count and scheduler, and the target rows."""
    results: dict[int, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for groups in GROUP_COUNTS:
            schedulers = {name: build(groups) for name, build in SCHEDULERS.items()}
            results[groups] = interleaved_medians(
                {name: scheduler.step for name, scheduler in schedulers.items()}, repeats
            )
    targets = []
    for name in ("LRShim", "LRShim (shared schedule)"):
        for groups in (1, 16):
            ratio = results[groups][name] / results[groups]["SequentialLR"]
            targets.append((f"{name} / SequentialLR at {groups} groups", ratio, 0.5, verdict(ratio, 0.5)))
    return results, targets


def table(results: dict[int, dict[str, float]]) -> str:
    lines = [
        "| groups | LRShim µs | LRShim (shared schedule) µs | SequentialLR µs | LambdaLR µs "
        "| LRShim/SequentialLR | shared/SequentialLR | LRShim/LambdaLR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for groups, seconds in results.items():
        us = {name: value * 1e6 for name, value in seconds.items()}
        shared = us["LRShim (shared schedule)"]
        lines.append(
            f"| {groups} | {us['LRShim']:.1f} | {shared:.1f} | {us['SequentialLR']:.1f} "
            f"| {us['LambdaLR']:.1f} | {us['LRShim'] / us['SequentialLR']:.2f} "
            f"| {shared / us['SequentialLR']:.2f} | {us['LRShim'] / us['LambdaLR']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    results, targets = run()
    print(table(results))
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.2f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
