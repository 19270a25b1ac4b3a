"""``schedule_position: optimizer_steps``: the schedule counts optimizer steps actually taken."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.group_models import TowerModel, parameters_equal, round_trip, tower_batch

from tml.optimizers import LRShim, OptimizerConfig, build_optimizer, compute_lr

# A different, non-zero LR at each of the first positions (a zero LR would hide a step taken).
STEPS = {
    "piecewise_constant": {
        "learning_rate_boundaries": [1, 2, 3, 4, 5, 6],
        "learning_rate_values": [0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04],
    }
}
TASKS = ["a", "b"]


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
            assert group["lr"] == compute_lr(config.schedule(), taken)


def test_the_default_mode_advances_on_a_skipped_step() -> None:
    model, optimizer, scheduler, config = make("scheduler_steps")
    scaler = torch.amp.GradScaler("cpu")
    amp_step(model, optimizer, scheduler, scaler, 0, overflow=True)
    amp_step(model, optimizer, scheduler, scaler, 1, overflow=False)
    assert scheduler.last_epoch == 2
    assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), 2)


def test_scheduler_steps_per_micro_batch_do_not_move_the_schedule() -> None:
    model, optimizer, scheduler, config = make("optimizer_steps")
    for step in range(3):
        for micro_batch in range(4):  # gradient accumulation, scheduler.step() called by mistake each time
            (model(tower_batch(10 * step + micro_batch)) ** 2).mean().backward()
            scheduler.step()
            assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), step)
        optimizer.step()
        optimizer.zero_grad()
        assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), step + 1)


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


def test_a_dropped_scheduler_stops_counting() -> None:
    model, optimizer, scheduler, _ = make("optimizer_steps")
    del scheduler
    (model(tower_batch(0)) ** 2).mean().backward()
    optimizer.step()  # the hook of the collected scheduler is gone: no error, nothing written
    assert not optimizer._optimizer_step_post_hooks


def test_a_fused_optimizer_told_to_skip_by_grad_scaler_is_not_counted() -> None:
    # A fused optimizer's step runs even on overflow: GradScaler hands it found_inf and it skips
    # the update itself. The hook must read found_inf, not just count calls.
    from tml.optimizers import LearningRate

    torch.manual_seed(0)
    model = TowerModel(TASKS)
    optimizer = torch.optim.Adam([{"params": list(model.parameters()), "name": "all"}], lr=0.1, fused=True)
    schedule = LearningRate(**STEPS)
    scheduler = LRShim(optimizer, {"all": schedule}, schedule_position="optimizer_steps")
    scaler = torch.amp.GradScaler("cpu")
    assert getattr(optimizer, "_step_supports_amp_scaling", False)
    for step, overflow in enumerate([False, True, False]):
        amp_step(model, optimizer, scheduler, scaler, step, overflow)
    assert scheduler.last_epoch == 2
    assert optimizer.param_groups[0]["lr"] == compute_lr(schedule, 2)


def test_lr_shim_checks_group_names_and_multipliers() -> None:
    from tml.optimizers import LearningRate

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [parameter], "name": "towers"}], lr=1.0)
    constant = LearningRate(constant=0.1)
    with pytest.raises(
        ValueError, match=r"param groups are named \['towers'\] but lr_dict names \['default'\]"
    ):
        LRShim(optimizer, {"default": constant})
    with pytest.raises(ValueError, match="schedule_position must be one of scheduler_steps, optimizer_steps"):
        LRShim(optimizer, {"towers": constant}, schedule_position="epochs")
    doubled = LRShim(optimizer, {"towers": constant}, lr_multipliers={"towers": 2.0})
    assert optimizer.param_groups[0]["lr"] == 2.0 * 0.1
    state = doubled.state_dict()
    assert state["schedules"] == [{"constant": 0.1, "lr_multiplier": 2.0}]
    plain = LRShim(optimizer, {"towers": constant})
    with pytest.raises(ValueError, match="schedules differ"):
        plain.load_state_dict(state)
