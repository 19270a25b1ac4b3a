"""docs/migrating.md's table for timm's schedulers: each row's config gives timm's values.

timm is not a dependency (and does not import beside this torch), so timm's schedulers are written
out here from their documented semantics, as timm steps them per update (``step_update(t)`` after
update ``t``; the LR of update 0 is set when the scheduler is built):

- a linear warmup over the first ``W`` updates, ``w0 + t (LR - w0) / W``; with ``warmup_prefix`` the
  schedule proper then sees ``s = t - W``;
- ``cosine``: cycle ``i`` of ``T m^i`` updates runs from ``LR g^i`` down to ``min_lr`` along a half
  cosine; after ``cycle_limit`` cycles the LR is ``min_lr``;
- ``step``: ``LR r^(s // D)``; ``multistep``: ``LR r^n`` with ``n`` the milestones ``<= s + 1`` (timm
  applies milestone ``m`` at ``m - 1``); ``poly``: ``min_lr + (LR - min_lr) (1 - s / T)^p``, then
  ``min_lr``; ``constant``: ``LR``;
- ``wsd``: ``LR`` for the first ``T - D`` updates after the warmup, then ``min_lr + (LR - min_lr) f``
  over ``D`` updates, ``f`` falling from 1 to 0 as ``1 - sqrt(x)``, ``1 - x`` or a half cosine.

The comparison with timm itself (its scheduler files, loaded beside torch 2.13) gave the same
values, at a relative error below 1e-12, for every row.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tml.optimizers import LearningRate, compute_lr

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
LR, MIN, W, W0, T = 1e-3, 1e-5, 10, 1e-5, 90


def warmup(t: int, w0: float = W0, warmup_steps: int = W) -> float:
    return w0 + t * (LR - w0) / warmup_steps


def timm_cosine(
    cycles: int, multiplier: float, decay: float, w0: float = W0, lr_min: float = MIN
) -> Callable[[int], float]:
    lengths = [round(T * multiplier**i) for i in range(cycles)]
    starts = [sum(lengths[:i]) for i in range(cycles + 1)]

    def lr(t: int) -> float:
        if t < W:
            return warmup(t, w0)
        s = t - W
        cycle = bisect.bisect_right(starts, s) - 1
        if cycle >= cycles:
            return lr_min
        peak, into = LR * decay**cycle, s - starts[cycle]
        return lr_min + 0.5 * (peak - lr_min) * (1 + math.cos(math.pi * into / lengths[cycle]))

    return lr


def timm_step(t: int) -> float:
    return warmup(t) if t < W else LR * 0.5 ** ((t - W) // 30)


def timm_multistep(milestones: list[int], prefix: bool) -> Callable[[int], float]:
    def lr(t: int) -> float:
        if t < W:
            return warmup(t)
        s = t - W if prefix else t
        return LR * 0.1 ** sum(milestone <= s + 1 for milestone in milestones)

    return lr


def timm_poly(t: int) -> float:
    if t < W:
        return warmup(t)
    s = t - W
    return MIN + (LR - MIN) * (1 - s / T) ** 2.0 if s < T else MIN


def timm_constant(t: int) -> float:
    return warmup(t) if t < W else LR


def timm_wsd(decay_steps: int, shape: str, prefix: bool) -> Callable[[int], float]:
    stable = (T if prefix else T - W) - decay_steps
    shapes = {
        "1-sqrt": lambda x: 1 - math.sqrt(x),
        "linear": lambda x: 1 - x,
        "cosine": lambda x: 0.5 * (1 + math.cos(math.pi * x)),
    }

    def lr(t: int) -> float:
        if t < W:
            return warmup(t)
        into_decay = t - W - stable
        if into_decay <= 0:
            return LR
        return MIN + (LR - MIN) * shapes[shape](min(into_decay / decay_steps, 1.0))

    return lr


def warmed(**fields: Any) -> dict[str, Any]:
    return {**fields, "warmup_steps": W, "warmup_start_learning_rate": W0}


def cosine_phases(cycles: int, multiplier: float, decay: float) -> dict[str, Any]:
    """The migrating table's cosine row for cycle_limit > 1: k cosine_decay phases, then min_lr."""
    lengths = [round(T * multiplier**i) for i in range(cycles)]
    phases: list[dict[str, Any]] = [
        {
            "steps": W + lengths[0],
            "schedule": {
                "cosine_decay": warmed(learning_rate=LR, final_learning_rate=MIN, decay_steps=lengths[0])
            },
        }
    ]
    phases += [
        {
            "steps": lengths[i],
            "schedule": {
                "cosine_decay": {
                    "learning_rate": LR * decay**i,
                    "final_learning_rate": MIN,
                    "decay_steps": lengths[i],
                }
            },
        }
        for i in range(1, cycles)
    ]
    return {"sequence": [*phases, {"schedule": {"constant": MIN}}]}


