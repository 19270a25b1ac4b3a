"""LRShim, the torch scheduler that writes closed-form schedules into param groups.

Its construction checks, the per-step write (shared schedules evaluated once, multipliers, tensor and
float LRs), the two schedule positions (``scheduler_steps``; ``optimizer_steps`` with GradScaler),
``state_dict`` / ``state_differences`` / ``load_state_dict``, resume, and flat memory. The
1,000,000-step memory run is in ``test_lr_shim_memory.py`` (slow).
"""

from __future__ import annotations

import gc
import math
import re
import tracemalloc
import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.group_models import TowerModel, parameters_equal, round_trip, small_model, tower_batch, train_step

import tml.optimizers.runtime.lr_shim as lr_shim_module
from tml.optimizers import (
    AdagradConfig,
    AdamConfig,
    LearningRate,
    LinearRampToCosine,
    LRShim,
    OptimizerConfig,
    PiecewiseConstant,
    SgdConfig,
    build_optimizer,
    compute_lr,
)

COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.1, num_ramp_steps=5, final_learning_rate=0.001, final_num_steps=20
    )
)
CONSTANT = LearningRate(constant=0.3)
RAMP_COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.05, final_learning_rate=0.001, num_ramp_steps=5, final_num_steps=30
    )
)


def ramp_cosine(peak: float, final: float, ramp: int, end: int, step: int) -> float:
    """linear_ramp_to_cosine written out: ``peak * t / ramp`` up to ``ramp``, then a half cosine from
    ``peak`` to ``final`` at ``end``, then ``final``."""
    if step < ramp:
        return peak * step / ramp
    if step < end:
        return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (step - ramp) / (end - ramp)))
    return final


def cosine_lr(step: int) -> float:
    return ramp_cosine(0.1, 0.001, 5, 20, step)


def ramp_cosine_lr(step: int) -> float:
    return ramp_cosine(0.05, 0.001, 5, 30, step)


def named_sgd(names: Iterable[str], lr: float = 1.0) -> torch.optim.SGD:
    """An SGD optimizer with one one-parameter group per name of ``names`` (a string: per letter)."""
    return torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "name": name} for name in names], lr=lr
    )


def test_the_formulas_of_this_file_are_those_of_compute_lr() -> None:
    for step in [0, 1, 4, 5, 6, 12, 19, 20, 21, 29, 30, 31, 10**6]:
        assert compute_lr(COSINE, step) == pytest.approx(cosine_lr(step), rel=1e-12, abs=1e-15), step
        assert compute_lr(RAMP_COSINE, step) == pytest.approx(ramp_cosine_lr(step), rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------- construction checks


def test_group_count_mismatch_names_both_counts() -> None:
    optimizer = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(1))]}] * 1, lr=0.1)
    with pytest.raises(
        ValueError, match=r"1 param groups but lr_dict has 2 schedules \(groups named: x, y\)"
    ):
        LRShim(optimizer, {"x": LearningRate(constant=0.1), "y": LearningRate(constant=0.2)})


def test_lr_shim_checks_group_names_and_multipliers() -> None:
    optimizer = named_sgd(["towers"])
    constant = LearningRate(constant=0.1)
    with pytest.raises(
        ValueError, match=r"param groups are named \['towers'\] but lr_dict names \['default'\]"
    ):
        LRShim(optimizer, {"default": constant})
    with pytest.raises(ValueError, match="schedule_position must be one of scheduler_steps, optimizer_steps"):
        LRShim(optimizer, {"towers": constant}, schedule_position="epochs")
    unknown = r"lr_multipliers names groups that lr_dict does not have: \['tower'\]$"
    with pytest.raises(ValueError, match=unknown):
        LRShim(optimizer, {"towers": constant}, lr_multipliers={"tower": 2.0})
    doubled = LRShim(optimizer, {"towers": constant}, lr_multipliers={"towers": 2.0})
    assert optimizer.param_groups[0]["lr"] == 2.0 * 0.1
    assert doubled.lr_multipliers == {"towers": 2.0} and doubled.group_names == ["towers"]
    state = doubled.state_dict()
    assert state["schedules"] == [{"constant": 0.1, "lr_multiplier": 2.0}]
    plain = LRShim(optimizer, {"towers": constant})
    assert plain.lr_multipliers == {"towers": 1.0}
    with pytest.raises(ValueError, match="schedules differ"):
        plain.load_state_dict(state)


