"""The resume matrix's cases and one case's run, shared by test_resume_matrix.py and its torchrun worker.

A case is (algorithm, layout, transport). Its run trains 3 steps, saves, trains 2 more (the
reference), then loads the checkpoint into fresh builds and checks the contract's three outcomes.
Every step reports a flat metric to ``reduce_on_plateau`` (patience 2): the checkpoint is saved
inside the patience window, and the reduction of the 4th report happens only if the resume
restored the plateau tracker.

- the same config: after 2 more steps the parameters and LRs equal the reference's (``torch.equal``);
- a changed hyperparameter: refused under ``strict`` (the message names it, with both values);
  applied under ``config``: the group holds the config's value, and 2 more steps equal those of the
  saved optimizer with that value written into its groups by hand;
- another shape (the head one output wider): refused under both policies.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tml.optimizers import OptimizerConfig, ResumeError, ResumeWarning, build_optimizer, load_optimizer_state
from tml.optimizers.algorithms import ALGORITHMS as ALGORITHM_CONFIGS
from tml.optimizers.algorithms.facts import is_elementwise
from tml.optimizers.distributed import CheckpointError, load_checkpoint, save_checkpoint

ALGORITHMS = [
    "adam",
    "adamw",
    "sgd",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "asgd",
    "rprop",
    "sparse_adam",
    "adafactor",
    "muon",
]
"""Every algorithm key but ``custom`` (which builds one of these classes, named by its path)."""

LAYOUTS = ("plain", "flatten", "mixed", "mixed with a flat child")
"""plain: two groups (tower, head) of the algorithm; flatten: the same, flat; mixed: the head on SGD
(a CombinedOptimizer); mixed with a flat child: the same with the algorithm's groups flat."""

TRANSPORTS = ("torch.save", "dcp")

RAMP = {"linear_ramp_to_constant": {"learning_rate": 0.01, "num_ramp_steps": 4}}
PLATEAU = {"metric": "loss", "factor": 0.5, "patience": 2, "threshold": 0.0, "threshold_mode": "abs"}


def flattenable(key: str) -> bool:
    return is_elementwise(ALGORITHM_CONFIGS[key].optimizer_class)


def cases() -> list[tuple[str, str]]:
    """(algorithm, layout) for every algorithm and every layout it can take."""
    return [
        (key, layout)
        for key in ALGORITHMS
        for layout in LAYOUTS
        if "flat" not in layout or flattenable(key)
        if not (key == "sparse_adam" and layout.startswith("mixed"))  # its model has sparse grads only
    ]


def changed_hyperparameter(key: str) -> tuple[str, Any, str]:
    """A hyperparameter of ``key`` to change, its new value, and how the difference reads."""
    names = ALGORITHM_CONFIGS[key]().hyperparameter_names()
    if "weight_decay" in names:
        return "weight_decay", 0.25, r"hyperparameters\.weight_decay: [\d.]+ in the checkpoint, 0\.25 here"
    if "eps" in names:
        return "eps", 1e-5, r"hyperparameters\.eps: 1e-0\d in the checkpoint, 1e-05 here"
    return "etas", [0.4, 1.3], r"hyperparameters\.etas\[0\]: 0\.5 in the checkpoint, 0\.4 here"


class Model(torch.nn.Module):
    """A tower and a head, of the kind the algorithm takes (muon: matrices; sparse_adam: sparse)."""

    def __init__(self, key: str, seed: int, head_width: int = 2) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.sparse = key == "sparse_adam"
        if self.sparse:
            self.tower: torch.nn.Module = torch.nn.Embedding(10, 3, sparse=True)
            self.head: torch.nn.Module = torch.nn.Embedding(10, head_width, sparse=True)
        else:
            bias = key != "muon"
            self.tower = torch.nn.Linear(3, 4, bias=bias)
            self.head = torch.nn.Linear(4, head_width, bias=bias)

    def loss(self, step: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(step)
        if self.sparse:
            index = torch.randint(0, 10, (4,), generator=generator)
            return self.tower(index).square().sum() + self.head(index).square().sum()
        return (
            torch.tanh(self.head(torch.tanh(self.tower(torch.randn(5, 3, generator=generator)))))
            .square()
            .mean()
        )


def config(key: str, layout: str, **overrides: Any) -> OptimizerConfig:
    algorithm = {"lr": 0.01, "flatten": "flat" in layout, **overrides}
    head: dict[str, Any] = {"name": "head", "params": ["head.*"]}
    if layout.startswith("mixed"):
        head["sgd"] = {"lr": 0.02, "momentum": 0.9}
    return OptimizerConfig.model_validate(
        {key: algorithm, "learning_rate": RAMP, "reduce_on_plateau": PLATEAU, "param_groups": [head]}
    )


def train(model: Model, optimizer: torch.optim.Optimizer, scheduler: Any, steps: range) -> None:
    for step in steps:
        optimizer.zero_grad()
        model.loss(step).backward()
        optimizer.step()
        scheduler.step()
        scheduler.report({"loss": 1.0})


@dataclasses.dataclass
class Saved:
    """A checkpoint through one transport: how to load it into a (model, optimizer, scheduler)."""

    load: Callable[..., None]


def save(
    transport: str, directory: Path, model: Model, optimizer: Any, scheduler: Any, cfg: OptimizerConfig
) -> Saved:
    if transport == "torch.save":
        buffer = io.BytesIO()
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            buffer,
        )
        data = buffer.getvalue()

        def load_saved(
            target: Model, target_optimizer: Any, target_scheduler: Any, policy: str | None = None
        ) -> None:
            state = torch.load(io.BytesIO(data), weights_only=True)
            load_optimizer_state(target_optimizer, state["optimizer"], policy=policy)  # type: ignore[arg-type]
            target_scheduler.load_state_dict(state["scheduler"], policy=policy)
            target.load_state_dict(state["model"])

        return Saved(load_saved)
    path = save_checkpoint(directory, 3, model, optimizer, scheduler, config=cfg)

    def load_dcp(
        target: Model, target_optimizer: Any, target_scheduler: Any, policy: str | None = None
    ) -> None:
        load_checkpoint(path, target, target_optimizer, target_scheduler, policy=policy)  # type: ignore[arg-type]

    return Saved(load_dcp)


