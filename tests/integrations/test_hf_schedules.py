"""docs/migrating.md's table for HF ``get_scheduler``: each row's config gives HF's own values.

HF's schedulers are ``LambdaLR``s: the learning rate at step ``k`` is ``base_lr * lr_lambda(k)``.
Each case evaluates HF's lambda (from transformers itself) and our config at every phase boundary,
the steps around it, and a grid over the run, and past its end.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")  # the `integrations` extra; `make test` installs it

from tml.optimizers import LearningRate, compute_lr  # noqa: E402

LR, WARMUP, TOTAL = 3e-4, 50, 1000


def linear_ramp() -> dict[str, Any]:
    """HF's linear warmup from 0: our warmup_steps (from warmup_start_learning_rate, 0 by default)."""
    return {"warmup_steps": WARMUP}


# HF name, HF keywords beyond warmup and total, our config (docs/migrating.md), whether to check past TOTAL
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("constant", {}, {"constant": LR}, True),
    (
        "constant_with_warmup",
        {},
        {"linear_ramp_to_constant": {"learning_rate": LR, "num_ramp_steps": WARMUP}},
        True,
    ),
    (
        "linear",
        {},
        {
            "polynomial_decay": {
                "learning_rate": LR,
                "decay_steps": TOTAL - WARMUP,
                "power": 1.0,
                **linear_ramp(),
            }
        },
        True,
    ),
    (
        "cosine",
        {},
        {
            "linear_ramp_to_cosine": {
                "learning_rate": LR,
                "final_learning_rate": 0.0,
                "num_ramp_steps": WARMUP,
                "final_num_steps": TOTAL,
            }
        },
        False,  # past num_training_steps HF's cosine climbs back up; ours holds 0
    ),
    (
        "polynomial",
        {"lr_end": 1e-7, "power": 2.0},
        {
            "polynomial_decay": {
                "learning_rate": LR,
                "final_learning_rate": 1e-7,
                "decay_steps": TOTAL - WARMUP,
                "power": 2.0,
                **linear_ramp(),
            }
        },
        True,
    ),
    (
        "cosine_with_restarts",
        {"num_cycles": 5},  # cycles of (1000 - 50) / 5 = 190 steps: a whole number, as ours need
        {
            "sequence": [
                {
                    "steps": TOTAL,
                    "schedule": {
                        "cosine_with_restarts": {
                            "learning_rate": LR,
                            "first_cycle_steps": (TOTAL - WARMUP) // 5,
                            **linear_ramp(),
                        }
                    },
                },
                {"schedule": {"constant": 0.0}},  # HF drops to 0 at num_training_steps and stays
            ]
        },
        True,
    ),
    (
        "inverse_sqrt",
        {"timescale": 200},
        {"inverse_sqrt": {"learning_rate": LR, "timescale": 200, **linear_ramp()}},
        True,
    ),
    (
        "warmup_stable_decay",
        {"num_stable_steps": 600, "num_decay_steps": 350, "min_lr_ratio": 0.1, "decay_type": "cosine"},
        {
            "warmup_stable_decay": {
                "learning_rate": LR,
                "final_learning_rate": 0.1 * LR,
                "warmup_start_learning_rate": 0.1 * LR,
                "stable_steps": 600,
                "decay_steps": 350,
                "decay_shape": "cosine",
                **linear_ramp(),
            }
        },
        True,
    ),
]


def hf_learning_rates(name: str, keywords: dict[str, Any], steps: list[int]) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = transformers.get_scheduler(
        name, optimizer, num_warmup_steps=WARMUP, num_training_steps=TOTAL, scheduler_specific_kwargs=keywords
    )
    return [LR * scheduler.lr_lambdas[0](step) for step in steps]


@pytest.mark.parametrize(("name", "keywords", "config", "past_end"), CASES, ids=[case[0] for case in CASES])
def test_the_documented_config_gives_hfs_values(
    name: str, keywords: dict[str, Any], config: dict[str, Any], past_end: bool
) -> None:
    boundaries = {
        0,
        WARMUP,
        TOTAL,
        WARMUP + 600,
        WARMUP + 950,
        *(WARMUP + k * (TOTAL - WARMUP) // 5 for k in range(6)),
    }
    steps = sorted(
        {step + offset for step in boundaries for offset in (-1, 0, 1)}
        | set(range(0, TOTAL, 7))
        | {TOTAL - 1}
    )
    steps = [step for step in steps if 0 <= step <= (TOTAL + 50 if past_end else TOTAL)]
    if past_end:
        steps += [TOTAL + 500, 10 * TOTAL]
    ours = compute_lr(LearningRate.model_validate(config), torch.tensor(steps)).tolist()
    theirs = hf_learning_rates(name, keywords, steps)
    for step, mine, hf in zip(steps, ours, theirs, strict=True):
        # rtol 1e-9; HF's 1 + cos(...) loses its last digits near 0, hence the tiny absolute floor
        assert math.isclose(mine, hf, rel_tol=1e-9, abs_tol=1e-12 * LR), (name, step, mine, hf)