def test_step_with_epoch_is_refused() -> None:
    _, scheduler = build_optimizer(small_model(), OptimizerConfig(sgd=SgdConfig(lr=0.1)))
    with pytest.raises(TypeError, match="takes no epoch"):
        scheduler.step(5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the per-step write


def counting_compile_schedule(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Make LRShim's ``compile_schedule`` count: one entry per compiled closure, holding the steps at
    which that closure was evaluated."""
    calls: list[list[int]] = []
    compile_schedule = lr_shim_module.compile_schedule

    def counting(config: LearningRate) -> Callable[[int], float]:
        lr_at = compile_schedule(config)
        steps: list[int] = []
        calls.append(steps)

        def counted(step: int) -> float:
            steps.append(step)
            return lr_at(step)

        return counted

    monkeypatch.setattr(lr_shim_module, "compile_schedule", counting)
    return calls


def test_groups_sharing_a_schedule_evaluate_it_once_and_apply_their_multipliers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counting_compile_schedule(monkeypatch)
    optimizer = named_sgd("abcde")
    optimizer.param_groups[3]["lr"] = torch.tensor(0.0, dtype=torch.float64)
    tensor_lr = optimizer.param_groups[3]["lr"]
    # An equal config built separately counts as the same schedule.
    copy = LearningRate.model_validate(COSINE.model_dump())
    scheduler = LRShim(
        optimizer,
        {"a": COSINE, "b": copy, "c": CONSTANT, "d": COSINE, "e": COSINE},
        lr_multipliers={"a": 1.0, "b": 0.5, "d": 2.0, "e": 0.5},
    )
    # Two distinct schedules: two closures, each evaluated once per write (the first at construction).
    assert calls == [[0], [0]]
    for step in range(25):
        assert calls == [list(range(step + 1))] * 2, step
        cosine = compute_lr(COSINE, step)
        assert cosine == pytest.approx(cosine_lr(step), rel=1e-12, abs=1e-15)
        expected = [cosine, 0.5 * cosine, 0.3, 2.0 * cosine, 0.5 * cosine]
        lrs = [float(group["lr"]) for group in optimizer.param_groups]
        assert lrs == expected, step
        assert scheduler.get_last_lr() == expected
        assert scheduler.get_lr() == expected
        assert type(optimizer.param_groups[0]["lr"]) is float
        assert optimizer.param_groups[3]["lr"] is tensor_lr  # written in place
        del calls[0][step + 1 :], calls[1][step + 1 :]  # forget get_last_lr's and get_lr's evaluations
        scheduler.step()


def test_get_lr_has_no_side_effect() -> None:
    optimizer = named_sgd("a")
    scheduler = LRShim(optimizer, {"a": COSINE})
    for _ in range(3):
        scheduler.step()
    optimizer.param_groups[0]["lr"] = 7.0
    assert scheduler.get_lr() == [compute_lr(COSINE, 3)]
    assert scheduler.last_epoch == 3 and optimizer.param_groups[0]["lr"] == 7.0
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == compute_lr(COSINE, 4)


def test_defect_2_plain_torch_optimizer() -> None:
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = LRShim(optimizer, {"all": RAMP_COSINE})
    assert optimizer.param_groups[0]["lr"] == compute_lr(RAMP_COSINE, 0) == ramp_cosine_lr(0)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == compute_lr(RAMP_COSINE, 1)
    assert compute_lr(RAMP_COSINE, 1) == pytest.approx(ramp_cosine_lr(1), rel=1e-12)


class ContainerOfOptimizers(torch.optim.Optimizer):
    """The shape of torchrec's CombinedOptimizer: `_optims` is a list of (name, optimizer)."""

    def __init__(self, optimizers: list[tuple[str, torch.optim.Optimizer]]) -> None:
        self._optims = optimizers
        self.defaults: dict[str, Any] = {}
        self.state: dict[Any, Any] = {}

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for _, optimizer in self._optims for group in optimizer.param_groups]

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for _, optimizer in self._optims:
            optimizer.step()


def test_defect_2_container_with_optims() -> None:
    model = small_model()
    first = torch.optim.SGD(model[0].parameters(), lr=1.0)
    second = torch.optim.Adam([{"params": [model[2].weight]}, {"params": [model[2].bias]}], lr=1.0)
    combined = ContainerOfOptimizers([("first", first), ("second", second)])
    schedules = {"a": LearningRate(constant=0.1), "b": RAMP_COSINE, "c": LearningRate(constant=0.3)}
    scheduler = LRShim(combined, schedules)
    for step in range(1, 4):
        combined.step()
        scheduler.step()
        assert first.param_groups[0]["lr"] == 0.1
        assert second.param_groups[0]["lr"] == compute_lr(RAMP_COSINE, step)
        assert second.param_groups[1]["lr"] == 0.3
    with pytest.raises(
        ValueError, match=r"3 param groups but lr_dict has 2 schedules \(groups named: a, b\)"
    ):
        LRShim(combined, {"a": LearningRate(constant=0.1), "b": RAMP_COSINE})


def test_step_numbering_matches_compute_lr() -> None:
    model = small_model()
    optimizer, scheduler = build_optimizer(
        model, OptimizerConfig(adam=AdamConfig(), learning_rate=RAMP_COSINE)
    )
    assert optimizer.param_groups[0]["lr"] == compute_lr(RAMP_COSINE, 0) == 0.0
    assert scheduler.last_epoch == 0 and scheduler.state_dict()["step_count"] == 1
    for k in range(1, 40):
        train_step(model, optimizer, k)
        scheduler.step()
        expected = compute_lr(RAMP_COSINE, k)
        assert expected == pytest.approx(ramp_cosine_lr(k), rel=1e-12, abs=1e-15)
        assert optimizer.param_groups[0]["lr"] == expected
        assert scheduler.get_last_lr() == [expected]
        assert scheduler.last_epoch == k
        assert scheduler.state_dict()["step_count"] == k + 1


def test_tensor_lr_is_filled_in_place_and_float_stays_float() -> None:
    tensor_param, float_param = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    lr_tensor = torch.tensor(0.5)
    optimizer = torch.optim.Adam(
        [{"params": [tensor_param], "lr": lr_tensor}, {"params": [float_param], "lr": 0.5}], lr=0.5
    )
    scheduler = LRShim(optimizer, {"tensor": RAMP_COSINE, "float": RAMP_COSINE})
    for k in range(1, 8):
        scheduler.step()
        assert optimizer.param_groups[0]["lr"] is lr_tensor
        assert lr_tensor.item() == pytest.approx(compute_lr(RAMP_COSINE, k), rel=1e-7)
        assert type(optimizer.param_groups[1]["lr"]) is float
        assert optimizer.param_groups[1]["lr"] == compute_lr(RAMP_COSINE, k)
        assert all(type(lr) is float for lr in scheduler.get_last_lr())


# ---------------------------------------------------------------- schedule_position: optimizer_steps

# A different, non-zero LR at each of the first positions (a zero LR would hide a step taken).
STEPS = {
    "piecewise_constant": {
        "learning_rate_boundaries": [1, 2, 3, 4, 5, 6],
        "learning_rate_values": [0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04],
    }
}
TASKS = ["a", "b"]


def steps_lr(position: int) -> float:
    """STEPS written out: 0.1 before boundary 1, then 0.01 less at each boundary, 0.04 from 6 on."""
    return [0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04][min(position, 6)]


def make(
    position: str, mixed: bool = False
) -> tuple[TowerModel, torch.optim.Optimizer, LRShim, OptimizerConfig]:
    torch.manual_seed(0)
    extra: dict[str, Any] = {}
    if mixed:
        extra["param_groups"] = [{"name": "embeddings", "params": ["embedding.*"], "sgd": {}}]
    config = OptimizerConfig(adam={}, learning_rate=STEPS, schedule_position=position, **extra)
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, config)
    return model, optimizer, scheduler, config


