"""Benchmark 2: ``LRShim.step()`` vs torch's ``SequentialLR(LinearLR, CosineAnnealingLR)`` and ``LambdaLR``.

The same warmup-then-cosine shape (100 ramp steps, then cosine to 1e-3 over 10**6 steps) on an SGD
optimizer with 1, 16 and 256 param groups, each group with its own peak learning rate (so no two
groups share a schedule config); the time is per ``scheduler.step()`` call.

Run alone: ``python -m benchmarks.scheduler_step``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR

from benchmarks.common import interleaved_medians, verdict
from tml.optimizers.scheduler import LRShim
from tml.optimizers.schedules import LearningRate, LinearRampToCosine, compute_lr

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


class ProposedLRShim(LRShim):
    """LRShim with the change proposed for ``scheduler.py`` (not ours to edit): the benchmark shows
    what it buys.

    1. ``isinstance(lr, torch.Tensor)`` costs ~1.5 µs for a float (torch's ``_TensorMeta``
       ``__instancecheck__``): decide once per group at construction (and after a load) whether the
       group's ``lr`` is a tensor.
    2. Groups that share a schedule config evaluate it once per step.
    3. The closure of a schedule binds its numbers as locals and evaluates only the branch of the
       step (the registry's scalar formulas go through ``ops`` and evaluate every branch): shown
       here for ``linear_ramp_to_cosine``, with the same float operations in the same order, so
       the values are bit-identical to ``compute_lr``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr_dict: dict[str, LearningRate]) -> None:
        super().__init__(optimizer, lr_dict)
        unique: dict[str, int] = {}
        self._slot = [
            unique.setdefault(config.model_dump_json(), len(unique)) for config in self.lr_dict.values()
        ]
        first = {slot: index for index, slot in reversed(list(enumerate(self._slot)))}
        configs = list(self.lr_dict.values())
        self._unique_functions = [
            _fast_closure(configs[first[slot]]) or self._lr_functions[first[slot]]
            for slot in range(len(unique))
        ]
        for step in (0, 1, RAMP - 1, RAMP, RAMP + 1, TOTAL // 3, TOTAL, TOTAL + 1):
            for function, slot in zip(self._unique_functions, range(len(unique)), strict=True):
                if function(step) != compute_lr(configs[first[slot]], step):
                    raise AssertionError(f"the fast closure differs from compute_lr at step {step}")

    def _write_lrs(self) -> None:
        slots = self.__dict__.get("_slot")
        if slots is None:  # called by the base class's constructor, before ours has run
            super()._write_lrs()
            return
        step = self.last_epoch
        values = [lr_at(step) for lr_at in self._unique_functions]
        for group, slot in zip(self.optimizer.param_groups, slots, strict=True):
            if type(group["lr"]) is float:
                group["lr"] = values[slot]
            else:
                group["lr"].fill_(values[slot])
        self._unique_values = values

    def get_last_lr(self) -> list[float]:
        """The learning rates last written, one float per group (expanded on demand)."""
        values = self.__dict__.get("_unique_values")
        if values is None:
            return super().get_last_lr()
        return [values[slot] for slot in self._slot]


def _fast_closure(config: LearningRate) -> Callable[[int], float] | None:
    kind = config.linear_ramp_to_cosine
    if kind is None:
        return None
    peak, final = kind.learning_rate, kind.final_learning_rate
    ramp, end = kind.num_ramp_steps, kind.final_num_steps
    cos, pi = math.cos, math.pi

    def lr_at(t: int) -> float:
        if t < ramp:
            return float(peak / ramp * t)
        if t <= end:
            return float(final + (peak - final) * 0.5 * (1.0 + cos(pi * (t - ramp) / (end - ramp))))
        return float(final)

    return lr_at


def _lr_dict(groups: int) -> dict[str, LearningRate]:
    """One schedule per group, each with its own peak (as towers with their own learning rates):
    sharing one config would let the proposed LRShim evaluate it once for all groups."""
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


SCHEDULERS: dict[str, Callable[[int], LRScheduler]] = {
    "LRShim": lambda groups: LRShim(_optimizer(groups), _lr_dict(groups)),
    "LRShim (proposed)": lambda groups: ProposedLRShim(_optimizer(groups), _lr_dict(groups)),
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
    for name in ("LRShim", "LRShim (proposed)"):
        for groups in (1, 16):
            ratio = results[groups][name] / results[groups]["SequentialLR"]
            targets.append((f"{name} / SequentialLR at {groups} groups", ratio, 0.5, verdict(ratio, 0.5)))
    return results, targets


def table(results: dict[int, dict[str, float]]) -> str:
    lines = [
        "| groups | LRShim µs | LRShim (proposed) µs | SequentialLR µs | LambdaLR µs "
        "| LRShim/SequentialLR | proposed/SequentialLR | LRShim/LambdaLR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for groups, seconds in results.items():
        us = {name: value * 1e6 for name, value in seconds.items()}
        lines.append(
            f"| {groups} | {us['LRShim']:.1f} | {us['LRShim (proposed)']:.1f} | {us['SequentialLR']:.1f} "
            f"| {us['LambdaLR']:.1f} | {us['LRShim'] / us['SequentialLR']:.2f} "
            f"| {us['LRShim (proposed)'] / us['SequentialLR']:.2f} | {us['LRShim'] / us['LambdaLR']:.2f} |"
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
