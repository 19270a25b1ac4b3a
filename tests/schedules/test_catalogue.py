"""The schedule catalogue: golden values, errors at load, registry completeness, docs, round trips.

Golden values are computed from the formula written out in the test, never pasted from the
implementation's output; each row says what it checks.
"""

from __future__ import annotations

import doctest
import math
import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import pydantic
import pytest
import torch
import yaml

from tml.core.config import ConfigError, load_config_from_yaml
from tml.optimizers import LRShim
from tml.optimizers.schedules import SCHEDULES, LearningRate, compute_lr

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schedules.md"
HUGE_STEP = 10**12


def _schedule(data: dict[str, Any]) -> LearningRate:
    return LearningRate.model_validate(data)


def _assert_golden(schedule: LearningRate, rows: list[tuple[int, float, str]]) -> None:
    steps = [step for step, _, _ in rows]
    vectorized = compute_lr(schedule, torch.tensor(steps)).tolist()
    for (step, expected, why), vector_value in zip(rows, vectorized, strict=True):
        value = compute_lr(schedule, step)
        assert math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-300), f"{why} (step {step}): {value}"
        assert math.isclose(vector_value, expected, rel_tol=1e-12, abs_tol=1e-300), f"{why}: {vector_value}"


# --- golden values ------------------------------------------------------------------------------


def test_piecewise_linear_golden_values() -> None:
    boundaries, values = [100, 300, 1000], [0.0, 1.0, 0.1]

    def between(i: int, t: int) -> float:
        return values[i] + (values[i + 1] - values[i]) * (t - boundaries[i]) / (
            boundaries[i + 1] - boundaries[i]
        )

    schedule = _schedule({"piecewise_linear": {"boundaries": boundaries, "values": values}})
    _assert_golden(
        schedule,
        [
            (0, values[0], "values[0] before the first boundary"),
            (99, values[0], "still values[0] just before it"),
            (100, values[0], "the first point"),
            (200, between(0, 200), "halfway up the first segment"),
            (300, values[1], "the second point exactly"),
            (650, between(1, 650), "halfway down the second segment"),
            (999, between(1, 999), "one step before the last point"),
            (1000, values[2], "the last point"),
            (HUGE_STEP, values[2], "values[-1] for ever after"),
        ],
    )


def test_piecewise_linear_with_one_point_is_constant() -> None:
    schedule = _schedule({"piecewise_linear": {"boundaries": [5], "values": [0.3]}})
    _assert_golden(schedule, [(0, 0.3, "before"), (5, 0.3, "at"), (HUGE_STEP, 0.3, "after")])


def test_inverse_sqrt_golden_values_and_hf_equivalence() -> None:
    peak, timescale = 0.02, 1000
    schedule = _schedule(
        {"inverse_sqrt": {"learning_rate": peak, "timescale": timescale, "warmup_steps": timescale}}
    )

    def hugging_face(step: int) -> float:
        # transformers.get_inverse_sqrt_schedule(num_warmup_steps=timescale), times the base LR.
        if step < timescale:
            return peak * float(step) / float(max(1, timescale))
        shift = timescale - timescale
        return peak * (1.0 / math.sqrt((step + shift) / timescale))

    rows = [
        (0, 0.0, "warmup starts at 0"),
        (500, peak * 500 / timescale, "halfway up the warmup"),
        (1000, peak, "the peak at the end of the warmup"),
        (2000, peak * math.sqrt(timescale / (1000 + timescale)), "decayed by sqrt(1/2)"),
        (4000, peak / 2, "a quarter of the LR of ... at four times the timescale: half the peak"),
        (HUGE_STEP, peak * math.sqrt(timescale / (HUGE_STEP - 1000 + timescale)), "huge step"),
    ]
    _assert_golden(schedule, rows)
    for step in (0, 1, 999, 1000, 1001, 12345, HUGE_STEP):
        assert math.isclose(compute_lr(schedule, step), hugging_face(step), rel_tol=1e-12)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_warmup_stable_decay_golden_values(shape: str) -> None:
    peak, final, warmup, stable, decay = 1.0, 0.1, 10, 50, 40
    shapes = {
        "linear": lambda p: 1 - p,
        "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2,
        "1-sqrt": lambda p: 1 - math.sqrt(p),
    }

    def decayed(p: float) -> float:
        return final + (peak - final) * shapes[shape](p)

    schedule = _schedule(
        {
            "warmup_stable_decay": {
                "learning_rate": peak,
                "final_learning_rate": final,
                "warmup_steps": warmup,
                "stable_steps": stable,
                "decay_steps": decay,
                "decay_shape": shape,
            }
        }
    )
    _assert_golden(
        schedule,
        [
            (0, 0.0, "warmup from 0"),
            (5, peak / 2, "halfway up the warmup"),
            (10, peak, "stable phase starts at the peak"),
            (59, peak, "last stable step"),
            (60, decayed(0.0), "decay starts: p = 0"),
            (70, decayed(0.25), "a quarter of the decay"),
            (80, decayed(0.5), "half of the decay"),
            (99, decayed(39 / 40), "last decay step before the end"),
            (100, final, "the end of the decay: final"),
            (HUGE_STEP, final, "final for ever after"),
        ],
    )