def amp_step(
    model: TowerModel, optimizer: Any, scheduler: LRShim, scaler: Any, step: int, overflow: bool
) -> None:
    """One AMP training step on CPU; ``overflow`` puts an inf into a gradient so the step is skipped."""
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = (model(tower_batch(step)).float() ** 2).mean()
    scaler.scale(loss).backward()
    if overflow:
        model.towers["a"][0].weight.grad[0, 0] = float("inf")
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()


@pytest.mark.parametrize("mixed", [False, True])
def test_a_step_skipped_by_grad_scaler_does_not_advance_the_schedule(mixed: bool) -> None:
    model, optimizer, scheduler, config = make("optimizer_steps", mixed)
    scaler = torch.amp.GradScaler("cpu")
    overflows = [False, False, True, False, True, True, False]
    taken = 0
    for step, overflow in enumerate(overflows):
        before = [p.detach().clone() for p in model.parameters()]
        amp_step(model, optimizer, scheduler, scaler, step, overflow)
        changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
        assert changed != overflow  # the scaler really skipped exactly the overflowing steps
        taken += not overflow
        assert scheduler.last_epoch == taken
        for group in optimizer.param_groups:
            assert group["lr"] == compute_lr(config.schedule(), taken) == steps_lr(taken)


def test_the_default_mode_advances_on_a_skipped_step() -> None:
    model, optimizer, scheduler, config = make("scheduler_steps")
    scaler = torch.amp.GradScaler("cpu")
    amp_step(model, optimizer, scheduler, scaler, 0, overflow=True)
    amp_step(model, optimizer, scheduler, scaler, 1, overflow=False)
    assert scheduler.last_epoch == 2
    assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), 2) == steps_lr(2)


