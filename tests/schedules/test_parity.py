"""Parity with torch's own schedulers, stepped the normal way, over several thousand steps.

Each case builds a torch scheduler and our schedule for the same base learning rate, steps both
``optimizer.step(); scheduler.step()`` (ours through ``LRShim``) and compares every step's learning
rate within 1e-9 relative; the vectorized ``compute_lr`` over the same steps is checked too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler

from tml.optimizers import LRShim
from tml.optimizers.schedules import LearningRate, compute_lr

BASE_LEARNING_RATE = 0.5
RELATIVE_TOLERANCE = 1e-9

MakeScheduler = Callable[[torch.optim.Optimizer], lr_scheduler.LRScheduler]


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=BASE_LEARNING_RATE)


def _torch_learning_rates(make_scheduler: MakeScheduler, steps: int) -> list[float]:
    optimizer = _optimizer()
    scheduler = make_scheduler(optimizer)
    values = []
    for _ in range(steps):
        values.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        scheduler.step()
    return values


def _our_learning_rates(schedule: LearningRate, steps: int) -> list[float]:
    optimizer = _optimizer()
    scheduler = LRShim(optimizer, {"default": schedule})
    values = []
    for _ in range(steps):
        values.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        scheduler.step()
    return values


CASES: list[tuple[str, MakeScheduler, dict[str, Any], int]] = [
    (
        "LinearLR-warmup",
        lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=1500),
        {"linear": {"start_learning_rate": 0.125, "end_learning_rate": 0.5, "steps": 1500}},
        4000,
    ),
    (
        "LinearLR-decay",
        lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=3000),
        {"linear": {"start_learning_rate": 0.5, "end_learning_rate": 0.05, "steps": 3000}},
        4000,
    ),
    (
        "CosineAnnealingLR",
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=3000, eta_min=0.01),
        {"cosine_decay": {"learning_rate": 0.5, "final_learning_rate": 0.01, "decay_steps": 3000}},
        3001,  # torch's curve rises again after T_max; ours holds the final value
    ),
    (
        "CosineAnnealingLR-eta_min-0",
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2000),
        {"cosine_decay": {"learning_rate": 0.5, "decay_steps": 2000}},
        2001,
    ),
    (
        "PolynomialLR",
        lambda o: lr_scheduler.PolynomialLR(o, total_iters=3000, power=2.0),
        {"polynomial_decay": {"learning_rate": 0.5, "decay_steps": 3000, "power": 2.0}},
        4000,
    ),
    (
        "ExponentialLR",
        lambda o: lr_scheduler.ExponentialLR(o, gamma=0.999),
        {"exponential_decay": {"learning_rate": 0.5, "decay_rate": 0.999}},
        5000,
    ),
    (
        "StepLR",
        lambda o: lr_scheduler.StepLR(o, step_size=300, gamma=0.7),
        {
            "exponential_decay": {
                "learning_rate": 0.5,
                "decay_rate": 0.7,
                "decay_steps": 300,
                "staircase": True,
            }
        },
        5000,
    ),
    (
        "MultiStepLR",
        lambda o: lr_scheduler.MultiStepLR(o, milestones=[500, 1700, 2900], gamma=0.2),
        {"multistep_decay": {"learning_rate": 0.5, "milestones": [500, 1700, 2900], "gamma": 0.2}},
        4000,
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult-1",
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=333, eta_min=0.002),
        {
            "cosine_with_restarts": {
                "learning_rate": 0.5,
                "final_learning_rate": 0.002,
                "first_cycle_steps": 333,
            }
        },
        4000,
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult-2",
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=100, T_mult=2, eta_min=0.001),
        {
            "cosine_with_restarts": {
                "learning_rate": 0.5,
                "final_learning_rate": 0.001,
                "first_cycle_steps": 100,
                "cycle_multiplier": 2,
            }
        },
        5000,
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult-3",
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=3, eta_min=0.001),
        {
            "cosine_with_restarts": {
                "learning_rate": 0.5,
                "final_learning_rate": 0.001,
                "first_cycle_steps": 7,
                "cycle_multiplier": 3,
            }
        },
        5000,
    ),
    *[
        (
            f"OneCycleLR-{strategy}-{'three' if three_phase else 'two'}-phase",
            functools.partial(
                lr_scheduler.OneCycleLR,
                max_lr=0.8,
                total_steps=4000,
                pct_start=0.25,
                anneal_strategy=strategy,
                cycle_momentum=False,
                div_factor=20.0,
                final_div_factor=500.0,
                three_phase=three_phase,
            ),
            {
                "one_cycle": {
                    "max_learning_rate": 0.8,
                    "total_steps": 4000,
                    "pct_start": 0.25,
                    "anneal_strategy": strategy,
                    "div_factor": 20.0,
                    "final_div_factor": 500.0,
                    "three_phase": three_phase,
                }
            },
            4000,  # torch raises past total_steps
        )
        for strategy in ("cos", "linear")
        for three_phase in (False, True)
    ],
    (
        "OneCycleLR-defaults",
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=3333, cycle_momentum=False),
        {"one_cycle": {"max_learning_rate": 0.3, "total_steps": 3333}},
        3333,
    ),
    *[
        (
            f"CyclicLR-{mode}",
            functools.partial(
                lr_scheduler.CyclicLR,
                base_lr=0.01,
                max_lr=0.5,
                step_size_up=250,
                step_size_down=400,
                mode=mode,
                gamma=0.9995 if mode == "exp_range" else 1.0,
                cycle_momentum=False,
            ),
            {
                "cyclic": {
                    "base_learning_rate": 0.01,
                    "max_learning_rate": 0.5,
                    "step_size_up": 250,
                    "step_size_down": 400,
                    "mode": mode,
                    "gamma": 0.9995 if mode == "exp_range" else 1.0,
                }
            },
            5000,
        )
        for mode in ("triangular", "triangular2", "exp_range")
    ],
    (
        "CyclicLR-symmetric",
        lambda o: lr_scheduler.CyclicLR(o, base_lr=0.1, max_lr=0.4, step_size_up=123, cycle_momentum=False),
        {"cyclic": {"base_learning_rate": 0.1, "max_learning_rate": 0.4, "step_size_up": 123}},
        3000,
    ),
    (
        "SequentialLR-LinearLR-CosineAnnealingLR",
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=500),
                lr_scheduler.CosineAnnealingLR(o, T_max=3000, eta_min=0.005),
            ],
            milestones=[500],
        ),
        {
            "sequence": [
                {
                    "steps": 500,
                    "schedule": {
                        "linear": {"start_learning_rate": 0.005, "end_learning_rate": 0.5, "steps": 500}
                    },
                },
                {
                    "schedule": {
                        "cosine_decay": {
                            "learning_rate": 0.5,
                            "final_learning_rate": 0.005,
                            "decay_steps": 3000,
                        }
                    }
                },
            ]
        },
        3501,
    ),
]


@pytest.mark.parametrize(
    ("make_scheduler", "schedule", "steps"),
    [pytest.param(make, schedule, steps, id=name) for name, make, schedule, steps in CASES],
)
def test_matches_torch_scheduler_step_by_step(
    make_scheduler: MakeScheduler, schedule: dict[str, Any], steps: int
) -> None:
    config = LearningRate.model_validate(schedule)
    theirs = _torch_learning_rates(make_scheduler, steps)
    ours = _our_learning_rates(config, steps)
    vectorized = compute_lr(config, torch.arange(steps)).tolist()
    for step, (expected, scalar, vector) in enumerate(zip(theirs, ours, vectorized, strict=True)):
        assert math.isclose(scalar, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0), (
            f"step {step}: torch {expected!r}, LRShim {scalar!r}"
        )
        assert math.isclose(vector, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0), (
            f"step {step}: torch {expected!r}, vectorized {vector!r}"
        )


def test_the_parity_table_covers_every_torch_scheduler_of_the_issue() -> None:
    names = {name.split("-")[0] for name, *_ in CASES}
    assert names == {
        "LinearLR",
        "CosineAnnealingLR",
        "PolynomialLR",
        "ExponentialLR",
        "StepLR",
        "MultiStepLR",
        "CosineAnnealingWarmRestarts",
        "OneCycleLR",
        "CyclicLR",
        "SequentialLR",
    }
