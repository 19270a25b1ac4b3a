"""Benchmark 3: vectorized ``compute_lr`` over 1,000,000 steps vs a Python loop of scalar calls.

For every schedule kind (the configs of ``bench_compute_lr.py``): ``compute_lr`` on a 1-D int64
tensor of 1,000,000 steps, and a loop of scalar ``compute_lr(schedule, step)`` calls (timed on
20,000 evenly spaced steps, scaled to 1,000,000). Target: 1,000,000 values in ≤ 60 ms.

Run alone: ``python -m benchmarks.compute_lr_steps``.
"""

from __future__ import annotations

import time

import torch

from benchmarks.bench_compute_lr import ABSOLUTE_TARGET_MS, CONFIGS
from benchmarks.common import interleaved_medians, verdict
from tml.optimizers.schedules import LearningRate, compute_lr

STEPS = 1_000_000
LOOP_STEPS = 20_000


def run(repeats: int = 7) -> tuple[dict[str, dict[str, float]], list[tuple[str, float, float, str]]]:
    """Seconds for 1,000,000 values per kind (vectorized, scalar loop), and the target row."""
    steps = torch.arange(STEPS, dtype=torch.int64)
    loop_steps = [int(step) for step in torch.linspace(0, STEPS - 1, LOOP_STEPS).round().long().tolist()]
    schedules = {key: LearningRate.model_validate(data) for key, data in CONFIGS.items()}
    vectorized = interleaved_medians(
        {key: (lambda schedule=schedule: compute_lr(schedule, steps)) for key, schedule in schedules.items()},
        repeats,
    )
    results = {}
    for key, schedule in schedules.items():
        start = time.perf_counter()
        for step in loop_steps:
            compute_lr(schedule, step)
        loop = (time.perf_counter() - start) * STEPS / LOOP_STEPS
        results[key] = {"vectorized": vectorized[key], "loop": loop}
    worst = max(results, key=lambda key: results[key]["vectorized"])
    worst_ms = results[worst]["vectorized"] * 1e3
    within = sum(seconds["vectorized"] * 1e3 <= ABSOLUTE_TARGET_MS for seconds in results.values())
    typical_ms = results["linear_ramp_to_cosine"]["vectorized"] * 1e3
    targets = [
        (
            "1,000,000 schedule values, ms (linear_ramp_to_cosine)",
            typical_ms,
            ABSOLUTE_TARGET_MS,
            verdict(typical_ms, ABSOLUTE_TARGET_MS),
        ),
        (
            f"1,000,000 schedule values, ms (slowest kind: {worst}; {within}/{len(results)} kinds within)",
            worst_ms,
            ABSOLUTE_TARGET_MS,
            verdict(worst_ms, ABSOLUTE_TARGET_MS),
        ),
    ]
    return results, targets


def table(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| kind | vectorized ms | scalar loop ms (scaled) | loop / vectorized |",
        "|---|---|---|---|",
    ]
    for key, seconds in results.items():
        lines.append(
            f"| {key} | {seconds['vectorized'] * 1e3:.1f} | {seconds['loop'] * 1e3:,.0f} "
            f"| {seconds['loop'] / seconds['vectorized']:,.0f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    results, targets = run()
    print(table(results))
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.1f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