def test_scheduler_steps_per_micro_batch_do_not_move_the_schedule() -> None:
    model, optimizer, scheduler, config = make("optimizer_steps")
    for step in range(3):
        for micro_batch in range(4):  # gradient accumulation, scheduler.step() called by mistake each time
            (model(tower_batch(10 * step + micro_batch)) ** 2).mean().backward()
            scheduler.step()
            assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), step) == steps_lr(step)
        optimizer.step()
        optimizer.zero_grad()
        assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), step + 1)
        assert scheduler.last_epoch == step + 1


@pytest.mark.parametrize("mixed", [False, True])
def test_the_position_survives_a_state_dict_round_trip(mixed: bool) -> None:
    overflows = [False, True, False, False, True, False, False, False]
    reference, optimizer, scheduler, _ = make("optimizer_steps", mixed)
    scaler = torch.amp.GradScaler("cpu")
    for step, overflow in enumerate(overflows):
        amp_step(reference, optimizer, scheduler, scaler, step, overflow)
    reference_lrs = [group["lr"] for group in optimizer.param_groups]

    first, optimizer, scheduler, _ = make("optimizer_steps", mixed)
    scaler = torch.amp.GradScaler("cpu")
    for step, overflow in enumerate(overflows[:5]):
        amp_step(first, optimizer, scheduler, scaler, step, overflow)
    checkpoint = round_trip(
        {
            "model": first.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
        }
    )
    assert checkpoint["scheduler"]["last_epoch"] == 3  # 5 steps, 2 skipped

    resumed, optimizer, scheduler, _ = make("optimizer_steps", mixed)
    scaler = torch.amp.GradScaler("cpu")
    resumed.load_state_dict(checkpoint["model"])
    scheduler.load_state_dict(checkpoint["scheduler"])  # order of loading does not matter
    optimizer.load_state_dict(checkpoint["optimizer"])
    scaler.load_state_dict(checkpoint["scaler"])
    for step, overflow in enumerate(overflows[5:], start=5):
        amp_step(resumed, optimizer, scheduler, scaler, step, overflow)
    assert parameters_equal(resumed, reference)
    assert [group["lr"] for group in optimizer.param_groups] == reference_lrs
    assert scheduler.last_epoch == 6


