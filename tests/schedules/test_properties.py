"""Properties of every registered schedule kind, over configs drawn by hypothesis.

For every kind: the value is finite and within ``schedule_bounds``; the vectorized ``compute_lr``
equals the scalar one within 1e-12 relative (1e-18 absolute near zero); the formula is continuous
at every milestone that the registry does not list as a discontinuity; warmup ramps are monotone;
steps up to 10**12 stay finite and exact.
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tml.optimizers.schedules import (
    SCHEDULES,
    LearningRate,
    WarmupFields,
    compile_schedule,
    compute_lr,
    evaluate,
    schedule_bounds,
    schedule_discontinuities,
    schedule_milestones,
)
from tml.optimizers.schedules.ops import TENSOR

HUGE_STEP = 10**12
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

learning_rates = st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False)
positive_learning_rates = st.floats(1e-6, 10.0, allow_nan=False, allow_infinity=False)
step_counts = st.integers(1, 400)


@st.composite
def peak_and_final(draw: st.DrawFn) -> tuple[float, float]:
    peak = draw(learning_rates)
    final = draw(st.one_of(st.just(0.0), st.floats(0.0, peak)))
    return peak, final


@st.composite
def warmup_fields(draw: st.DrawFn) -> dict[str, Any]:
    warmup_steps = draw(st.sampled_from([0, 0, 1, 7, 100]))
    fields: dict[str, Any] = {"warmup_steps": warmup_steps}
    if warmup_steps:
        fields["warmup_start_learning_rate"] = draw(learning_rates)
    return fields


@st.composite
def strictly_increasing_steps(draw: st.DrawFn, min_size: int = 1) -> list[int]:
    gaps = draw(st.lists(st.integers(1, 300), min_size=min_size, max_size=5))
    first = draw(st.integers(0, 50))
    return [first + sum(gaps[: index + 1]) - gaps[0] for index in range(len(gaps))]


@st.composite
def linear(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "start_learning_rate": draw(learning_rates),
        "end_learning_rate": draw(learning_rates),
        "steps": draw(step_counts),
    }


@st.composite
def piecewise_linear(draw: st.DrawFn) -> dict[str, Any]:
    boundaries = draw(strictly_increasing_steps())
    values = draw(st.lists(learning_rates, min_size=len(boundaries), max_size=len(boundaries)))
    return {"boundaries": boundaries, "values": values}


@st.composite
def cosine_decay(draw: st.DrawFn) -> dict[str, Any]:
    peak, final = draw(peak_and_final())
    return {
        "learning_rate": peak,
        "final_learning_rate": final,
        "decay_steps": draw(step_counts),
        **draw(warmup_fields()),
    }


@st.composite
def polynomial_decay(draw: st.DrawFn) -> dict[str, Any]:
    return {**draw(cosine_decay()), "power": draw(st.floats(0.25, 5.0))}


@st.composite
def exponential_decay(draw: st.DrawFn) -> dict[str, Any]:
    peak, final = draw(peak_and_final())
    return {
        "learning_rate": peak,
        "final_learning_rate": final,
        "decay_rate": draw(st.floats(0.01, 1.0)),
        "decay_steps": draw(step_counts),
        "staircase": draw(st.booleans()),
        **draw(warmup_fields()),
    }


@st.composite
def multistep_decay(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "learning_rate": draw(learning_rates),
        "milestones": draw(strictly_increasing_steps()),
        "gamma": draw(st.floats(0.01, 1.0)),
        **draw(warmup_fields()),
    }


@st.composite
def inverse_sqrt(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "learning_rate": draw(learning_rates),
        "timescale": draw(step_counts),
        **draw(warmup_fields()),
    }


@st.composite
def cosine_with_restarts(draw: st.DrawFn) -> dict[str, Any]:
    peak, final = draw(peak_and_final())
    return {
        "learning_rate": peak,
        "final_learning_rate": final,
        "first_cycle_steps": draw(st.integers(1, 300)),
        "cycle_multiplier": draw(st.sampled_from([1, 1, 2, 3, 10])),
        "cycle_decay": draw(st.one_of(st.just(1.0), st.floats(0.05, 1.0))),
        **draw(warmup_fields()),
    }


@st.composite
def warmup_stable_decay(draw: st.DrawFn) -> dict[str, Any]:
    peak, final = draw(peak_and_final())
    return {
        "learning_rate": peak,
        "final_learning_rate": final,
        "stable_steps": draw(st.integers(0, 300)),
        "decay_steps": draw(step_counts),
        "decay_shape": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        **draw(warmup_fields()),
    }


@st.composite
def one_cycle(draw: st.DrawFn) -> dict[str, Any]:
    total_steps = draw(st.integers(3, 2000))
    pct_start = draw(st.floats(0.01, 0.99))
    three_phase = draw(st.booleans())
    assume(pct_start * total_steps > 1)
    assume(not three_phase or 2 * pct_start * total_steps - 2 < total_steps - 1)
    return {
        "max_learning_rate": draw(learning_rates),
        "total_steps": total_steps,
        "pct_start": pct_start,
        "anneal_strategy": draw(st.sampled_from(["cos", "linear"])),
        "div_factor": draw(st.floats(1.0, 100.0)),
        "final_div_factor": draw(st.floats(1.0, 1e5)),
        "three_phase": three_phase,
    }


@st.composite
def cyclic(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(learning_rates)
    mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
    return {
        "base_learning_rate": base,
        "max_learning_rate": draw(st.floats(base, base + 10.0)),
        "step_size_up": draw(st.integers(1, 300)),
        "step_size_down": draw(st.one_of(st.none(), st.integers(1, 300))),
        "mode": mode,
        "gamma": draw(st.floats(0.9, 1.0)) if mode == "exp_range" else 1.0,
    }


def _seed_kinds() -> dict[str, st.SearchStrategy[Any]]:
    @st.composite
    def piecewise_constant(draw: st.DrawFn) -> dict[str, Any]:
        boundaries = draw(strictly_increasing_steps())
        values = draw(st.lists(learning_rates, min_size=len(boundaries) + 1, max_size=len(boundaries) + 1))
        return {"learning_rate_boundaries": boundaries, "learning_rate_values": values}

    @st.composite
    def linear_ramp_to_cosine(draw: st.DrawFn) -> dict[str, Any]:
        peak, final = draw(peak_and_final())
        ramp = draw(step_counts)
        return {
            "learning_rate": peak,
            "final_learning_rate": final,
            "num_ramp_steps": ramp,
            "final_num_steps": ramp + draw(step_counts),
        }

    return {
        "constant": learning_rates,
        "piecewise_constant": piecewise_constant(),
        "linear_ramp_to_constant": st.fixed_dictionaries(
            {"learning_rate": learning_rates, "num_ramp_steps": step_counts}
        ),
        "linear_ramp_to_cosine": linear_ramp_to_cosine(),
    }


LEAF_KINDS: dict[str, st.SearchStrategy[Any]] = {
    **_seed_kinds(),
    "linear": linear(),
    "piecewise_linear": piecewise_linear(),
    "cosine_decay": cosine_decay(),
    "polynomial_decay": polynomial_decay(),
    "exponential_decay": exponential_decay(),
    "multistep_decay": multistep_decay(),
    "inverse_sqrt": inverse_sqrt(),
    "cosine_with_restarts": cosine_with_restarts(),
    "warmup_stable_decay": warmup_stable_decay(),
    "one_cycle": one_cycle(),
    "cyclic": cyclic(),
}

leaf_schedules = st.one_of(
    [fields.map(lambda value, key=key: {key: value}) for key, fields in LEAF_KINDS.items()]
)


@st.composite
def _sequence_of(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    schedules = draw(st.lists(children, min_size=1, max_size=3))
    phases: list[dict[str, Any]] = [
        {"steps": draw(st.integers(1, 300)), "schedule": schedule} for schedule in schedules[:-1]
    ]
    phases.append({"schedule": schedules[-1]})
    return {"sequence": phases}


@st.composite
def _anneal_of(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    return {
        "anneal": {
            "schedule": draw(children),
            "start_step": draw(st.one_of(st.just(0), st.integers(0, 600))),
            "steps": draw(step_counts),
            "shape": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            "final_learning_rate": draw(st.one_of(st.just(0.0), learning_rates)),
        }
    }


def _composites(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(_sequence_of(children), _anneal_of(children))


schedules_of_every_kind = st.recursive(leaf_schedules, _composites, max_leaves=5)
KIND_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    key: fields.map(lambda value, key=key: {key: value}) for key, fields in LEAF_KINDS.items()
}
KIND_STRATEGIES["sequence"] = _sequence_of(schedules_of_every_kind)
KIND_STRATEGIES["anneal"] = _anneal_of(schedules_of_every_kind)
KIND_KEYS = sorted(KIND_STRATEGIES)


@st.composite
def steps_for(draw: st.DrawFn, schedule: LearningRate) -> list[int]:
    """Steps that matter: near the milestones, small ones, random ones, huge ones."""
    milestones = schedule_milestones(schedule)
    near = [max(0, m + offset) for m in milestones for offset in (-1, 0, 1)]
    return sorted(
        {
            0,
            1,
            HUGE_STEP,
            HUGE_STEP - 1,
            *near,
            *draw(st.lists(st.integers(0, 5000), max_size=20)),
            *draw(st.lists(st.integers(0, HUGE_STEP), max_size=10)),
        }
    )


def test_every_registered_kind_has_a_strategy() -> None:
    assert set(KIND_STRATEGIES) == {kind.key for kind in SCHEDULES.values()}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-18)


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_finite_within_bounds_and_vectorized_equals_scalar(key: str, data: st.DataObject) -> None:
    schedule = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    low, high = schedule_bounds(schedule)
    slack = 1e-12 * max(abs(low), abs(high))
    steps = data.draw(steps_for(schedule))
    vectorized = compute_lr(schedule, torch.tensor(steps, dtype=torch.int64))
    assert vectorized.dtype == torch.float64 and vectorized.shape == (len(steps),)
    for step, vector_value in zip(steps, vectorized.tolist(), strict=True):
        value = compute_lr(schedule, step)
        assert isinstance(value, float)
        assert math.isfinite(value), f"step {step}: {value}"
        assert low - slack <= value <= high + slack, f"step {step}: {value} outside [{low}, {high}]"
        assert _close(vector_value, value), f"step {step}: scalar {value!r}, vectorized {vector_value!r}"


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_vectorized_equals_scalar_on_steps_in_any_order(key: str, data: st.DataObject) -> None:
    # Ascending steps take a fast path (slices); any other order, repeats included, the general one.
    schedule = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    steps = data.draw(steps_for(schedule))
    shuffled = data.draw(st.permutations(steps + steps[:3]))
    _assert_equals_scalar(schedule, shuffled, compute_lr(schedule, torch.tensor(shuffled, dtype=torch.int64)))


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_vectorized_equals_scalar_under_inference_mode(key: str, data: st.DataObject) -> None:
    # Evaluation loops run under inference_mode, whose tensors have no version counter and refuse
    # some view and in-place operations; ascending steps take the sliced fast path.
    schedule = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    steps = sorted(data.draw(steps_for(schedule)))
    with torch.inference_mode():
        vectorized = compute_lr(schedule, torch.tensor(steps, dtype=torch.int64))
    _assert_equals_scalar(schedule, steps, vectorized)


def _assert_equals_scalar(schedule: LearningRate, steps: list[int], vectorized: torch.Tensor) -> None:
    for step, vector_value in zip(steps, vectorized.tolist(), strict=True):
        value = compute_lr(schedule, step)
        assert _close(vector_value, value), f"step {step}: scalar {value!r}, vectorized {vector_value!r}"


def _at(schedule: LearningRate, t: float) -> float:
    """The formula at a real-valued step (the tensor backend accepts fractional steps)."""
    return float(evaluate(schedule, torch.tensor([t], dtype=torch.float64), TENSOR)[0])


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_continuous_at_milestones_that_are_not_jumps(key: str, data: st.DataObject) -> None:
    schedule = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    jumps = set(schedule_discontinuities(schedule))
    low, high = schedule_bounds(schedule)
    noise = 1e-12 * max(abs(low), abs(high), 1e-300)
    for milestone in schedule_milestones(schedule):
        if milestone in jumps:
            continue
        value = _at(schedule, milestone)
        # A continuous function's gap to its neighbours shrinks with the distance; a jump does not.
        for side in (-1, 1):
            if milestone + side * 1e-3 < 0:
                continue
            far = abs(_at(schedule, milestone + side * 1e-3) - value)
            near = abs(_at(schedule, milestone + side * 1e-9 * max(milestone, 1)) - value)
            assert near <= 0.5 * far + noise, (
                f"{key} jumps at milestone {milestone} (side {side}): gap {near} at 1e-9, {far} at 1e-3"
            )


WARMUP_KEYS = sorted(kind.key for kind in SCHEDULES.values() if issubclass(kind.config_class, WarmupFields))


@pytest.mark.parametrize("key", WARMUP_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_warmup_is_a_monotone_ramp_onto_the_schedule(key: str, data: st.DataObject) -> None:
    fields = data.draw(LEAF_KINDS[key])
    warmup_steps = data.draw(st.integers(1, 200))
    start = data.draw(learning_rates)
    warmed = LearningRate.model_validate(
        {key: {**fields, "warmup_steps": warmup_steps, "warmup_start_learning_rate": start}}
    )
    body = LearningRate.model_validate(
        {key: {**fields, "warmup_steps": 0, "warmup_start_learning_rate": 0.0}}
    )
    target = compute_lr(body, 0)
    ramp = [compute_lr(warmed, step) for step in range(warmup_steps + 1)]
    assert ramp[0] == start
    assert ramp[-1] == target
    direction = 1.0 if target >= start else -1.0
    assert all(direction * (later - earlier) >= 0 for earlier, later in itertools.pairwise(ramp))
    for step in data.draw(st.lists(st.integers(0, HUGE_STEP - warmup_steps), max_size=10)):
        assert compute_lr(warmed, warmup_steps + step) == compute_lr(body, step)


def test_every_kind_is_one_constructor_for_both_backends() -> None:
    # Each kind is one make(config, ops), for the scalar closure and the vectorized path alike:
    # no kind has a second, scalar-only copy of its formula.
    for kind in SCHEDULES.values():
        assert list(inspect.signature(kind.make).parameters)[1:] == ["ops"], kind.key


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_the_compiled_closure_equals_compute_lr(key: str, data: st.DataObject) -> None:
    # Every registered kind, warmups and nested
    # sequences included, at the boundary steps (milestones ± 1, 0, 1, huge) and at random steps.
    schedule = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    lr_at = compile_schedule(schedule)
    for step in data.draw(steps_for(schedule)):
        value, expected = lr_at(step), compute_lr(schedule, step)
        assert type(value) is float
        assert value == expected, f"step {step}: closure {value!r}, compute_lr {expected!r}"
