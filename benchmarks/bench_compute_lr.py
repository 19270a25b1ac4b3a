"""Benchmark: vectorized ``compute_lr`` over 1,000,000 steps for every schedule kind.

Measured in the same run, for each kind:
- the best time of the vectorized ``compute_lr`` on a 1-D int64 numpy array of 1,000,000 steps;
- the ratio to the best time of one bare ``np.cos`` over the same array (target: ≤ 10×);
- a Python loop of scalar ``compute_lr`` calls (timed on ``--loop-steps`` steps, scaled to 1,000,000).

Usage: ``python benchmarks/bench_compute_lr.py [--steps N] [--repeats R] [--loop-steps L] [--threads T]``.
On a loaded machine torch's multi-threaded kernels wait for descheduled threads; ``--threads 1``
measures the single-threaded cost, like ``np.cos``'s.
Prints a Markdown table and exits with status 1 if a kind is over the 10× target.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from tml.optimizers.schedules import SCHEDULES, LearningRate, compute_lr

RATIO_TARGET = 10.0
ABSOLUTE_TARGET_MS = 60.0

CONFIGS: dict[str, dict[str, Any]] = {
    "constant": {"constant": 0.1},
    "piecewise_constant": {
        "piecewise_constant": {
            "learning_rate_boundaries": [100_000, 500_000, 800_000],
            "learning_rate_values": [0.1, 0.05, 0.01, 0.001],
        }
    },
    "linear_ramp_to_constant": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 10_000}},
    "linear_ramp_to_cosine": {
        "linear_ramp_to_cosine": {
            "learning_rate": 0.1,
            "final_learning_rate": 0.001,
            "num_ramp_steps": 10_000,
            "final_num_steps": 900_000,
        }
    },
    "linear": {"linear": {"start_learning_rate": 0.0, "end_learning_rate": 0.1, "steps": 500_000}},
    "piecewise_linear": {
        "piecewise_linear": {"boundaries": [0, 10_000, 600_000, 1_000_000], "values": [0.0, 0.1, 0.1, 0.0]}
    },
    "cosine_decay": {
        "cosine_decay": {
            "learning_rate": 0.1,
            "final_learning_rate": 0.001,
            "decay_steps": 900_000,
            "warmup_steps": 10_000,
        }
    },
    "polynomial_decay": {
        "polynomial_decay": {
            "learning_rate": 0.1,
            "decay_steps": 900_000,
            "power": 2.0,
            "warmup_steps": 10_000,
        }
    },
    "exponential_decay": {
        "exponential_decay": {
            "learning_rate": 0.1,
            "decay_rate": 0.5,
            "decay_steps": 100_000,
            "final_learning_rate": 0.001,
            "warmup_steps": 10_000,
        }
    },
    "multistep_decay": {
        "multistep_decay": {
            "learning_rate": 0.1,
            "milestones": [300_000, 600_000, 900_000],
            "gamma": 0.1,
            "warmup_steps": 10_000,
        }
    },
    "inverse_sqrt": {"inverse_sqrt": {"learning_rate": 0.1, "timescale": 10_000, "warmup_steps": 10_000}},
    "cosine_with_restarts": {
        "cosine_with_restarts": {
            "learning_rate": 0.1,
            "final_learning_rate": 0.001,
            "first_cycle_steps": 1_000,
            "cycle_multiplier": 2,
            "cycle_decay": 0.9,
            "warmup_steps": 10_000,
        }
    },
    "warmup_stable_decay": {
        "warmup_stable_decay": {
            "learning_rate": 0.1,
            "warmup_steps": 10_000,
            "stable_steps": 700_000,
            "decay_steps": 200_000,
            "decay_shape": "1-sqrt",
        }
    },
    "one_cycle": {"one_cycle": {"max_learning_rate": 0.1, "total_steps": 1_000_000, "three_phase": True}},
    "cyclic": {
        "cyclic": {
            "base_learning_rate": 0.001,
            "max_learning_rate": 0.1,
            "step_size_up": 2_000,
            "step_size_down": 3_000,
            "mode": "exp_range",
            "gamma": 0.99999,
        }
    },
    "sequence": {
        "sequence": [
            {
                "steps": 10_000,
                "schedule": {
                    "linear": {"start_learning_rate": 0.0, "end_learning_rate": 0.1, "steps": 10_000}
                },
            },
            {"steps": 500_000, "schedule": {"constant": 0.1}},
            {"schedule": {"cosine_decay": {"learning_rate": 0.1, "decay_steps": 490_000}}},
        ]
    },
    "anneal": {
        "anneal": {
            "schedule": {
                "warmup_stable_decay": {
                    "learning_rate": 0.1,
                    "warmup_steps": 10_000,
                    "stable_steps": 980_000,
                    "decay_steps": 10_000,
                }
            },
            "start_step": 700_000,
            "steps": 100_000,
            "shape": "1-sqrt",
        }
    },
}


def best_time(function: Callable[[], object], repeats: int) -> float:
    """The least wall time of ``repeats`` calls, in seconds (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--loop-steps", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    arguments = parser.parse_args()
    import numpy as np  # not a dependency of the package: imported here so CONFIGS can be reused

    missing = {kind.key for kind in SCHEDULES.values()} - set(CONFIGS)
    if missing:
        print(f"no benchmark config for: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    steps = np.arange(arguments.steps, dtype=np.int64)
    loop_steps = [int(step) for step in np.linspace(0, arguments.steps - 1, arguments.loop_steps)]

    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    print(
        f"steps: {arguments.steps:,}; best of {arguments.repeats}; torch threads: {torch.get_num_threads()}; "
        f"scalar loop timed on {len(loop_steps):,} steps"
    )
    print()
    print(
        "| kind | compute_lr (ms) | np.cos (ms) | ratio to np.cos "
        "| scalar loop, scaled (ms) | speed-up over loop |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    over = []
    for key, data in CONFIGS.items():
        schedule = LearningRate.model_validate(data)
        # np.cos is timed next to each kind, so both see the same machine load.
        cosine = best_time(lambda: np.cos(steps), arguments.repeats)
        vectorized = best_time(lambda schedule=schedule: compute_lr(schedule, steps), arguments.repeats)
        start = time.perf_counter()
        for step in loop_steps:
            compute_lr(schedule, step)
        loop = (time.perf_counter() - start) * arguments.steps / len(loop_steps)
        ratio = vectorized / cosine
        if ratio > RATIO_TARGET:
            over.append(key)
        print(
            f"| {key} | {vectorized * 1e3:.1f} | {cosine * 1e3:.1f} | {ratio:.2f}× | {loop * 1e3:,.0f} | "
            f"{loop / vectorized:,.0f}× |"
        )
    print()
    print(f"targets: ratio ≤ {RATIO_TARGET:g}×, absolute ≤ {ABSOLUTE_TARGET_MS:g} ms")
    if over:
        print(f"over the {RATIO_TARGET:g}× target: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