def test_a_dropped_scheduler_is_collected_and_its_hook_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    model, optimizer, _, _ = make("scheduler_steps")
    # Count every call of the step post-hooks registered from here on, through the public API.
    hook_calls: list[int] = []
    register = optimizer.register_step_post_hook

    def register_counted(hook: Callable[..., None]) -> Any:
        def counted(*args: Any) -> None:
            hook_calls.append(1)
            hook(*args)

        return register(counted)

    monkeypatch.setattr(optimizer, "register_step_post_hook", register_counted)
    scheduler = LRShim(optimizer, {"default": LearningRate(**STEPS)}, schedule_position="optimizer_steps")
    (model(tower_batch(0)) ** 2).mean().backward()
    optimizer.step()
    assert hook_calls == [1] and optimizer.param_groups[0]["lr"] == steps_lr(1)
    dropped = weakref.ref(scheduler)
    del scheduler
    gc.collect()
    assert dropped() is None  # the hook holds no strong reference to the scheduler
    optimizer.step()  # no error; the collected scheduler's hook was removed, nothing written
    assert hook_calls == [1]
    assert optimizer.param_groups[0]["lr"] == steps_lr(1)


def test_a_fused_optimizer_told_to_skip_by_grad_scaler_is_not_counted() -> None:
    # A fused optimizer's step runs even on overflow: GradScaler hands it found_inf and it skips
    # the update itself. The hook must read found_inf, not just count calls.
    torch.manual_seed(0)
    model = TowerModel(TASKS)
    optimizer = torch.optim.Adam([{"params": list(model.parameters()), "name": "all"}], lr=0.1, fused=True)
    schedule = LearningRate(**STEPS)
    scheduler = LRShim(optimizer, {"all": schedule}, schedule_position="optimizer_steps")
    scaler = torch.amp.GradScaler("cpu")
    step_calls: list[int] = []
    optimizer.register_step_pre_hook(lambda *_: step_calls.append(1))
    for step, overflow in enumerate([False, True, False]):
        before = [p.detach().clone() for p in model.parameters()]
        amp_step(model, optimizer, scheduler, scaler, step, overflow)
        changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
        assert changed != overflow
    assert len(step_calls) == 3  # the optimizer's step ran on the overflow too: it skipped by itself
    assert scheduler.last_epoch == 2
    assert optimizer.param_groups[0]["lr"] == compute_lr(schedule, 2) == steps_lr(2)


# ---------------------------------------------------------------- state_dict, state_differences, resume


def test_state_dict_is_plain_data() -> None:
    _, scheduler = build_optimizer(small_model(), OptimizerConfig(sgd=SgdConfig(), learning_rate=RAMP_COSINE))
    for _ in range(3):
        scheduler.step()
    loaded = round_trip(scheduler.state_dict())
    _, other = build_optimizer(small_model(), OptimizerConfig(sgd=SgdConfig(), learning_rate=RAMP_COSINE))
    other.load_state_dict(loaded)
    assert other.last_epoch == 3 and other.get_last_lr() == [compute_lr(RAMP_COSINE, 3)]


