"""Benchmark 5: peak memory of training steps with and without flat buffers.

torch's CPU allocations are invisible to ``tracemalloc``, so each variant runs in its own
subprocess and reads the kernel's resident-set high-water mark (``VmHWM`` in
``/proc/self/status``). The model is a ranking-style stack of many small MLP towers (64 towers ×
4 ``Linear(128, 128)``, 4.2 M parameters in 512 tensors); the optimizer is fused Adam, non-flat or
``FlatOptimizer``. Reported per variant:

The third variant, non-flat with ``zero_grad(set_to_none=False)``, keeps its gradients allocated
through the forward pass as flat buffers do: the difference between ``plain`` and ``flat`` is
mostly that (with ``set_to_none=True`` the forward pass reuses the gradients' memory).

* ``process peak``: the high-water mark of the whole process (imports, model, optimizer, 5 steps);
* ``training peak``: the high-water mark above the RSS measured after the imports and the model
  were built (so torch's ~300 MB of libraries do not dilute the ratio); this includes the flat
  buffers' construction.

Run alone: ``python -m benchmarks.memory``.
"""

from __future__ import annotations

import json
import subprocess
import sys

VARIANTS = ("plain", "plain, zero_grad(set_to_none=False)", "flat")
TOWERS, DEPTH, WIDTH, BATCH, STEPS = 64, 4, 128, 256, 5


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(variant: str) -> None:
    import torch

    from tml.optimizers.runtime.flat import FlatOptimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    towers = torch.nn.ModuleList(
        torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)]) for _ in range(TOWERS)
    )
    inputs = torch.randn(BATCH, WIDTH)
    baseline = _status_kb("VmRSS")
    if variant == "flat":
        optimizer: torch.optim.Optimizer = FlatOptimizer(
            towers.parameters(), torch.optim.Adam, lr=1e-3, fused=True
        )
    else:
        optimizer = torch.optim.Adam(towers.parameters(), lr=1e-3, fused=True)
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=variant == "plain")
        loss = sum(tower(inputs).square().mean() for tower in towers)
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
    peak = _status_kb("VmHWM")
    print(json.dumps({"process_peak_kb": peak, "training_peak_kb": peak - baseline}))


def run() -> tuple[dict[str, dict[str, int]], list[tuple[str, float, float, str]]]:
    """Peak memory per variant (kB) and the target row."""
    from benchmarks.common import verdict

    results = {}
    for variant in VARIANTS:
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--child", variant],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[variant] = json.loads(output.strip().splitlines()[-1])
    ratio = results["flat"]["training_peak_kb"] / results["plain"]["training_peak_kb"]
    return results, [("flat / plain training peak memory", ratio, 1.05, verdict(ratio, 1.05))]


def table(results: dict[str, dict[str, int]]) -> str:
    lines = ["| variant | process peak MB | training peak MB |", "|---|---|---|"]
    for variant, values in results.items():
        process, training = values["process_peak_kb"] / 1024, values["training_peak_kb"] / 1024
        lines.append(f"| {variant} | {process:.0f} | {training:.0f} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        return
    results, targets = run()
    print(table(results))
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.3f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