def restarts_then_constant(multiplier: float, decay: float, lr_min: float) -> dict[str, Any]:
    """The same with cosine_with_restarts (cycle_decay 1, or min_lr 0), for 3 cycles."""
    total = sum(round(T * multiplier**i) for i in range(3))
    restarts = warmed(
        learning_rate=LR,
        final_learning_rate=lr_min,
        first_cycle_steps=T,
        cycle_multiplier=multiplier,
        cycle_decay=decay,
    )
    return {
        "sequence": [
            {"steps": W + total, "schedule": {"cosine_with_restarts": restarts}},
            {"schedule": {"constant": lr_min}},
        ]
    }


# (the table's sched, what the case is, timm's LR per update, the config of the row)
CASES: list[tuple[str, str, Callable[[int], float], dict[str, Any]]] = [
    (
        "cosine",
        "cycle_limit 1",
        timm_cosine(1, 1.0, 1.0),
        {"cosine_decay": warmed(learning_rate=LR, final_learning_rate=MIN, decay_steps=T)},
    ),
    (
        "cosine",
        "cycle_limit 1, warmup from 0: linear_ramp_to_cosine",
        timm_cosine(1, 1.0, 1.0, w0=0.0),
        {
            "linear_ramp_to_cosine": {
                "learning_rate": LR,
                "final_learning_rate": MIN,
                "num_ramp_steps": W,
                "final_num_steps": W + T,
            }
        },
    ),
    ("cosine", "3 cycles, decay 0.5", timm_cosine(3, 1.0, 0.5), cosine_phases(3, 1.0, 0.5)),
    ("cosine", "3 cycles, x2 longer, decay 0.1", timm_cosine(3, 2.0, 0.1), cosine_phases(3, 2.0, 0.1)),
    (
        "cosine",
        "3 cycles x2, decay 1: cosine_with_restarts",
        timm_cosine(3, 2.0, 1.0),
        restarts_then_constant(2.0, 1.0, MIN),
    ),
    (
        "cosine",
        "3 cycles, decay 0.5, min_lr 0: cosine_with_restarts",
        timm_cosine(3, 1.0, 0.5, lr_min=0.0),
        restarts_then_constant(1.0, 0.5, 0.0),
    ),
    (
        "step",
        "decay_t 30, rate 0.5",
        timm_step,
        {"exponential_decay": warmed(learning_rate=LR, decay_rate=0.5, decay_steps=30, staircase=True)},
    ),
    (
        "multistep",
        "milestones 30, 60: at 29, 59",
        timm_multistep([30, 60], prefix=True),
        {"multistep_decay": warmed(learning_rate=LR, milestones=[29, 59], gamma=0.1)},
    ),
    (
        "multistep",
        "no warmup prefix: at 29 - W, 59 - W",
        timm_multistep([30, 60], prefix=False),
        {"multistep_decay": warmed(learning_rate=LR, milestones=[29 - W, 59 - W], gamma=0.1)},
    ),
    (
        "poly",
        "power 2",
        timm_poly,
        {"polynomial_decay": warmed(learning_rate=LR, final_learning_rate=MIN, decay_steps=T, power=2.0)},
    ),
    (
        "constant",
        "warmup from w0",
        timm_constant,
        {
            "sequence": [
                {
                    "steps": W,
                    "schedule": {"linear": {"start_learning_rate": W0, "end_learning_rate": LR, "steps": W}},
                },
                {"schedule": {"constant": LR}},
            ]
        },
    ),
    (
        "constant",
        "warmup from 0",
        lambda t: t * LR / W if t < W else LR,
        {"linear_ramp_to_constant": {"learning_rate": LR, "num_ramp_steps": W}},
    ),
    *[
        (
            "wsd",
            f"{shape}, prefix {prefix}",
            timm_wsd(20, shape, prefix),
            {
                "warmup_stable_decay": warmed(
                    learning_rate=LR,
                    final_learning_rate=MIN,
                    stable_steps=(T if prefix else T - W) - 20,
                    decay_steps=20,
                    decay_shape=shape,
                )
            },
        )
        for shape, prefix in [("1-sqrt", True), ("1-sqrt", False), ("linear", True), ("cosine", True)]
    ],
]