def test_a_state_in_the_saved_format_loads() -> None:
    # Written out by hand: the format of checkpoints saved so far must keep loading.
    saved = {
        "format": 1,
        "last_epoch": 7,
        "step_count": 8,
        "group_names": ["towers", "embeddings"],
        "schedule_position": "scheduler_steps",
        "schedules": [
            {
                "linear_ramp_to_cosine": {
                    "learning_rate": 0.05,
                    "final_learning_rate": 0.001,
                    "num_ramp_steps": 5,
                    "final_num_steps": 30,
                },
                "lr_multiplier": 0.5,
            },
            {"constant": 0.3},
        ],
    }
    optimizer = named_sgd(["towers", "embeddings"])
    scheduler = LRShim(
        optimizer, {"towers": RAMP_COSINE, "embeddings": CONSTANT}, lr_multipliers={"towers": 0.5}
    )
    assert scheduler.state_dict() == {**saved, "last_epoch": 0, "step_count": 1}
    assert scheduler.state_differences(saved) == []
    scheduler.load_state_dict(saved)
    assert scheduler.last_epoch == 7
    assert [group["lr"] for group in optimizer.param_groups] == [0.5 * compute_lr(RAMP_COSINE, 7), 0.3]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * ramp_cosine_lr(7), rel=1e-12)
    scheduler.step()
    assert scheduler.state_dict() == {**saved, "last_epoch": 8, "step_count": 9}


CONSTANT_RECORD = {"constant": 0.3}


def other_schedule(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "schedules": [{"constant": 0.2}, state["schedules"][1]]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda state: {**state, "format": 2}, [r"not an LRShim state \(format 2, expected 1\)"]),
        (lambda state: {"last_epoch": 3}, [r"not an LRShim state \(format None, expected 1\)"]),
        (
            lambda state: {**state, "group_names": ["a", "c"]},
            [r"groups \['a', 'c'\] in the checkpoint, \['a', 'b'\] here"],
        ),
        (
            other_schedule,
            [r"group 'a': \{'constant': 0\.2\} in the checkpoint, \{'linear_ramp_to_cosine': .*\} here"],
        ),
        (
            lambda state: {
                **state,
                "schedules": [state["schedules"][0], {**CONSTANT_RECORD, "lr_multiplier": 2.0}],
            },
            [
                r"group 'b': \{'constant': 0\.3, 'lr_multiplier': 2\.0\} in the checkpoint, "
                r"\{'constant': 0\.3\} here"
            ],
        ),
        (
            lambda state: {**state, "schedules": [{"constant": 0.2}, {"constant": 0.4}]},
            [r"group 'a': \{'constant': 0\.2\}", r"group 'b': \{'constant': 0\.4\} in the checkpoint"],
        ),
        (lambda state: {**state, "last_epoch": 99, "step_count": 100}, []),  # the position is restored
        (lambda state: {**state, "schedule_position": "optimizer_steps"}, []),
    ],
)
def test_state_differences_names_what_differs(
    change: Callable[[dict[str, Any]], dict[str, Any]], expected: list[str]
) -> None:
    scheduler = LRShim(named_sgd("ab"), {"a": RAMP_COSINE, "b": CONSTANT})
    saved = change(scheduler.state_dict())
    differences = scheduler.state_differences(saved)
    assert len(differences) == len(expected), differences
    for line, pattern in zip(differences, expected, strict=True):
        assert re.fullmatch(pattern + ".*", line), (line, pattern)
    if expected:
        # load_state_dict refuses with the same lines, and leaves the scheduler as it was.
        with pytest.raises(ValueError, match=expected[0]):
            scheduler.load_state_dict(saved)
        assert scheduler.last_epoch == 0
    else:
        scheduler.load_state_dict(saved)
        assert scheduler.last_epoch == saved["last_epoch"]


def test_state_differences_can_leave_the_schedules_out() -> None:
    scheduler = LRShim(named_sgd("ab"), {"a": RAMP_COSINE, "b": CONSTANT})
    state = scheduler.state_dict()
    assert scheduler.state_differences(other_schedule(state), schedules=False) == []
    assert scheduler.state_differences({**state, "group_names": ["a"]}, schedules=False) == [
        "groups ['a'] in the checkpoint, ['a', 'b'] here"
    ]


