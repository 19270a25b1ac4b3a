"""Timing helpers shared by the benchmarks: interleaved repeats, medians, stream bandwidth."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def interleaved_medians(
    variants: Mapping[str, Callable[[], object]], repeats: int, sample_seconds: float = 0.02
) -> dict[str, float]:
    """The median time per call of each variant, in seconds.

    The variants run in turn, round after round (a noisy neighbour slows all of them, not one
    alone). Each sample times enough consecutive calls to last about ``sample_seconds`` (one call
    for slow variants), after one warm-up call that also allocates lazily built state.
    """
    calls: dict[str, int] = {}
    for name, run in variants.items():
        run()
        start = time.perf_counter()
        run()
        calls[name] = max(1, round(sample_seconds / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                run()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def stream_bandwidth(numel: int = 1 << 24, repeats: int = 9) -> dict[str, float]:
    """Memory bandwidth in bytes/s of two STREAM-style kernels on float32 arrays of ``numel``.

    * ``in-place add`` (``a += s·b``: read a and b, write a; 12 bytes per element): the access
      pattern of an optimizer step, which updates its tensors in place. The floor uses this one.
    * ``triad`` (STREAM's ``a = b + s·c``, counted as STREAM does, 12 bytes per element): its store
      to a third array also reads that array into the cache first (write-allocate), which STREAM does
      not count, so it reports less bandwidth than the memory delivers to in-place updates.

    The arrays (64 MB each by default) are twice the 32 MB L3 cache of the reference machine.
    """
    a, b, c = (torch.rand(numel) for _ in range(3))
    seconds = interleaved_medians(
        {
            "in-place add": lambda: a.add_(b, alpha=1e-9),
            "triad": lambda: torch.add(b, c, alpha=3.0, out=a),
        },
        repeats,
    )
    return {name: 12 * numel / value for name, value in seconds.items()}


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    """``met`` or ``missed by x%`` for a ratio and its target."""
    met = value <= target if lower_is_better else value >= target
    if met:
        return "met"
    miss = value / target - 1 if lower_is_better else target / value - 1
    return f"MISSED by {miss:.1%}"