def test_warmup_golden_values_on_several_kinds() -> None:
    start, warmup, peak = 0.01, 100, 1.0
    cosine = _schedule(
        {
            "cosine_decay": {
                "learning_rate": peak,
                "decay_steps": 1000,
                "warmup_steps": warmup,
                "warmup_start_learning_rate": start,
            }
        }
    )
    _assert_golden(
        cosine,
        [
            (0, start, "warmup starts at warmup_start_learning_rate, not 0"),
            (50, start + (peak - start) * 50 / warmup, "halfway up the ramp"),
            (99, start + (peak - start) * 99 / warmup, "last ramp step"),
            (100, peak, "the body at its own step 0"),
            (600, peak * (1 + math.cos(math.pi * 0.5)) / 2, "halfway through the decay"),
            (1100, 0.0, "end of the decay"),
            (HUGE_STEP, 0.0, "after the decay"),
        ],
    )
    multistep = _schedule(
        {"multistep_decay": {"learning_rate": 0.8, "milestones": [10], "gamma": 0.5, "warmup_steps": 4}}
    )
    _assert_golden(
        multistep,
        [
            (0, 0.0, "ramp from 0 by default"),
            (2, 0.8 * 2 / 4, "the ramp heads for the body's value at its step 0"),
            (4, 0.8, "body step 0"),
            (13, 0.8, "body step 9: before its milestone"),
            (14, 0.4, "body step 10: milestones count after the warmup"),
        ],
    )
    # A warmup that goes down: the ramp heads for the body's first value, whatever it is.
    exponential = _schedule(
        {
            "exponential_decay": {
                "learning_rate": 0.1,
                "decay_rate": 0.5,
                "decay_steps": 10,
                "warmup_steps": 10,
                "warmup_start_learning_rate": 0.3,
            }
        }
    )
    _assert_golden(
        exponential,
        [
            (0, 0.3, "start above the body"),
            (5, 0.3 + (0.1 - 0.3) * 0.5, "halfway down"),
            (10, 0.1, "the body"),
            (25, 0.1 * 0.5**1.5, "body step 15: 1.5 decays"),
        ],
    )


def test_nested_sequence_golden_values() -> None:
    inner_cosine = {"cosine_decay": {"learning_rate": 1.0, "final_learning_rate": 0.1, "decay_steps": 150}}
    schedule = _schedule(
        {
            "sequence": [
                {
                    "steps": 100,
                    "schedule": {
                        "linear": {"start_learning_rate": 0.0, "end_learning_rate": 1.0, "steps": 100}
                    },
                },
                {
                    "steps": 200,
                    "schedule": {
                        "sequence": [
                            {"steps": 50, "schedule": {"constant": 1.0}},
                            {"schedule": inner_cosine},
                        ]
                    },
                },
                {"schedule": {"constant": 0.05}},
            ]
        }
    )

    def cosine(t: int) -> float:
        return 0.1 + (1.0 - 0.1) * (1 + math.cos(math.pi * min(t, 150) / 150)) / 2

    _assert_golden(
        schedule,
        [
            (0, 0.0, "first phase: linear from 0"),
            (50, 0.5, "first phase halfway"),
            (99, 0.99, "first phase, last step"),
            (100, 1.0, "second phase, inner constant phase (inner step 0)"),
            (149, 1.0, "inner constant, last step"),
            (150, cosine(0), "inner cosine at its own step 0"),
            (225, cosine(75), "inner cosine halfway: outer step 225 = 100 + 50 + 75"),
            (299, cosine(149), "last step of the second phase"),
            (300, 0.05, "third phase"),
            (HUGE_STEP, 0.05, "the last phase runs for ever"),
        ],
    )


