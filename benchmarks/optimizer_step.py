"""Benchmark 1: one optimizer step, torch's choices vs ``auto`` vs ``flatten`` vs the bandwidth floor.

For each optimizer and layout, with gradients present:

* ``default``: torch's constructor without implementation keywords (what the original built):
  on CPU that resolves to the for-loop (checked below);
* ``for_loop`` / ``foreach`` / ``fused``: each forced; ``best`` is the fastest of the three (the
  user who hand-picks the best torch option);
* ``auto``: ``build_optimizer`` with the algorithm's config (``implementation: auto``, the default);
* ``flatten``: ``build_optimizer`` with ``flatten: true`` (a ``FlatOptimizer``, ``auto`` for the
  flat tensor); ``flat kernel`` is its inner step alone, without the per-parameter gradient check;
* ``floor``: bytes moved per parameter ÷ the stream bandwidth measured in this run (in-place add,
  see ``benchmarks.common.stream_bandwidth``; Adam and AdamW
  read param, grad, exp_avg, exp_avg_sq and write three: 28 B in float32; SGD with momentum and
  Adagrad read three and write two: 20 B).

Layouts: 2000 tensors × 256, 200 × 4096, 32 × 262,144, and the multi-task example model
(``tml.optimizers.demo.model.RankingModel``, the model of ``examples/multi_task_towers.yaml``: its
embeddings, backbone and towers, 24 tensors) with each algorithm on all its parameters. The example's
own config (Adam towers with their schedules, SGD embeddings: a ``CombinedOptimizer``) is measured
in :func:`example_config_row`.

Run alone: ``python -m benchmarks.optimizer_step``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import torch
from torch.optim.optimizer import _default_to_fused_or_foreach

from benchmarks.common import interleaved_medians, stream_bandwidth, verdict
from tml.optimizers import build_optimizer
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.demo.model import ModelShape, RankingModel
from tml.optimizers.runtime.flat import FlatOptimizer

EXAMPLE = "multi-task example"
LAYOUTS: dict[str, tuple[int, int]] = {
    "2000×256": (2000, 256),
    "200×4096": (200, 4096),
    "32×262144": (32, 262144),
    EXAMPLE: (0, 0),  # the parameters of RankingModel(ModelShape())
}
ALGORITHMS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any], int]] = {
    "Adam": (torch.optim.Adam, {"lr": 1e-3}, 28),
    "AdamW": (torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.01}, 28),
    "SGD-momentum": (torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}, 20),
    "Adagrad": (torch.optim.Adagrad, {"lr": 1e-3}, 20),
}
CONFIG_KEYS = {"Adam": "adam", "AdamW": "adamw", "SGD-momentum": "sgd", "Adagrad": "adagrad"}
"""The algorithm key of each row's config (the same hyperparameters as ``ALGORITHMS``)."""
TORCH_CHOICES = {"for_loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


@dataclasses.dataclass
class StepResult:
    layout: str
    algorithm: str
    seconds: dict[str, float]
    floor: float
    auto_choice: str

    @property
    def best_name(self) -> str:
        return min(TORCH_CHOICES, key=lambda name: self.seconds[name])

    @property
    def best(self) -> float:
        return self.seconds[self.best_name]


def _tensors(count: int, size: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(size, generator=generator).requires_grad_() for _ in range(count)]
    for param in params:
        param.grad = torch.randn(size, generator=generator) * 1e-3
    return params


def _model(layout: str, seed: int) -> torch.nn.Module:
    """A module holding the layout's parameters, each with a gradient."""
    generator = torch.Generator().manual_seed(seed)
    if layout == EXAMPLE:
        torch.manual_seed(seed)
        model: torch.nn.Module = RankingModel(ModelShape())
    else:
        count, size = LAYOUTS[layout]
        model = torch.nn.Module()
        model.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(size, generator=generator)) for _ in range(count)
        )
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=generator) * 1e-3
    return model