@pytest.mark.parametrize(("sched", "case", "timm", "config"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_each_row_gives_timms_values(
    sched: str, case: str, timm: Callable[[int], float], config: dict[str, Any]
) -> None:
    schedule = LearningRate.model_validate(config)
    # Every update of the run (the longest: 10 + 90 + 180 + 360), and far past its end.
    for step in [*range(0, 700), 10_000, 10**9]:
        assert compute_lr(schedule, step) == pytest.approx(timm(step), rel=1e-9, abs=1e-15), (
            sched,
            case,
            step,
        )


def test_the_old_rows_did_not_give_timms_values() -> None:
    # What the table said before: the milestones themselves as boundaries, and cosine_with_restarts
    # alone for several cycles (it never stops at min_lr, and it decays the height above min_lr).
    old_multistep = LearningRate.model_validate(
        {
            "piecewise_constant": {
                "learning_rate_boundaries": [30, 60],
                "learning_rate_values": [LR, LR / 10, LR / 100],
            }
        }
    )
    assert compute_lr(old_multistep, 29) != pytest.approx(
        timm_multistep([30, 60], prefix=False)(29), rel=1e-9
    )
    old_cycles = LearningRate.model_validate(
        {
            "cosine_with_restarts": warmed(
                learning_rate=LR, final_learning_rate=MIN, first_cycle_steps=T, cycle_decay=0.5
            )
        }
    )
    timm = timm_cosine(3, 1.0, 0.5)
    assert compute_lr(old_cycles, W + T) != pytest.approx(timm(W + T), rel=1e-9)  # the second peak
    assert compute_lr(old_cycles, W + 3 * T + 5) != pytest.approx(timm(W + 3 * T + 5), rel=1e-9)


def test_the_doc_example_gives_timms_cosine() -> None:
    # CosineLRScheduler(t_initial=99_000, lr_min=1e-5, warmup_t=1000, warmup_lr_init=0, warmup_prefix=True)
    ours = LearningRate.model_validate(
        {
            "linear_ramp_to_cosine": {
                "learning_rate": 1e-3,
                "final_learning_rate": 1e-5,
                "num_ramp_steps": 1000,
                "final_num_steps": 100_000,
            }
        }
    )

    def timm(t: int) -> float:
        if t < 1000:
            return t * 1e-3 / 1000
        s = t - 1000
        return 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * s / 99_000)) if s < 99_000 else 1e-5

    for step in [0, 1, 999, 1000, 1001, 50_500, 99_999, 100_000, 100_001, 10**7]:
        assert compute_lr(ours, step) == pytest.approx(timm(step), rel=1e-9, abs=1e-15), step


def test_the_table_has_a_case_per_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## From timm") :]
    section = section[: section.find("\n## ", 1)]  # up to the next section
    rows = re.findall(r"^\| `(\w+)`", section, flags=re.M)
    assert set(rows) - {"plateau"} == {case[0] for case in CASES}
    for case in CASES:  # each row spells the kind of config the case checks
        kind = next(iter(case[3]))
        row = next(
            line for line in section.splitlines() if line.startswith(f"| `{case[0]}`") and kind in line
        )
        assert row, (case[0], kind)
