"""Lengths relative to the run: ``"2%"`` of ``total_steps`` and ``"3ep"`` epochs, resolved at build.

Golden values computed here by formula (the rounding with ``decimal``, independently of the
implementation's rational arithmetic), a property over every kind (a config written with relative
lengths resolves to the absolute config it stands for), and the refusals at load and at build.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pydantic
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from tests.group_models import small_model
from tests.schedules.test_properties import KIND_KEYS, KIND_STRATEGIES, PROPERTY_SETTINGS

from tml.optimizers import build_optimizer
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.fields import RUN_LENGTH, relative_lengths
from tml.optimizers.schedules import (
    SCHEDULES,
    LearningRate,
    SequencePhase,
    compute_lr,
    resolve_schedule,
    schedule_last_phase,
)
from tml.optimizers.schedules.run import Run, length_in_steps


def _decimal_steps(number: str, of: int, percent: bool) -> int:
    """The steps of a relative length by ``decimal``: the exact product, rounded half up."""
    exact = Decimal(number) * of / (100 if percent else 1)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# (written, total_steps, steps_per_epoch, steps): the rounding rule at its edges
ROUNDING = [
    ("2%", 1000, None, 20),  # exact
    ("2.5%", 100, None, 3),  # 2.5 steps: a half rounds up
    ("0.5%", 100, None, 1),  # 0.5 steps: a half rounds up, to 1
    ("0.49%", 100, None, 0),  # 0.49 steps: down, to 0
    ("33.333%", 3, None, 1),  # 0.99999 steps
    ("12.5%", 7, None, 1),  # 0.875 steps
    ("100%", 123_457, None, 123_457),  # the whole run
    ("150%", 10, None, 15),  # more than the run: a length, not a position
    ("1.5ep", None, 3, 5),  # 4.5 steps: a half rounds up
    ("0.1ep", None, 7, 1),  # 0.7 steps
    ("3ep", None, 1000, 3000),
    ("0.000001%", 10**15, None, 10**7),  # exact at huge runs (a float product would round)
]


@pytest.mark.parametrize(("written", "total", "per_epoch", "steps"), ROUNDING)
def test_rounding_rule_golden_values(
    written: str, total: int | None, per_epoch: int | None, steps: int
) -> None:
    number, percent = written.rstrip("%ep"), written.endswith("%")
    assert _decimal_steps(number, total if percent else per_epoch, percent) == steps  # type: ignore[arg-type]
    assert length_in_steps(written, Run(total, per_epoch)) == steps


def test_golden_values_of_a_relative_warmup_and_cosine() -> None:
    # warmup 10% of 1000 = 100 steps from 0 to 0.1, then a half cosine over 90% = 900 steps to 0.
    schedule = LearningRate.model_validate(
        {"cosine_decay": {"learning_rate": 0.1, "warmup_steps": "10%", "decay_steps": "90%"}}
    )
    resolved = resolve_schedule(schedule, total_steps=1000)
    expected = {
        0: 0.0,
        50: 0.05,  # half of the ramp
        100: 0.1,  # the peak
        550: 0.1 * (1 + math.cos(math.pi * 450 / 900)) / 2,  # half of the decay: 0.05
        1000: 0.0,  # the end of the run
    }
    for step, value in expected.items():
        assert compute_lr(resolved, step) == pytest.approx(value, rel=1e-12, abs=1e-15), step


def test_epochs_and_percentages_mix_in_one_sequence() -> None:
    # 2 epochs of 50 steps of constant 1.0, then a linear fall over 10% of 2000 = 200 steps.
    schedule = LearningRate.model_validate(
        {
            "sequence": [
                {"steps": "2ep", "schedule": {"constant": 1.0}},
                {
                    "schedule": {
                        "linear": {"start_learning_rate": 1.0, "end_learning_rate": 0.0, "steps": "10%"}
                    }
                },
            ]
        }
    )
    resolved = resolve_schedule(schedule, total_steps=2000, steps_per_epoch=50)
    assert resolved.sequence is not None
    assert [phase.steps for phase in resolved.sequence.root] == [100, None]
    assert [compute_lr(resolved, step) for step in (99, 100, 200, 300)] == [1.0, 1.0, 0.5, 0.0]


def test_one_cycle_total_steps_left_out_is_the_runs() -> None:
    # Left out, one_cycle's total_steps is the run's; given, it is the cycle's own length.
    run_length = OptimizerConfig.model_validate(
        {"sgd": {"lr": 1.0}, "total_steps": 400, "learning_rate": {"one_cycle": {"max_learning_rate": 1.0}}}
    )
    own_length = OptimizerConfig.model_validate(
        {"sgd": {"lr": 1.0}, "learning_rate": {"one_cycle": {"max_learning_rate": 1.0, "total_steps": 400}}}
    )
    assert run_length.group_specs()[0].schedule == own_length.group_specs()[0].schedule
    independent = OptimizerConfig.model_validate(
        {
            "sgd": {"lr": 1.0},
            "total_steps": 1000,
            "learning_rate": {"one_cycle": {"max_learning_rate": 1.0, "total_steps": 400}},
        }
    )
    assert independent.group_specs()[0].schedule == own_length.group_specs()[0].schedule
    with pytest.raises(pydantic.ValidationError, match=r"one_cycle\.total_steps\n.*'100%' is a fraction"):
        build_optimizer(
            small_model(),
            OptimizerConfig.model_validate(
                {"sgd": {"lr": 1.0}, "learning_rate": {"one_cycle": {"max_learning_rate": 1.0}}}
            ),
        )


# ---------------------------------------------------------------- the property over every kind


def _length_fields() -> set[str]:
    """Every field of a schedule kind that takes a relative length (marked ``RUN_LENGTH``, directly or
    in a list or optional type)."""
    classes = [kind.config_class for kind in SCHEDULES.values() if kind.config_class is not float]
    names = set()
    for config_class in [*classes, SequencePhase]:
        for name, field in config_class.model_fields.items():
            if RUN_LENGTH in field.metadata or "RUN_LENGTH" in repr(field.annotation):
                names.add(name)
    return names


LENGTH_FIELDS = _length_fields()


def test_every_length_field_takes_a_relative_length() -> None:
    expected = {
        "num_ramp_steps", "final_num_steps", "learning_rate_boundaries", "steps", "boundaries",
        "warmup_steps", "decay_steps", "milestones", "timescale", "stable_steps", "first_cycle_steps",
        "total_steps", "step_size_up", "step_size_down",
    }  # fmt: skip
    assert expected <= LENGTH_FIELDS, expected - LENGTH_FIELDS


def _relative(steps: int, total: int, per_epoch: int, use_epochs: bool) -> str:
    """``steps`` as an exact percentage of ``total`` or an exact number of epochs."""
    if use_epochs:
        return f"{format((Decimal(steps) / per_epoch).normalize(), 'f')}ep"
    return f"{format((Decimal(steps) * 100 / total).normalize(), 'f')}%"


def _written_relative(data: Any, draw: st.DrawFn, total: int, per_epoch: int, key: str | None = None) -> Any:
    """``data`` (a schedule as plain data) with some of its lengths written relative to the run."""
    if isinstance(data, dict):
        return {name: _written_relative(value, draw, total, per_epoch, name) for name, value in data.items()}
    if isinstance(data, list):
        return [_written_relative(item, draw, total, per_epoch, key) for item in data]
    if key in LENGTH_FIELDS and isinstance(data, int) and not isinstance(data, bool) and draw(st.booleans()):
        return _relative(data, total, per_epoch, draw(st.booleans()))
    return data


@pytest.mark.parametrize("key", KIND_KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_relative_lengths_resolve_to_the_absolute_config(key: str, data: st.DataObject) -> None:
    absolute = LearningRate.model_validate(data.draw(KIND_STRATEGIES[key]))
    # A run of 100 * 2**k steps (at least the schedule's length) and epochs of 2**j steps: every
    # length is an exact decimal percentage and number of epochs.
    power = max(0, math.ceil(math.log2(max(1, schedule_last_phase(absolute)) / 100)))
    total, per_epoch = 100 * 2 ** data.draw(st.integers(power, power + 3)), 2 ** data.draw(st.integers(0, 6))
    written = _written_relative(
        absolute.model_dump(mode="json", exclude_none=True), data.draw, total, per_epoch
    )
    relative = LearningRate.model_validate(written)
    event(f"relative lengths: {min(len(relative_lengths(relative)), 3)}")
    resolved = resolve_schedule(relative, total_steps=total, steps_per_epoch=per_epoch)
    assert resolved == absolute
    steps = torch.tensor([0, 1, total // 2, total, 10**12])
    assert torch.equal(compute_lr(resolved, steps), compute_lr(absolute, steps))


# ---------------------------------------------------------------- refusals at build


def _cosine(**fields: Any) -> dict[str, Any]:
    return {"sgd": {"lr": 0.1}, "learning_rate": {"cosine_decay": {"learning_rate": 0.1, **fields}}}


# (config, build_optimizer's keywords, error type, message regex)
BUILD_REFUSALS: list[tuple[dict[str, Any], dict[str, Any], type[Exception], str]] = [
    (
        _cosine(warmup_steps="2%", decay_steps=1000),
        {},
        pydantic.ValidationError,
        r"learning_rate\.cosine_decay\.warmup_steps\n.*'2%' is a fraction of the run's total_steps, which "
        r"is not given",
    ),
    (
        _cosine(decay_steps="3ep"),
        {"total_steps": 1000},
        pydantic.ValidationError,
        r"learning_rate\.cosine_decay\.decay_steps\n.*'3ep' is a number of epochs, and steps_per_epoch is "
        r"not given",
    ),
    (
        {**_cosine(decay_steps="50%"), "total_steps": 1000},
        {"total_steps": 2000},
        ValueError,
        r"total_steps 2000 was given for the run, but the optimizer config sets total_steps: 1000",
    ),
    (
        _cosine(warmup_steps="2%", decay_steps="100%"),
        {"total_steps": 1000},
        pydantic.ValidationError,
        r"learning_rate\n.*last phase starts at step 1020, after the run's total_steps 1000.*"
        r"warmup_steps '2%' = 20, cosine_decay\.decay_steps '100%' = 1000",
    ),
    (
        _cosine(decay_steps="0.01%"),
        {"total_steps": 1000},
        pydantic.ValidationError,
        r"learning_rate\.cosine_decay\.decay_steps\n.*greater than 0 \(relative lengths resolved with "
        r"total_steps 1000: cosine_decay\.decay_steps '0\.01%' = 0\)",
    ),
    (
        {
            "sgd": {"lr": 0.1},
            "param_groups": [
                {
                    "name": "towers",
                    "params": ["1.*"],
                    "learning_rate": {
                        "piecewise_constant": {
                            "learning_rate_boundaries": ["50%", 400],
                            "learning_rate_values": [0.1, 0.01, 0.001],
                        }
                    },
                }
            ],
        },
        {"total_steps": 1000},
        pydantic.ValidationError,
        r"param_groups\.0\.learning_rate\.piecewise_constant\.learning_rate_boundaries\n.*strictly "
        r"increasing, got 400 at index 1 after 500",
    ),
    ({"sgd": {"lr": 0.1}}, {"total_steps": 0}, ValueError, r"total_steps must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize(("data", "keywords", "error", "message"), BUILD_REFUSALS)
def test_refusals_at_build(
    data: dict[str, Any], keywords: dict[str, Any], error: type[Exception], message: str
) -> None:
    config = OptimizerConfig.model_validate(data)  # relative lengths without the run load
    with pytest.raises(error, match=message):
        build_optimizer(small_model(), config, **keywords)


def test_build_resolves_once_and_the_scheduler_holds_the_resolved_schedule() -> None:
    config = OptimizerConfig.model_validate(_cosine(warmup_steps="10%", decay_steps="90%"))
    scheduler = build_optimizer(small_model(), config, total_steps=200)[1]
    resolved = scheduler.lr_dict["default"].cosine_decay
    assert resolved is not None and (resolved.warmup_steps, resolved.decay_steps) == (20, 180)
    assert config.total_steps is None  # the caller's config is not changed
    same = build_optimizer(small_model(), config.model_copy(update={"total_steps": 200}))[1]
    assert same.lr_dict == scheduler.lr_dict


def test_compute_lr_refuses_an_unresolved_schedule() -> None:
    schedule = LearningRate.model_validate(
        {"linear": {"start_learning_rate": 0, "end_learning_rate": 1, "steps": "5%"}}
    )
    with pytest.raises(ValueError, match=re.escape("not resolved to steps (linear.steps '5%')")):
        compute_lr(schedule, 0)
    with pytest.raises(ValueError, match="not resolved"):
        compute_lr(schedule, torch.arange(3))


def test_lightning_configure_optimizers_takes_the_run() -> None:
    from tml.optimizers.integrations.lightning import configure_optimizers

    config = OptimizerConfig.model_validate(_cosine(warmup_steps="10%", decay_steps="90%"))
    scheduler = configure_optimizers(small_model(), config, total_steps=50)["lr_scheduler"]["scheduler"]
    resolved = scheduler.lr_dict["default"].cosine_decay
    assert resolved is not None and (resolved.warmup_steps, resolved.decay_steps) == (5, 45)
