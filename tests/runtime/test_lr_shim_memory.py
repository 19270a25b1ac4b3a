"""No unbounded growth, at the issue's full size: 1,000,000 ``LRShim.step()`` calls at 256 groups.

It measures the resident set size; with the compiled per-kind closures it takes about 25 s on our
2-core machine (323 s with the first, generic LRShim). The fast tracemalloc check of the same
scheduler is in ``test_lr_shim.py``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from tests.runtime.test_lr_shim import shim_with_groups


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