def _config(algorithm: str, **speed: Any) -> OptimizerConfig:
    _, kwargs, _ = ALGORITHMS[algorithm]
    return OptimizerConfig(**{CONFIG_KEYS[algorithm]: {**kwargs, **speed}})


def _choice(optimizer: torch.optim.Optimizer) -> str:
    group = optimizer.param_groups[0]
    return "fused" if group.get("fused") else "foreach" if group.get("foreach") else "for_loop"


def measure(layout: str, algorithm: str, bandwidth: float, repeats: int) -> StepResult:
    optimizer_class, kwargs, bytes_per_param = ALGORITHMS[algorithm]
    model = _model(layout, seed=0)
    params = list(model.parameters())
    if _default_to_fused_or_foreach(params, differentiable=False, use_fused=False) != (False, False):
        raise RuntimeError("torch's default is not the for-loop on this device: measure it separately")
    optimizers = {name: optimizer_class(params, **kwargs, **choice) for name, choice in TORCH_CHOICES.items()}
    optimizers["auto"], _ = build_optimizer(model, _config(algorithm))
    auto_choice = _choice(optimizers["auto"])
    flat, _ = build_optimizer(_model(layout, seed=1), _config(algorithm, flatten=True))
    if not isinstance(flat, FlatOptimizer):
        raise RuntimeError("flatten: true did not build a FlatOptimizer")
    variants = {name: optimizer.step for name, optimizer in optimizers.items()}
    variants["flatten"] = flat.step
    variants["flat kernel"] = flat.inner.step
    seconds = interleaved_medians(variants, repeats)
    seconds["default"] = seconds["for_loop"]
    floor = bytes_per_param * sum(param.numel() for param in params) / bandwidth
    return StepResult(layout, algorithm, seconds, floor, auto_choice)


def example_config_row(repeats: int) -> dict[str, float]:
    """``examples/multi_task_towers.yaml`` as written (Adam towers, SGD embeddings), built by
    ``build_optimizer`` with every algorithm block set to ``for_loop`` (the original's default),
    ``auto`` (the default) and ``flatten: true``: seconds per step."""
    import yaml

    with open("examples/multi_task_towers.yaml") as file:
        data = yaml.safe_load(file)["optimizer"]

    def variant(**speed: Any) -> dict[str, Any]:
        copy = {**data, "adam": {**data["adam"], **speed}}
        copy["param_groups"] = [
            {**group, **{key: {**group[key], **speed} for key in ("sgd", "adam") if key in group}}
            for group in data["param_groups"]
        ]
        return copy

    steps = {}
    kept: list[Any] = []
    for name, speed in (
        ("default", {"implementation": "for_loop"}),
        ("auto", {}),
        ("flatten", {"flatten": True}),
    ):
        model = _model(EXAMPLE, seed=0)
        optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(variant(**speed)))
        kept.append((model, optimizer, scheduler))  # torch's step wrapper holds the optimizer weakly
        steps[name] = optimizer.step
    return interleaved_medians(steps, repeats)