def test_cosine_with_restarts_is_exact_at_huge_steps() -> None:
    first, multiplier, decay, peak, final = 7, 3, 0.9, 1.0, 0.01
    schedule = _schedule(
        {
            "cosine_with_restarts": {
                "learning_rate": peak,
                "final_learning_rate": final,
                "first_cycle_steps": first,
                "cycle_multiplier": multiplier,
                "cycle_decay": decay,
            }
        }
    )

    def reference(step: int) -> float:
        # Walk the cycles one by one (fine in a test: ~25 cycles up to 10**12).
        start, length, index = 0, first, 0
        while start + length <= step:
            start, length, index = start + length, length * multiplier, index + 1
        return final + (peak - final) * decay**index * (1 + math.cos(math.pi * (step - start) / length)) / 2

    cycle_starts = [first * (multiplier**i - 1) // (multiplier - 1) for i in range(1, 26)]
    steps = [0, 6, 7, 8, *cycle_starts, *(s - 1 for s in cycle_starts), HUGE_STEP, HUGE_STEP - 1, 2**52]
    _assert_golden(schedule, [(step, reference(step), f"cycle walk at {step}") for step in steps])
    # The scalar path counts cycles with exact integers, also far beyond float64's 2**53:
    # the cycle starts s_i themselves, where a float estimate of the index is most fragile.
    for step in (10**30, first * (multiplier**60 - 1) // (multiplier - 1)):
        for nearby in (step - 1, step, step + 1):
            assert math.isclose(compute_lr(schedule, nearby), reference(nearby), rel_tol=1e-12), nearby


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_is_exact_at_huge_steps(mode: str) -> None:
    base, top, up, down, gamma = 0.1, 1.1, 3, 7, 0.99
    schedule = _schedule(
        {
            "cyclic": {
                "base_learning_rate": base,
                "max_learning_rate": top,
                "step_size_up": up,
                "step_size_down": down,
                "mode": mode,
                "gamma": gamma if mode == "exp_range" else 1.0,
            }
        }
    )

    def reference(step: int) -> float:
        cycle, position = divmod(step, up + down)
        scale = position / up if position <= up else (up + down - position) / down
        factor = {"triangular": 1.0, "triangular2": 0.5**cycle, "exp_range": gamma**step}[mode]
        return base + (top - base) * scale * factor

    steps = [0, 1, 3, 4, 9, 10, 13, HUGE_STEP, HUGE_STEP + 3, HUGE_STEP + 5, 2**52 + 3]
    _assert_golden(schedule, [(step, reference(step), f"divmod at {step}") for step in steps])
    if mode == "triangular":
        # Exact even where the float formula 1 + t / total - cycle would have lost the position.
        assert compute_lr(schedule, HUGE_STEP + 3) == top


def test_decays_reach_their_final_value_exactly() -> None:
    for data in [
        {"cosine_decay": {"learning_rate": 1.0, "final_learning_rate": 0.25, "decay_steps": 7}},
        {
            "polynomial_decay": {
                "learning_rate": 1.0,
                "final_learning_rate": 0.25,
                "decay_steps": 7,
                "power": 3,
            }
        },
        {
            "warmup_stable_decay": {
                "learning_rate": 1.0,
                "final_learning_rate": 0.25,
                "stable_steps": 3,
                "decay_steps": 7,
                "decay_shape": "cosine",
            }
        },
        {"exponential_decay": {"learning_rate": 1.0, "final_learning_rate": 0.25, "decay_rate": 0.5}},
        {"linear": {"start_learning_rate": 1.0, "end_learning_rate": 0.25, "steps": 7}},
    ]:
        schedule = _schedule(data)
        assert compute_lr(schedule, 10) == 0.25, data
        assert compute_lr(schedule, HUGE_STEP) == 0.25, data
        assert compute_lr(schedule, torch.tensor([10, HUGE_STEP])).tolist() == [0.25, 0.25], data


def test_one_cycle_holds_its_last_value() -> None:
    schedule = _schedule({"one_cycle": {"max_learning_rate": 1.0, "total_steps": 100}})
    floor = 1.0 / 25.0 / 1e4
    assert compute_lr(schedule, 0) == pytest.approx(1.0 / 25.0, rel=1e-12)
    assert compute_lr(schedule, 99) == pytest.approx(floor, rel=1e-12)
    assert compute_lr(schedule, 100) == compute_lr(schedule, 99) == compute_lr(schedule, HUGE_STEP)


def test_seed_cosine_keeps_its_values() -> None:
    # The seed's linear_ramp_to_cosine now computes its half cosine without cancellation; its values
    # are those of the original formula to the last few ulps.
    peak, final, ramp, end = 0.3, 0.001, 100, 1100
    schedule = _schedule(
        {
            "linear_ramp_to_cosine": {
                "learning_rate": peak,
                "final_learning_rate": final,
                "num_ramp_steps": ramp,
                "final_num_steps": end,
            }
        }
    )
    for step in range(0, 1200, 7):
        if step < ramp:
            original = peak / ramp * step
        elif step <= end:
            original = final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (step - ramp) / (end - ramp)))
        else:
            original = final
        assert math.isclose(compute_lr(schedule, step), original, rel_tol=1e-12), step