def test_restart_from_keeps_the_groups_and_puts_the_schedule_at_a_step() -> None:
    saved = LRShim(named_sgd(["a"]), {"a": COSINE})
    for _ in range(3):
        saved.step()
    optimizer = named_sgd(["a"])
    scheduler = LRShim(optimizer, {"a": CONSTANT})  # another schedule: the saved one is not used
    scheduler.restart_from(saved.state_dict(), 2)
    assert scheduler.last_epoch == 2 and optimizer.param_groups[0]["lr"] == compute_lr(CONSTANT, 2) == 0.3
    assert scheduler.state_dict()["step_count"] == 3
    scheduler.step()
    assert scheduler.last_epoch == 3
    with pytest.raises(
        ValueError,
        match=r"^the checkpoint's groups differ from this scheduler's: groups \['a'\] in the checkpoint, "
        r"\['b'\] here$",
    ):
        LRShim(named_sgd(["b"]), {"b": COSINE}).restart_from(saved.state_dict())
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        scheduler.restart_from(saved.state_dict(), -1)
    with pytest.raises(ValueError, match=r"not an LRShim state \(format None, expected 1\)"):
        scheduler.restart_from({"group_names": ["a"]})
    assert scheduler.last_epoch == 3  # refused: nothing moved


def test_loading_another_schedule_is_an_error() -> None:
    _, scheduler = build_optimizer(small_model(), OptimizerConfig(sgd=SgdConfig(), learning_rate=RAMP_COSINE))
    _, other = build_optimizer(small_model(), OptimizerConfig(sgd=SgdConfig(lr=0.2)))
    with pytest.raises(
        ValueError,
        match=r"^the checkpoint's schedules differ from this scheduler's: "
        r"group 'default': \{'linear_ramp_to_cosine'.* in the checkpoint, .*0.2",
    ):
        other.load_state_dict(scheduler.state_dict())


@pytest.mark.parametrize("load_scheduler_first", [True, False])
@pytest.mark.parametrize(
    "config",
    [
        OptimizerConfig(adam=AdamConfig(), learning_rate=RAMP_COSINE),
        OptimizerConfig(sgd=SgdConfig(lr=0.05, momentum=0.9), learning_rate=RAMP_COSINE),
        OptimizerConfig(adagrad=AdagradConfig(lr=0.05)),
    ],
)
def test_resume_is_bit_identical(config: OptimizerConfig, load_scheduler_first: bool) -> None:
    total, cut = 24, 11
    model = small_model()
    optimizer, scheduler = build_optimizer(model, config)
    for step in range(total):
        train_step(model, optimizer, step)
        scheduler.step()
    expected_params = [p.detach().clone() for p in model.parameters()]
    expected_lr = optimizer.param_groups[0]["lr"]

    model = small_model()
    optimizer, scheduler = build_optimizer(model, config)
    for step in range(cut):
        train_step(model, optimizer, step)
        scheduler.step()
    checkpoint = round_trip(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
    )
    del model, optimizer, scheduler

    model = small_model(seed=123)  # different initial weights: everything must come from the checkpoint
    optimizer, scheduler = build_optimizer(model, config)
    model.load_state_dict(checkpoint["model"])
    if load_scheduler_first:
        scheduler.load_state_dict(checkpoint["scheduler"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    else:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
    assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), cut)
    for step in range(cut, total):
        train_step(model, optimizer, step)
        scheduler.step()
    for got, want in zip(model.parameters(), expected_params, strict=True):
        assert torch.equal(got, want)
    assert optimizer.param_groups[0]["lr"] == expected_lr


# ---------------------------------------------------------------- memory

GROUPS = 256


def shim_with_groups(groups: int = GROUPS) -> LRShim:
    """An SGD optimizer with ``groups`` one-parameter groups, alternating two schedule kinds."""
    parameters = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    optimizer = torch.optim.SGD([{"params": [parameter]} for parameter in parameters], lr=0.1)
    cosine = LearningRate(
        linear_ramp_to_cosine=LinearRampToCosine(
            learning_rate=0.1, final_learning_rate=0.001, num_ramp_steps=100, final_num_steps=500_000
        )
    )
    steps = LearningRate(
        piecewise_constant=PiecewiseConstant(
            learning_rate_boundaries=[10, 1000, 100_000], learning_rate_values=[0.1, 0.05, 0.01, 0.001]
        )
    )
    return LRShim(optimizer, {f"group_{index}": cosine if index % 2 else steps for index in range(groups)})