def step_after_backward(layout: str, algorithm: str, repeats: int) -> dict[str, float]:
    """Seconds of ``optimizer.step()`` right after a backward pass.

    Variants: fused non-flat, ``flatten``, and ``one tensor``: fused over a single tensor holding
    every entry of the layout (torch's kernel with no per-tensor work at all), stepped after the
    same backward pass over a separate copy of the layout so that its caches are in the same state.
    The backward pass (one small graph per tensor) evicts the optimizer's data from the caches:
    this is the cold-cache case of a training loop, where ``measure``'s loop of steps is the warm one.
    """
    count, size = LAYOUTS[layout]
    optimizer_class, kwargs, _ = ALGORITHMS[algorithm]
    inputs = torch.randn(size)
    setups: dict[str, tuple[list[torch.nn.Parameter], torch.optim.Optimizer]] = {}
    for name in ("fused", "flatten", "one tensor"):
        params = list(_model(layout, seed=2).parameters())
        if name == "flatten":
            optimizer: torch.optim.Optimizer = FlatOptimizer(params, optimizer_class, **kwargs, fused=True)
        elif name == "one tensor":
            single = torch.nn.Parameter(torch.randn(count * size))
            single.grad = torch.randn(count * size) * 1e-3
            optimizer = optimizer_class([single], **kwargs, fused=True)
        else:
            optimizer = optimizer_class(params, **kwargs, fused=True)
        setups[name] = (params, optimizer)
    samples: dict[str, list[float]] = {name: [] for name in setups}
    for round_index in range(repeats + 1):
        for name, (params, optimizer) in setups.items():
            if name == "one tensor":
                for param in params:
                    param.grad = None
            else:
                optimizer.zero_grad()
            torch.stack([(param * inputs).sum() for param in params]).sum().backward()
            start = time.perf_counter()
            optimizer.step()
            if round_index:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def run(
    repeats: int = 7,
) -> tuple[list[StepResult], dict[str, float], list[tuple[str, float, float, str]]]:
    """Measure every (layout, algorithm); returns the results, the bandwidths and the target rows."""
    bandwidths = stream_bandwidth()
    bandwidth = bandwidths["in-place add"]
    results = [
        measure(layout, algorithm, bandwidth, repeats) for layout in LAYOUTS for algorithm in ALGORITHMS
    ]
    for result in results:
        if result.algorithm == "Adam" and result.layout != EXAMPLE:
            after_backward = step_after_backward(result.layout, "Adam", 3 * repeats)
            result.seconds["fused after backward"] = after_backward["fused"]
            result.seconds["flatten after backward"] = after_backward["flatten"]
            result.seconds["one tensor after backward"] = after_backward["one tensor"]
    # auto builds the same optimizer as one of torch's choices; its ratio to the measured best is 1
    # by construction when it picks the best, and the measured ratio is then timing noise.
    example = example_config_row(repeats)
    picks_best = [result for result in results if result.auto_choice == result.best_name]
    others = [result for result in results if result.auto_choice != result.best_name]
    auto_vs_best = max((result.seconds["auto"] / result.best for result in others), default=1.0)
    default_vs_auto = min(result.seconds["default"] / result.seconds["auto"] for result in results)
    # A 2x gain over the default is only possible where the default is at least 2x the floor.
    reachable = [result for result in results if result.seconds["default"] >= 2 * result.floor]
    default_vs_auto_reachable = min(
        result.seconds["default"] / result.seconds["auto"] for result in reachable
    )
    # The three layouts; the multi-task example (24 tensors, a floor of ~0.05 ms) is in
    # the table, not in the flatten targets.
    layouts = [result for result in results if result.layout != EXAMPLE]
    flat_vs_floor = max(result.seconds["flatten"] / result.floor for result in layouts)
    kernel_vs_floor = max(result.seconds["flat kernel"] / result.floor for result in layouts)
    in_loop_vs_floor = max(
        result.seconds["flatten after backward"] / result.floor
        for result in results
        if "flatten after backward" in result.seconds
    )
    targets = [
        (
            f"auto / torch's best (auto picked the measured best in {len(picks_best)}/{len(results)} "
            "rows; max over the other rows)",
            auto_vs_best,
            1.15,
            verdict(auto_vs_best, 1.15),
        ),
        (
            "default / auto (min over rows)",
            default_vs_auto,
            2.0,
            verdict(default_vs_auto, 2.0, lower_is_better=False),
        ),
        (
            f"default / auto, rows where the default is ≥ 2× the floor ({len(reachable)}/{len(results)})",
            default_vs_auto_reachable,
            2.0,
            verdict(default_vs_auto_reachable, 2.0, lower_is_better=False),
        ),
        (
            "flatten / floor (max over the three layouts)",
            flat_vs_floor,
            1.2,
            verdict(flat_vs_floor, 1.2),
        ),
        (
            "flatten / floor, Adam, step timed right after backward (max over layouts)",
            in_loop_vs_floor,
            1.2,
            verdict(in_loop_vs_floor, 1.2),
        ),
        (
            "flat kernel (no gradient check) / floor (max over the three layouts)",
            kernel_vs_floor,
            1.2,
            verdict(kernel_vs_floor, 1.2),
        ),
    ]
    targets.append(
        (
            "multi-task example config (Adam towers + SGD embeddings): default / auto",
            example["default"] / example["auto"],
            2.0,
            verdict(example["default"] / example["auto"], 2.0, lower_is_better=False),
        )
    )
    EXAMPLE_CONFIG_SECONDS.clear()
    EXAMPLE_CONFIG_SECONDS.update(example)
    return results, bandwidths, targets


