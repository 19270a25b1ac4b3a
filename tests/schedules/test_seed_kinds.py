"""The seed's four schedule kinds: golden values by the formula, properties, vectorized evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tml.optimizers import (
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    PiecewiseConstant,
    compute_lr,
)
from tml.optimizers.schedules import schedule_bounds

HUGE_STEP = 10**12

RAMP_TO_COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.001, final_learning_rate=1e-5, num_ramp_steps=1000, final_num_steps=100_000
    )
)


def ramp_to_cosine_formula(step: int, peak: float, final: float, ramp: int, end: int) -> float:
    # The seed's definition, written out independently of the library.
    if step < ramp:
        return peak / ramp * step
    if step <= end:
        return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (step - ramp) / (end - ramp)))
    return final


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        # constant: the value at every step
        (LearningRate(constant=0.25), 0, 0.25),
        (LearningRate(constant=0.25), HUGE_STEP, 0.25),
        (LearningRate(constant=0.0), 7, 0.0),
        # piecewise_constant: values[bisect_right(boundaries, step)]
        *[
            (
                LearningRate(
                    piecewise_constant=PiecewiseConstant(
                        learning_rate_boundaries=[100, 200], learning_rate_values=[1.0, 0.1, 0.01]
                    )
                ),
                step,
                expected,
            )
            for step, expected in [
                (0, 1.0),
                (99, 1.0),
                (100, 0.1),
                (199, 0.1),
                (200, 0.01),
                (HUGE_STEP, 0.01),
            ]
        ],
        # a boundary at 0: the first value is never used
        (
            LearningRate(
                piecewise_constant=PiecewiseConstant(
                    learning_rate_boundaries=[0], learning_rate_values=[9.0, 3.0]
                )
            ),
            0,
            3.0,
        ),
        # linear_ramp_to_constant: min(lr, lr / ramp * step)
        *[
            (
                LearningRate(
                    linear_ramp_to_constant=LinearRampToConstant(learning_rate=0.004, num_ramp_steps=8)
                ),
                step,
                min(0.004, 0.004 / 8 * step),
            )
            for step in (0, 1, 4, 7, 8, 9, HUGE_STEP)
        ],
        # linear_ramp_to_cosine: ramp, the peak at the ramp's end, the half cosine, the floor after
        *[
            (RAMP_TO_COSINE, step, ramp_to_cosine_formula(step, 0.001, 1e-5, 1000, 100_000))
            for step in (0, 1, 999, 1000, 1001, 50_500, 99_999, 100_000, 100_001, HUGE_STEP)
        ],
    ],
)
def test_golden_values(schedule: LearningRate, step: int, expected: float) -> None:
    # 1e-12: the cosine is evaluated in a cancellation-free form, equal to the seed formula to rounding
    assert compute_lr(schedule, step) == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_ramp_to_cosine_landmarks() -> None:
    # Values that follow from the definition alone: 0 at the start, the peak at the ramp's end,
    # the midpoint of peak and floor halfway through the decay, the floor at the end.
    assert compute_lr(RAMP_TO_COSINE, 0) == 0.0
    assert compute_lr(RAMP_TO_COSINE, 1000) == pytest.approx(0.001, rel=1e-15)
    assert compute_lr(RAMP_TO_COSINE, 50_500) == pytest.approx((0.001 + 1e-5) / 2, rel=1e-12)
    assert compute_lr(RAMP_TO_COSINE, 100_000) == pytest.approx(1e-5, rel=1e-12)


# ---------------------------------------------------------------- properties (hypothesis)

learning_rates = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
steps = st.integers(min_value=1, max_value=10**6)


@st.composite
def seed_schedules(draw: st.DrawFn) -> LearningRate:
    kind = draw(st.sampled_from(["constant", "piecewise", "ramp_constant", "ramp_cosine"]))
    if kind == "constant":
        return LearningRate(constant=draw(learning_rates))
    if kind == "piecewise":
        boundaries = sorted(draw(st.sets(st.integers(0, 10**6), min_size=0, max_size=6)))
        values = draw(st.lists(learning_rates, min_size=len(boundaries) + 1, max_size=len(boundaries) + 1))
        return LearningRate(
            piecewise_constant=PiecewiseConstant(
                learning_rate_boundaries=boundaries, learning_rate_values=values
            )
        )
    if kind == "ramp_constant":
        return LearningRate(
            linear_ramp_to_constant=LinearRampToConstant(
                learning_rate=draw(learning_rates), num_ramp_steps=draw(steps)
            )
        )
    ramp = draw(steps)
    return LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=draw(learning_rates),
            final_learning_rate=draw(learning_rates),
            num_ramp_steps=ramp,
            final_num_steps=ramp + draw(steps),
        )
    )


@settings(max_examples=300, deadline=None)
@given(schedule=seed_schedules(), step=st.one_of(st.integers(0, 10**7), st.just(HUGE_STEP)))
def test_finite_and_within_bounds(schedule: LearningRate, step: int) -> None:
    low, high = schedule_bounds(schedule)
    value = compute_lr(schedule, step)
    assert math.isfinite(value)
    assert low * (1 - 1e-12) <= value <= high * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(peak=learning_rates, ramp=steps, data=st.data())
def test_ramps_are_monotone(peak: float, ramp: int, data: st.DataObject) -> None:
    first, second = sorted(data.draw(st.lists(st.integers(0, 2 * ramp), min_size=2, max_size=2)))
    schedule = LearningRate(
        linear_ramp_to_constant=LinearRampToConstant(learning_rate=peak, num_ramp_steps=ramp)
    )
    assert compute_lr(schedule, first) <= compute_lr(schedule, second)


@settings(max_examples=100, deadline=None)
@given(schedule=seed_schedules())
def test_huge_step_is_the_final_value(schedule: LearningRate) -> None:
    # Far beyond every phase, each kind sits at its last value, exactly.
    kind_name, kind = schedule.chosen()
    expected = {
        "constant": lambda: kind,
        "piecewise_constant": lambda: kind.learning_rate_values[-1],
        # the seed's min(lr, lr / ramp * step): lr itself, unless lr / ramp underflows to 0
        "linear_ramp_to_constant": lambda: min(
            kind.learning_rate, kind.learning_rate / kind.num_ramp_steps * HUGE_STEP
        ),
        "linear_ramp_to_cosine": lambda: kind.final_learning_rate,
    }[kind_name]()
    assert compute_lr(schedule, HUGE_STEP) == expected


@settings(max_examples=100, deadline=None)
@given(schedule=seed_schedules())
def test_vectorized_equals_scalar(schedule: LearningRate) -> None:
    grid = [0, 1, 2, 3, 10, 99, 100, 101, 999, 1000, 1001, 10**5, 10**6, 10**6 + 1, 2 * 10**6, HUGE_STEP]
    scalar = [compute_lr(schedule, step) for step in grid]
    tensor_values = compute_lr(schedule, torch.tensor(grid))
    array_values = compute_lr(schedule, np.array(grid, dtype=np.int64))
    assert tensor_values.dtype == torch.float64
    assert isinstance(array_values, np.ndarray) and array_values.dtype == np.float64
    np.testing.assert_allclose(tensor_values.numpy(), scalar, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(array_values, scalar, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (-1, ValueError),
        (True, TypeError),
        (1.5, TypeError),
        (torch.tensor([0.5]), TypeError),
        (torch.tensor([[1, 2]]), TypeError),
        (torch.tensor([3, -2]), ValueError),
    ],
)
def test_bad_steps_are_refused(step: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        compute_lr(LearningRate(constant=0.1), step)