# --- errors at load -----------------------------------------------------------------------------

ERRORS: list[tuple[dict[str, Any], str]] = [
    # linear
    (
        {"linear": {"start_learning_rate": 0.1, "end_learning_rate": 1.0, "steps": 0}},
        r"linear\.steps: Input should be greater than 0 \(got 0\)",
    ),
    (
        {"linear": {"start_learning_rate": -0.1, "end_learning_rate": 1.0, "steps": 5}},
        r"linear\.start_learning_rate: Input should be greater than or equal to 0 \(got -0\.1\)",
    ),
    (
        {"linear": {"start_learning_rate": 0.1, "end_learning_rate": float("inf"), "steps": 5}},
        r"linear\.end_learning_rate: expected a finite number, got inf",
    ),
    (
        {"linear": {"start_learning_rate": 0.1, "end_learning_rate": 1.0, "steps": True}},
        r"linear\.steps: .*got the boolean True",
    ),
    ({"linear": {"start_learning_rate": 0.1, "end_learning_rate": 1.0}}, r"linear\.steps: Field required"),
    # piecewise_linear
    (
        {"piecewise_linear": {"boundaries": [10, 5], "values": [1.0, 0.5]}},
        r"piecewise_linear\.boundaries: boundaries must be strictly increasing, got 5 at index 1 after 10",
    ),
    (
        {"piecewise_linear": {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}},
        r"piecewise_linear\.values: needs one value per boundary, len\(boundaries\) = 2, got 3",
    ),
    (
        {"piecewise_linear": {"boundaries": [], "values": []}},
        r"piecewise_linear\.boundaries: List should have at least 1 item",
    ),
    (
        {"piecewise_linear": {"boundaries": [-1], "values": [1.0]}},
        r"piecewise_linear\.boundaries\.0: Input should be greater than or equal to 0",
    ),
    # cosine_decay and warmup
    (
        {"cosine_decay": {"learning_rate": 0.1, "final_learning_rate": 0.5, "decay_steps": 10}},
        r"cosine_decay\.final_learning_rate: final_learning_rate must"
        r" be at most learning_rate \(0\.1\), got 0\.5",
    ),
    (
        {"cosine_decay": {"learning_rate": 0.1, "decay_step": 10}},
        r"cosine_decay\.decay_step: Extra inputs are not permitted",
    ),
    (
        {"cosine_decay": {"learning_rate": 0.1, "decay_steps": 10, "warmup_start_learning_rate": 0.01}},
        r"cosine_decay\.warmup_start_learning_rate:"
        r" warmup_start_learning_rate applies only when warmup_steps > 0 .*got 0\.01",
    ),
    (
        {"cosine_decay": {"learning_rate": 0.1, "decay_steps": 10, "warmup_steps": -5}},
        r"cosine_decay\.warmup_steps: Input should be greater than or equal to 0 \(got -5\)",
    ),
    # polynomial_decay
    (
        {"polynomial_decay": {"learning_rate": 0.1, "decay_steps": 10, "power": 0.0}},
        r"polynomial_decay\.power: Input should be greater than 0",
    ),
    (
        {"polynomial_decay": {"learning_rate": 0.1, "decay_steps": 10, "power": float("nan")}},
        r"polynomial_decay\.power: expected a finite number, got nan",
    ),
    # exponential_decay
    (
        {"exponential_decay": {"learning_rate": 0.1, "decay_rate": 1.5}},
        r"exponential_decay\.decay_rate: Input should be less than or equal to 1 \(got 1\.5\)",
    ),
    (
        {"exponential_decay": {"learning_rate": 0.1, "decay_rate": 0.0}},
        r"exponential_decay\.decay_rate: Input should be greater than 0",
    ),
    (
        {"exponential_decay": {"learning_rate": 0.1, "decay_rate": 0.5, "staircase": "maybe"}},
        r"exponential_decay\.staircase: Input should be a valid boolean",
    ),
    (
        {"exponential_decay": {"learning_rate": 0.1, "decay_rate": 0.5, "final_learning_rate": 0.2}},
        r"exponential_decay\.final_learning_rate: final_learning_rate"
        r" must be at most learning_rate \(0\.1\), got 0\.2",
    ),
    # multistep_decay
    (
        {"multistep_decay": {"learning_rate": 0.1, "milestones": [30, 30], "gamma": 0.1}},
        r"multistep_decay\.milestones: milestones must be strictly increasing, got 30 at index 1 after 30",
    ),
    (
        {"multistep_decay": {"learning_rate": 0.1, "milestones": [30]}},
        r"multistep_decay\.gamma: Field required",
    ),
    (
        {"multistep_decay": {"learning_rate": 0.1, "milestones": [], "gamma": 0.1}},
        r"multistep_decay\.milestones: List should have at least 1 item",
    ),
    # inverse_sqrt
    (
        {"inverse_sqrt": {"learning_rate": 0.1, "timescale": 0}},
        r"inverse_sqrt\.timescale: Input should be greater than 0",
    ),
    # cosine_with_restarts
    (
        {"cosine_with_restarts": {"learning_rate": 0.1, "first_cycle_steps": 10, "cycle_multiplier": 0}},
        r"cosine_with_restarts\.cycle_multiplier: Input should be greater than or equal to 1 \(got 0\)",
    ),
    (
        {"cosine_with_restarts": {"learning_rate": 0.1, "first_cycle_steps": 10, "cycle_multiplier": 1.5}},
        r"cosine_with_restarts\.cycle_multiplier: Input should be a valid integer",
    ),
    (
        {"cosine_with_restarts": {"learning_rate": 0.1, "first_cycle_steps": 10, "cycle_decay": 0}},
        r"cosine_with_restarts\.cycle_decay: Input should be greater than 0",
    ),
    # warmup_stable_decay
    (
        {
            "warmup_stable_decay": {
                "learning_rate": 0.1,
                "stable_steps": 5,
                "decay_steps": 5,
                "decay_shape": "exp",
            }
        },
        r"warmup_stable_decay\.decay_shape: Input should be 'linear', 'cosine' or '1-sqrt'",
    ),
    (
        {
            "warmup_stable_decay": {
                "learning_rate": 0.1,
                "stable_steps": 5,
                "decay_steps": 5,
                "final_learning_rate": 1,
            }
        },
        r"warmup_stable_decay\.final_learning_rate:"
        r" final_learning_rate must be at most learning_rate \(0\.1\), got 1\.0",
    ),
    # one_cycle
    (
        {"one_cycle": {"max_learning_rate": 0.1, "total_steps": 100, "pct_start": 1.0}},
        r"one_cycle\.pct_start: Input should be less than 1",
    ),
    (
        {"one_cycle": {"max_learning_rate": 0.1, "total_steps": 3, "pct_start": 0.3}},
        r"one_cycle\.pct_start: pct_start \* total_steps must be greater than 1 .*got 0\.3 \* 3",
    ),
    (
        {"one_cycle": {"max_learning_rate": 0.1, "total_steps": 10, "pct_start": 0.55, "three_phase": True}},
        r"one_cycle\.three_phase: three_phase needs the second phase to end before the last step",
    ),
    (
        {"one_cycle": {"max_learning_rate": 0.1, "total_steps": 100, "anneal_strategy": "cosine"}},
        r"one_cycle\.anneal_strategy: Input should be 'cos' or 'linear'",
    ),
    # cyclic
    (
        {"cyclic": {"base_learning_rate": 0.5, "max_learning_rate": 0.1, "step_size_up": 10}},
        r"cyclic\.max_learning_rate: max_learning_rate must be at"
        r" least base_learning_rate \(0\.5\), got 0\.1",
    ),
    (
        {"cyclic": {"base_learning_rate": 0.1, "max_learning_rate": 0.5, "step_size_up": 10, "gamma": 0.9}},
        r"cyclic\.gamma: gamma applies only to mode exp_range \(mode is triangular\), got 0\.9",
    ),
    (
        {
            "cyclic": {
                "base_learning_rate": 0.1,
                "max_learning_rate": 0.5,
                "step_size_up": 10,
                "step_size_down": 0,
            }
        },
        r"cyclic\.step_size_down: Input should be greater than 0",
    ),
    # sequence
    ({"sequence": []}, r"sequence: a sequence needs at least one phase, got none"),
    (
        {"sequence": [{"schedule": {"constant": 0.1}}, {"schedule": {"constant": 0.2}}]},
        r"sequence: phase 0 of 2 has no steps: every phase but the last needs steps ≥ 1, got steps=None",
    ),
    (
        {
            "sequence": [
                {"steps": 5, "schedule": {"constant": 0.1}},
                {"steps": 5, "schedule": {"constant": 0.2}},
            ]
        },
        r"sequence: the last phase \(1\) runs until the end and takes no steps, got steps=5",
    ),
    (
        {"sequence": [{"steps": 0, "schedule": {"constant": 0.1}}, {"schedule": {"constant": 0.2}}]},
        r"sequence\.0\.steps: Input should be greater than 0 \(got 0\)",
    ),
    (
        {
            "sequence": [
                {
                    "schedule": {
                        "sequence": [{"schedule": {"cosine_decay": {"learning_rate": 0.1, "decay_steps": 0}}}]
                    }
                }
            ]
        },
        r"sequence\.0\.schedule\.sequence\.0\.schedule\.cosine_decay\.decay_steps: "
        r"Input should be greater than 0",
    ),
    (
        {
            "sequence": [
                {
                    "schedule": {
                        "constant": 0.1,
                        "linear": {"start_learning_rate": 0, "end_learning_rate": 1, "steps": 2},
                    }
                }
            ]
        },
        r"sequence\.0\.schedule: exactly one of .* must be set, got 2: constant, linear",
    ),
    (
        {"sequence": [{"steps": 3, "schedule": {"constant": 0.1}, "step": 4}]},
        r"sequence\.0\.step: Extra inputs are not permitted",
    ),
    # the one-of group
    (
        {
            "cosine_decay": {"learning_rate": 0.1, "decay_steps": 10},
            "cyclic": {"base_learning_rate": 0.1, "max_learning_rate": 0.5, "step_size_up": 10},
        },
        r"exactly one of .*cosine_decay.* must be set, got 2: cosine_decay, cyclic",
    ),
    (
        {"cosine_decy": {"learning_rate": 0.1, "decay_steps": 10}},
        r"cosine_decy: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), ERRORS, ids=[f"{i:02d}-{next(iter(d))}" for i, (d, _) in enumerate(ERRORS)]
)
def test_bad_config_fails_at_load_naming_path_rule_and_value(data: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        LearningRate.model_validate(data)
    text = str(ConfigError.from_validation_error(caught.value, prefix=("learning_rate",)))
    assert re.search(r"learning_rate\." + message if not message.startswith("exactly") else message, text), (
        text
    )


def test_yaml_error_names_file_line_and_nested_path(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "sequence:\n"
        "  - steps: 100\n"
        "    schedule:\n"
        "      linear: {start_learning_rate: 0.0, end_learning_rate: 0.1, steps: 100}\n"
        "  - schedule:\n"
        "      cosine_decay:\n"
        "        learning_rate: 0.1\n"
        "        final_learning_rate: 0.5\n"
        "        decay_steps: 1000\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_from_yaml(LearningRate, path)
    assert re.search(
        rf"{re.escape(str(path))}:8:9: sequence\.1\.schedule\.cosine_decay\.final_learning_rate: "
        r"final_learning_rate must be at most learning_rate \(0\.1\), got 0\.5",
        str(caught.value),
    ), str(caught.value)


# --- registry completeness ----------------------------------------------------------------------


def test_every_learning_rate_key_has_a_registered_kind_of_its_type() -> None:
    registered = {kind.key: kind for kind in SCHEDULES.values()}
    assert set(registered) == set(LearningRate.model_fields)
    for key, field in LearningRate.model_fields.items():
        declared = [
            get_args(arg)[0] if get_origin(arg) is Annotated else arg
            for arg in get_args(field.annotation)
            if arg is not type(None)
        ]
        assert declared == [registered[key].config_class], key
        assert field.description, key


@pytest.mark.parametrize("kind", sorted(SCHEDULES.values(), key=lambda k: k.key), ids=lambda k: k.key)
def test_every_kind_documents_its_formula_with_a_doctest(kind: Any) -> None:
    docstring = kind.make.__doc__ or ""
    assert ".. math::" in docstring, f"{kind.key}: no formula in the docstring"
    assert "Examples:" in docstring, f"{kind.key}: no Examples section"
    examples = doctest.DocTestParser().get_examples(docstring)
    assert any(kind.key in example.source for example in examples), f"{kind.key}: the doctest does not use it"


@pytest.mark.parametrize(
    "config_class", sorted({k.config_class for k in SCHEDULES.values()} - {float}, key=str)
)
def test_every_config_field_has_a_description(config_class: Any) -> None:
    fields = getattr(config_class, "model_fields", {})
    if "root" in fields:  # the sequence: a list of phases
        fields = get_args(fields["root"].annotation)[0].model_fields
    for name, field in fields.items():
        assert field.description, f"{config_class.__name__}.{name}"


def _doc_sections() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^## `([a-z_0-9]+)`\s*$", text, flags=re.MULTILINE)
    # A kind's section ends at the next heading of its level (a kind's, or another section's).
    return {
        parts[i]: re.split(r"^## ", parts[i + 1], maxsplit=1, flags=re.MULTILINE)[0]
        for i in range(1, len(parts) - 1, 2)
    }


def test_every_kind_has_a_reference_doc_entry_with_a_valid_yaml_example() -> None:
    sections = _doc_sections()
    assert set(sections) == {kind.key for kind in SCHEDULES.values()}
    for key, section in sections.items():
        assert "Formula" in section and "Fields" in section, key
        blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
        assert blocks, f"{key}: no YAML example"
        for block in blocks:
            document = yaml.safe_load(block)
            schedule = LearningRate.model_validate(document["learning_rate"])
            assert schedule.chosen("lr")[0] == key
            assert math.isfinite(compute_lr(schedule, 0))
        for name in _fields_of(key):
            assert f"`{name}`" in section, f"{key}: field {name} is not documented"


def _fields_of(key: str) -> list[str]:
    kind = next(kind for kind in SCHEDULES.values() if kind.key == key)
    fields = getattr(kind.config_class, "model_fields", {})
    if "root" in fields:
        return ["steps", "schedule"]
    return list(fields)


# --- round trips --------------------------------------------------------------------------------

SAMPLES = [
    {"linear": {"start_learning_rate": 0.1, "end_learning_rate": 1.0, "steps": 10}},
    {"piecewise_linear": {"boundaries": [0, 10], "values": [0.0, 1.0]}},
    {
        "cosine_decay": {
            "learning_rate": 1.0,
            "decay_steps": 10,
            "warmup_steps": 3,
            "warmup_start_learning_rate": 0.1,
        }
    },
    {"polynomial_decay": {"learning_rate": 1.0, "decay_steps": 10, "power": 2.0}},
    {"exponential_decay": {"learning_rate": 1.0, "decay_rate": 0.9, "staircase": True, "decay_steps": 3}},
    {"multistep_decay": {"learning_rate": 1.0, "milestones": [3, 6], "gamma": 0.1}},
    {"inverse_sqrt": {"learning_rate": 1.0, "timescale": 4, "warmup_steps": 4}},
    {
        "cosine_with_restarts": {
            "learning_rate": 1.0,
            "first_cycle_steps": 3,
            "cycle_multiplier": 2,
            "cycle_decay": 0.5,
        }
    },
    {
        "warmup_stable_decay": {
            "learning_rate": 1.0,
            "stable_steps": 3,
            "decay_steps": 3,
            "decay_shape": "1-sqrt",
        }
    },
    {"one_cycle": {"max_learning_rate": 1.0, "total_steps": 20, "three_phase": True}},
    {
        "cyclic": {
            "base_learning_rate": 0.1,
            "max_learning_rate": 1.0,
            "step_size_up": 2,
            "mode": "exp_range",
            "gamma": 0.9,
        }
    },
    {
        "sequence": [
            {"steps": 3, "schedule": {"constant": 0.1}},
            {"schedule": {"sequence": [{"schedule": {"constant": 0.2}}]}},
        ]
    },
    {
        "anneal": {
            "schedule": {
                "warmup_stable_decay": {"learning_rate": 1.0, "stable_steps": 30, "decay_steps": 10}
            },
            "start_step": 12,
            "steps": 6,
            "shape": "cosine",
            "final_learning_rate": 0.1,
        }
    },
]


def test_samples_cover_every_new_kind() -> None:
    seed = {"constant", "piecewise_constant", "linear_ramp_to_constant", "linear_ramp_to_cosine"}
    assert {next(iter(sample)) for sample in SAMPLES} == {k.key for k in SCHEDULES.values()} - seed


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: next(iter(d)))
def test_dump_yaml_and_json_schema_round_trip(data: dict[str, Any]) -> None:
    schedule = _schedule(data)
    again = LearningRate.model_validate(yaml.safe_load(schedule.pretty_print()))
    assert again == schedule
    assert LearningRate.model_validate_json(schedule.model_dump_json()) == schedule
    steps = torch.arange(40)
    assert torch.equal(compute_lr(again, steps), compute_lr(schedule, steps))


def test_json_schema_describes_the_recursive_sequence() -> None:
    schema = LearningRate.model_json_schema()
    definitions = schema["$defs"]
    root = definitions[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    assert set(root["properties"]) == set(LearningRate.model_fields)
    phase = definitions["SequencePhase"]["properties"]
    assert phase["schedule"]["$ref"] == "#/$defs/LearningRate"
    assert "description" in phase["steps"]


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: next(iter(d)))
def test_lrshim_state_dict_round_trip_resumes_exactly(data: dict[str, Any], tmp_path: Path) -> None:
    schedule = _schedule(data)

    def shim() -> tuple[torch.optim.Optimizer, LRShim]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return optimizer, LRShim(optimizer, {"default": schedule})

    optimizer, scheduler = shim()
    for _ in range(13):
        optimizer.step()
        scheduler.step()
    torch.save(scheduler.state_dict(), tmp_path / "scheduler.pt")
    resumed_optimizer, resumed = shim()
    resumed.load_state_dict(torch.load(tmp_path / "scheduler.pt", weights_only=True))
    for step in range(13, 30):
        assert (
            resumed_optimizer.param_groups[0]["lr"]
            == optimizer.param_groups[0]["lr"]
            == compute_lr(schedule, step)
        )
        for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
            opt.step()
            sched.step()


@pytest.mark.parametrize("steps", [np_steps for np_steps in ("numpy",)])
def test_numpy_steps_give_a_numpy_array(steps: str) -> None:
    numpy = pytest.importorskip("numpy")
    schedule = _schedule(SAMPLES[7])
    values = compute_lr(schedule, numpy.arange(50, dtype=numpy.int64))
    assert isinstance(values, numpy.ndarray) and values.dtype == numpy.float64
    assert values.tolist() == [compute_lr(schedule, step) for step in range(50)]


def test_every_schedule_of_the_examples_file_loads() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "schedules.yaml"
    names = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert names
    for name in names:
        schedule = load_config_from_yaml(LearningRate, path, key=name)
        values = compute_lr(schedule, torch.arange(0, 200_000, 997))
        assert torch.isfinite(values).all(), name


@pytest.mark.parametrize(("start", "end"), [(9.0, 1e-6), (1e-6, 9.0), (0.3, 0.1), (0.0, 1e-300)])
def test_linear_ends_exactly_at_its_end_value(start: float, end: float) -> None:
    # start + (end - start) * 1 can miss `end` by rounding when the two differ by orders of magnitude.
    schedule = LearningRate.model_validate(
        {"linear": {"start_learning_rate": start, "end_learning_rate": end, "steps": 7}}
    )
    assert compute_lr(schedule, 0) == start
    assert [compute_lr(schedule, step) for step in (7, 8, 10**12)] == [end, end, end]
    assert compute_lr(schedule, torch.tensor([0, 7, 10**12])).tolist() == [start, end, end]
