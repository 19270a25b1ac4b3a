"""No unbounded growth: LRShim.step() at 256 param groups keeps memory flat.

The fast test steps 2,000 times under tracemalloc: a leak of one object per step (per group) would
show as tens of kilobytes (megabytes). The issue's full size, 1,000,000 steps at 256 groups, measures
the resident set size; with the compiled per-kind closures it takes about 25 s on our 2-core
machine (323 s with the first, generic LRShim).
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import torch

from tml.optimizers import LearningRate, LinearRampToCosine, LRShim, PiecewiseConstant

GROUPS = 256


def shim_with_groups(groups: int = GROUPS) -> LRShim:
    """An SGD optimizer with ``groups`` one-parameter groups, alternating two schedule kinds."""
    parameters = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    optimizer = torch.optim.SGD([{"params": [parameter]} for parameter in parameters], lr=0.1)
    cosine = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=0.1, final_learning_rate=0.001, num_ramp_steps=100, final_num_steps=500_000
        )
    )
    steps = LearningRate(
        piecewise_constant=PiecewiseConstant(
            learning_rate_boundaries=[10, 1000, 100_000], learning_rate_values=[0.1, 0.05, 0.01, 0.001]
        )
    )
    return LRShim(optimizer, {f"group_{index}": cosine if index % 2 else steps for index in range(groups)})


def test_step_memory_is_flat_under_tracemalloc() -> None:
    scheduler = shim_with_groups()
    for _ in range(500):  # warm-up: caches and free lists settle
        scheduler.step()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(1_500):
            scheduler.step()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One leaked float per step would be 1,500 * 24 bytes = 36 KB; one per group, 9 MB.
    assert after - before < 16 * 1024, f"traced memory grew by {after - before} bytes over 1,500 steps"
    assert scheduler.last_epoch == 2_000
    assert len(scheduler.get_last_lr()) == GROUPS


def resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def test_one_million_steps_at_256_groups_keep_rss_flat() -> None:
    scheduler = shim_with_groups()
    for _ in range(10_000):
        scheduler.step()
    gc.collect()
    start = resident_bytes()
    samples = []
    for _ in range(10):
        for _ in range(99_000):
            scheduler.step()
        gc.collect()
        samples.append(resident_bytes() - start)
    assert scheduler.last_epoch == 1_000_000
    # A leak of a single float per step would add 24 MB; allow allocator noise.
    assert max(samples) < 4 * 1024 * 1024, f"RSS growth per 99,000 steps: {samples}"