EXAMPLE_CONFIG_SECONDS: dict[str, float] = {}
"""The last run's :func:`example_config_row` (printed by :func:`example_table`)."""


def example_table() -> str:
    """The example config's step: for-loop everywhere, auto, flatten (ms) and the ratios."""
    ms = {name: value * 1e3 for name, value in EXAMPLE_CONFIG_SECONDS.items()}
    return (
        "| examples/multi_task_towers.yaml on RankingModel | default (for-loop) ms | auto ms | flatten ms "
        "| default/auto | auto/flatten |\n|---|---|---|---|---|---|\n"
        f"| CombinedOptimizer (Adam + SGD) | {ms['default']:.3f} | {ms['auto']:.3f} | {ms['flatten']:.3f} "
        f"| {ms['default'] / ms['auto']:.1f} | {ms['auto'] / ms['flatten']:.1f} |"
    )


def table(results: list[StepResult]) -> str:
    """A Markdown table: milliseconds per step and the ratios the targets are about."""
    header = (
        "| layout | optimizer | default (for-loop) ms | foreach ms | fused ms | torch best | auto "
        "| auto ms | flatten ms | flat kernel ms | floor ms | auto/best | default/auto | default/floor "
        "| flatten/floor |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for result in results:
        ms = {name: value * 1e3 for name, value in result.seconds.items()}
        rows.append(
            f"| {result.layout} | {result.algorithm} | {ms['default']:.2f} | {ms['foreach']:.2f} "
            f"| {ms['fused']:.2f} | {result.best_name} | {result.auto_choice} | {ms['auto']:.2f} "
            f"| {ms['flatten']:.3f} "
            f"| {ms['flat kernel']:.3f} | {result.floor * 1e3:.3f} "
            f"| {result.seconds['auto'] / result.best:.2f} "
            f"| {result.seconds['default'] / result.seconds['auto']:.1f} "
            f"| {result.seconds['default'] / result.floor:.1f} "
            f"| {result.seconds['flatten'] / result.floor:.2f} |"
        )
    return header + "\n".join(rows)


def after_backward_table(results: list[StepResult]) -> str:
    """Adam's step timed right after a backward pass (cold caches): fused, flatten, one tensor."""
    lines = [
        "| layout | fused ms | flatten ms | one tensor ms | floor ms | flatten/floor "
        "| one tensor/floor | flatten/one tensor | fused/flatten |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        if "flatten after backward" not in result.seconds:
            continue
        fused, flat = result.seconds["fused after backward"], result.seconds["flatten after backward"]
        single = result.seconds["one tensor after backward"]
        lines.append(
            f"| {result.layout} | {fused * 1e3:.2f} | {flat * 1e3:.3f} | {single * 1e3:.3f} "
            f"| {result.floor * 1e3:.3f} | {flat / result.floor:.2f} | {single / result.floor:.2f} "
            f"| {flat / single:.2f} | {fused / flat:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    results, bandwidths, targets = run()
    print(", ".join(f"{name}: {value / 1e9:.1f} GB/s" for name, value in bandwidths.items()))
    print(table(results))
    print(after_backward_table(results))
    print(example_table())
    for name, value, target, outcome in targets:
        print(f"{name}: {value:.2f} (target {target}) {outcome}")


if __name__ == "__main__":
    main()
