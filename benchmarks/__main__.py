"""Run every benchmark and print each target as met or missed: ``python -m benchmarks``.

Options: ``--threads N`` (torch intra-op threads, default 1: on a shared 2-core machine a second
OpenMP thread waits on a busy core and makes timings erratic), ``--repeats N`` (timing rounds per
variant for the optimizer step, default 7), ``--only step|scheduler|compute_lr|build|memory|tables``.
"""

from __future__ import annotations

import argparse
import platform

import torch

from benchmarks import build_time, compute_lr_steps, memory, optimizer_step, scheduler_step, tables


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", choices=("step", "scheduler", "compute_lr", "build", "memory", "tables"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}\n"
    )
    targets = []
    if args.only in (None, "step"):
        results, bandwidths, step_targets = optimizer_step.run(args.repeats)
        measured = ", ".join(f"{name} {value / 1e9:.1f} GB/s" for name, value in bandwidths.items())
        print(f"## 1. Optimizer step (stream bandwidth: {measured}; the floor uses the first)\n")
        print(optimizer_step.table(results) + "\n")
        print("Adam, `optimizer.step()` timed right after a backward pass:\n")
        print(optimizer_step.after_backward_table(results) + "\n")
        print("The multi-task example's own config, through `build_optimizer`:\n")
        print(optimizer_step.example_table() + "\n", flush=True)
        targets += step_targets
    if args.only in (None, "scheduler"):
        scheduler_results, scheduler_targets = scheduler_step.run()
        print("## 2. Scheduler step\n")
        print(scheduler_step.table(scheduler_results) + "\n", flush=True)
        targets += scheduler_targets
    if args.only in (None, "compute_lr"):
        lr_results, lr_targets = compute_lr_steps.run()
        print("## 3. Vectorized compute_lr over 1,000,000 steps vs a Python loop of scalar calls\n")
        print(compute_lr_steps.table(lr_results) + "\n", flush=True)
        targets += lr_targets
    if args.only in (None, "build"):
        build_results, build_targets = build_time.run()
        print("## 4. build_optimizer on 10,000 named parameters and 20 group rules\n")
        print(build_time.table(build_results) + "\n", flush=True)
        targets += build_targets
    if args.only in (None, "memory"):
        memory_results, memory_targets = memory.run()
        print("## 5. Peak memory of training steps (fused Adam, 64 towers × 4 Linear(128, 128))\n")
        print(memory.table(memory_results) + "\n", flush=True)
        targets += memory_targets
    if args.only in (None, "tables"):
        table_results, table_targets = tables.run()
        print("## 6. A training step with embedding tables (8 × 100,000 × 64, batch 2,048)\n")
        print(tables.table(table_results) + "\n", flush=True)
        targets += table_targets
    print("## Targets\n")
    print("| ratio | measured | target | verdict |\n|---|---|---|---|")
    for name, value, target, outcome in targets:
        print(f"| {name} | {value:.2f} | {target} | {outcome} |")


if __name__ == "__main__":
    main()
