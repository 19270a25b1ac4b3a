"""``anneal``: any schedule until ``start_step``, then a decay from its value there (golden values by
formula, computed here), inside a sequence, with lengths relative to the run, and on a tensor lr."""

from __future__ import annotations

import math
from typing import Any

import pydantic
import pytest
import torch
from tests.group_models import small_model, train_step

from tml.optimizers import OptimizerConfig, build_optimizer
from tml.optimizers.schedules import LearningRate, compute_lr, resolve_schedule
from tml.optimizers.schedules.registry import schedule_discontinuities

WSD = {"warmup_stable_decay": {"learning_rate": 1.0, "stable_steps": 100, "decay_steps": 100}}


def anneal(base: dict[str, Any], **fields: Any) -> LearningRate:
    return LearningRate.model_validate({"anneal": {"schedule": base, **fields}})


# (schedule, {step: value}): the base holds 1.0 until 100, the anneal starts at 50 and lasts 20.
GOLDEN: list[tuple[str, LearningRate, dict[int, float]]] = [
    (
        "linear",
        anneal(WSD, start_step=50, steps=20, shape="linear"),
        {0: 1.0, 49: 1.0, 50: 1.0, 55: 0.75, 60: 0.5, 70: 0.0, 150: 0.0, 10**12: 0.0},
    ),
    (
        "cosine to 0.1",
        anneal(WSD, start_step=50, steps=20, shape="cosine", final_learning_rate=0.1),
        {50: 1.0, 55: 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 60: 0.55, 70: 0.1, 99: 0.1},
    ),
    ("1-sqrt", anneal(WSD, start_step=50, steps=20, shape="1-sqrt"), {55: 0.5, 65: 1 - math.sqrt(0.75)}),
    (  # from the middle of a cosine decay: its value at 50 is 0.5
        "over a cosine",
        anneal({"cosine_decay": {"learning_rate": 1.0, "decay_steps": 100}}, start_step=50, steps=10),
        {25: (1 + math.cos(math.pi / 4)) / 2, 50: 0.5, 55: 0.25, 60: 0.0},
    ),
    (  # from step 0: the base's value at 0, the base never used
        "from step 0",
        anneal({"constant": 0.4}, start_step=0, steps=4, final_learning_rate=0.2),
        {0: 0.4, 2: 0.3, 4: 0.2, 5: 0.2},
    ),
    (  # an anneal rising to a higher target is allowed: the formula holds either way
        "upwards",
        anneal({"constant": 0.1}, start_step=10, steps=10, final_learning_rate=0.3),
        {9: 0.1, 15: 0.2, 20: 0.3},
    ),
]


@pytest.mark.parametrize(("schedule", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_golden_values(schedule: LearningRate, expected: dict[int, float]) -> None:
    steps = torch.tensor(list(expected))
    vectorized = compute_lr(schedule, steps).tolist()
    for (step, value), on_tensor in zip(expected.items(), vectorized, strict=True):
        assert compute_lr(schedule, step) == pytest.approx(value, rel=1e-12, abs=1e-15), step
        assert on_tensor == pytest.approx(value, rel=1e-12, abs=1e-15), step


def test_an_anneal_phase_of_a_sequence_counts_from_its_phase() -> None:
    schedule = LearningRate.model_validate(
        {
            "sequence": [
                {"steps": 10, "schedule": {"constant": 0.1}},
                {"schedule": {"anneal": {"schedule": {"constant": 0.2}, "start_step": 5, "steps": 5}}},
            ]
        }
    )
    # phase 2 starts at 10: 0.2 until 15, then linearly to 0 at 20
    assert [compute_lr(schedule, step) for step in (9, 10, 15)] == [0.1, 0.2, 0.2]
    assert compute_lr(schedule, 17) == pytest.approx(0.2 * (1 - 2 / 5), rel=1e-12)
    assert compute_lr(schedule, 20) == 0.0


def test_anneal_from_90_percent_of_the_run() -> None:
    schedule = anneal(
        {"cosine_decay": {"learning_rate": 0.1, "decay_steps": "100%"}}, start_step="90%", steps="10%"
    )
    resolved = resolve_schedule(schedule, total_steps=1000)
    at_start = 0.1 * (1 + math.cos(0.9 * math.pi)) / 2  # the cosine's value at step 900
    assert compute_lr(resolved, 900) == pytest.approx(at_start, rel=1e-12)
    assert compute_lr(resolved, 950) == pytest.approx(at_start / 2, rel=1e-12)
    assert compute_lr(resolved, 1000) == 0.0
    late = anneal(
        {"cosine_decay": {"learning_rate": 0.1, "decay_steps": "100%"}}, start_step="95%", steps="10%"
    )
    with pytest.raises(pydantic.ValidationError, match=r"last phase starts at step 1050, after .* 1000"):
        resolve_schedule(late, total_steps=1000)


def test_a_tensor_lr_follows_the_anneal_in_place() -> None:
    config = OptimizerConfig.model_validate(
        {
            "adam": {"tensor_lr": True, "implementation": "for_loop"},
            "learning_rate": {"anneal": {"schedule": WSD, "start_step": 5, "steps": 10, "shape": "cosine"}},
        }
    )
    model = small_model()
    optimizer, scheduler = build_optimizer(model, config)
    tensor = optimizer.param_groups[0]["lr"]
    assert isinstance(tensor, torch.Tensor)
    for step in range(20):
        assert optimizer.param_groups[0]["lr"] is tensor  # filled in place, never replaced
        assert float(tensor) == compute_lr(scheduler.lr_dict["default"], step)
        train_step(model, optimizer, step)
        scheduler.step()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_step": 0, "steps": 0}, r"anneal\.steps\n.*greater than 0"),
        ({"start_step": -1, "steps": 5}, r"anneal\.start_step\n.*greater than or equal to 0"),
        ({"start_step": 0, "steps": 5, "shape": "sqrt"}, r"anneal\.shape\n.*'linear', 'cosine' or '1-sqrt'"),
        (
            {"start_step": 0, "steps": 5, "final_learning_rate": -1.0},
            r"final_learning_rate\n.*greater than or",
        ),
        ({"start_step": 0}, r"anneal\.steps\n.*Field required"),
    ],
)
def test_bad_anneal_configs_are_refused_at_load(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        LearningRate.model_validate({"anneal": {"schedule": {"constant": 0.1}, **fields}})


def test_a_periodic_base_jumping_at_the_start_beyond_its_listed_cycles_is_a_jump_of_the_anneal() -> None:
    """cosine_with_restarts of 1-step cycles restarts at every step, but lists its first cycles only:
    the anneal from step 9 starts at a restart (1.0, from a left limit of 0.0), so 9 is a jump."""
    restarts = {
        "cosine_with_restarts": {"learning_rate": 1.0, "final_learning_rate": 0.0, "first_cycle_steps": 1}
    }
    annealed = LearningRate.model_validate({"anneal": {"schedule": restarts, "start_step": 9, "steps": 1}})
    assert 9 in schedule_discontinuities(annealed)
    smooth = {"cosine_decay": {"learning_rate": 1.0, "decay_steps": 100}}
    assert (
        schedule_discontinuities(
            LearningRate.model_validate({"anneal": {"schedule": smooth, "start_step": 50, "steps": 10}})
        )
        == []
    )