def test_step_memory_is_flat_under_tracemalloc() -> None:
    """No unbounded growth: a leak of one object per step (per group) would show as tens of kilobytes
    (megabytes)."""
    scheduler = shim_with_groups()
    for _ in range(500):  # warm-up: caches and free lists settle
        scheduler.step()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(1_500):
            scheduler.step()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One leaked float per step would be 1,500 * 24 bytes = 36 KB; one per group, 9 MB.
    assert after - before < 16 * 1024, f"traced memory grew by {after - before} bytes over 1,500 steps"
    assert scheduler.last_epoch == 2_000
    assert len(scheduler.get_last_lr()) == GROUPS


# ---------------------------------------------------------------- the original's signature (issue 12)


def test_verbose_of_the_original_signature_is_accepted_and_warns_only_when_true() -> None:
    quiet = named_sgd("a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LRShim(quiet, {"a": COSINE}, -1, False)  # the original's positional form
    loud = named_sgd("a")
    with pytest.warns(FutureWarning, match=r"verbose has no effect"):
        scheduler = LRShim(loud, {"a": COSINE}, -1, True)
    for step in range(1, 4):
        scheduler.step()
        assert loud.param_groups[0]["lr"] == pytest.approx(cosine_lr(step), rel=1e-12)


@given(last=st.integers(min_value=0, max_value=10**6))
@settings(max_examples=40, deadline=None)
def test_last_epoch_k_resumes_at_step_k_plus_one(last: int) -> None:
    # torch: "last_epoch: the index of the last epoch"; the constructor's step then moves to k + 1.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)  # no initial_lr
    scheduler = LRShim(optimizer, {"default": COSINE}, last_epoch=last)
    assert scheduler.last_epoch == last + 1
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cosine_lr(last + 1), rel=1e-12, abs=1e-15)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cosine_lr(last + 2), rel=1e-12, abs=1e-15)


def test_last_epoch_matches_a_run_stepped_that_far() -> None:
    fresh_optimizer = named_sgd("ab")
    fresh = LRShim(fresh_optimizer, {"a": COSINE, "b": RAMP_COSINE}, lr_multipliers={"b": 3.0})
    for _ in range(7):
        fresh.step()  # now at step 7: the last step taken is 6
    resumed_optimizer = named_sgd("ab")
    resumed = LRShim(resumed_optimizer, {"a": COSINE, "b": RAMP_COSINE}, 6, lr_multipliers={"b": 3.0})
    assert resumed.last_epoch == fresh.last_epoch == 7
    assert [group["lr"] for group in resumed_optimizer.param_groups] == [
        group["lr"] for group in fresh_optimizer.param_groups
    ]
    assert resumed_optimizer.param_groups[1]["lr"] == pytest.approx(3.0 * ramp_cosine_lr(7), rel=1e-12)


def test_last_epoch_below_minus_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"last_epoch must be -1 .* got -2"):
        LRShim(named_sgd("a"), {"a": COSINE}, last_epoch=-2)


def test_lrs_by_group_names_each_groups_current_lr_for_logging() -> None:
    config = OptimizerConfig.model_validate(
        {
            "sgd": {"lr": 0.1, "tensor_lr": True},
            "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 4}},
            "param_groups": [{"name": "head", "params": ["2.*"], "lr_multiplier": 0.5}],
        }
    )
    optimizer, scheduler = build_optimizer(small_model(), config)
    for step in range(6):
        ramp = min(0.1 * step / 4, 0.1)  # linear_ramp_to_constant by its formula
        assert scheduler.lrs_by_group() == {"head": 0.5 * ramp, "default": ramp}
        assert all(type(value) is float for value in scheduler.lrs_by_group().values())
        written = {group["name"]: group["lr"] for group in optimizer.param_groups}
        assert all(isinstance(lr, torch.Tensor) for lr in written.values())  # tensor_lr: 0-dim tensors
        assert {name: float(lr) for name, lr in written.items()} == scheduler.lrs_by_group()
        scheduler.step()