def snapshot(model: torch.nn.Module, scheduler: Any) -> tuple[dict[str, torch.Tensor], list[float]]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}, list(
        scheduler.get_last_lr()
    )


def assert_equal(
    actual: tuple[dict[str, torch.Tensor], list[float]], expected: tuple[dict[str, torch.Tensor], list[float]]
) -> None:
    assert actual[1] == expected[1], (actual[1], expected[1])
    assert actual[0].keys() == expected[0].keys()
    for name, value in expected[0].items():
        assert torch.equal(actual[0][name], value), name


def refused(kind: type[Exception], pattern: str, action: Callable[[], None]) -> None:
    with pytest.raises(kind, match=pattern):
        action()


def run_case(key: str, layout: str, transport: str, directory: Path) -> None:
    """Every outcome of one case (see the module docstring); raises AssertionError on a miss."""
    error = CheckpointError if transport == "dcp" else ResumeError
    cfg = config(key, layout)
    model = Model(key, seed=0)
    optimizer, scheduler = build_optimizer(model, cfg)
    train(model, optimizer, scheduler, range(3))
    assert {entry["bad_reports"] for entry in scheduler.plateau_state().values()} == {2}
    saved = save(transport, directory / "same", model, optimizer, scheduler, cfg)
    train(model, optimizer, scheduler, range(3, 5))
    assert {tuple(entry["reductions"]) for entry in scheduler.plateau_state().values()} == {(4,)}
    expected = snapshot(model, scheduler)

    # The same config: bit-identical.
    resumed = Model(key, seed=1)
    resumed_optimizer, resumed_scheduler = build_optimizer(resumed, cfg)
    saved.load(resumed, resumed_optimizer, resumed_scheduler)
    train(resumed, resumed_optimizer, resumed_scheduler, range(3, 5))
    assert_equal(snapshot(resumed, resumed_scheduler), expected)
    assert resumed_scheduler.plateau_state() == scheduler.plateau_state()

    # A changed hyperparameter: refused under strict, applied under config.
    name, value, reads = changed_hyperparameter(key)
    changed = config(key, layout, **{name: value})
    target = Model(key, seed=1)
    target_optimizer, target_scheduler = build_optimizer(target, changed)
    refused(error, reads, lambda: saved.load(target, target_optimizer, target_scheduler, policy="strict"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResumeWarning)
        saved.load(target, target_optimizer, target_scheduler, policy="config")
    assert any(issubclass(w.category, ResumeWarning) for w in caught), "no ResumeWarning"
    for group in target_optimizer.param_groups:
        if group["name"] != "head" or not layout.startswith("mixed"):
            assert group[name] == (tuple(value) if isinstance(value, list) else value), group["name"]
    train(target, target_optimizer, target_scheduler, range(3, 5))
    # The reference: the saved state under the old config, the new value written by hand.
    by_hand = Model(key, seed=1)
    by_hand_optimizer, by_hand_scheduler = build_optimizer(by_hand, cfg)
    saved.load(by_hand, by_hand_optimizer, by_hand_scheduler)
    for group in by_hand_optimizer.param_groups:
        if group["name"] != "head" or not layout.startswith("mixed"):
            group[name] = copy.deepcopy(tuple(value) if isinstance(value, list) else value)
    train(by_hand, by_hand_optimizer, by_hand_scheduler, range(3, 5))
    assert_equal(snapshot(target, target_scheduler), snapshot(by_hand, by_hand_scheduler))

    # Another shape: refused under every policy.
    wider = Model(key, seed=1, head_width=3)
    wider_optimizer, wider_scheduler = build_optimizer(wider, cfg)
    shape = r"'head\.weight': shape \[\d+, \d+\] in the checkpoint, \[\d+, \d+\] here"
    for policy in ("strict", "config"):
        refused(
            error,
            shape,
            lambda policy=policy: saved.load(wider, wider_optimizer, wider_scheduler, policy=policy),
        )
