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


def stream_bandwidth(numel: int = 1 << 24, repeats: int = 9) -> float:
    """Memory bandwidth in bytes/s: STREAM's triad ``a = b + s·c`` on float32 arrays of ``numel``.

    Three arrays of 64 MB (default) are twice the 32 MB L3 cache of the reference machine; the
    triad moves 12 bytes per element (two reads, one write).
    """
    a, b, c = (torch.rand(numel) for _ in range(3))
    seconds = interleaved_medians({"triad": lambda: torch.add(b, c, alpha=3.0, out=a)}, repeats)["triad"]
    return 12 * numel / seconds


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    """``met`` or ``missed by x%`` for a ratio and its target."""
    met = value <= target if lower_is_better else value >= target
    if met:
        return "met"
    miss = value / target - 1 if lower_is_better else target / value - 1
    return f"MISSED by {miss:.1%}"
