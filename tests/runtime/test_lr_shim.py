"""LRShim's per-step path: shared schedules evaluated once, multipliers, tensor and float LRs."""

from __future__ import annotations

import pytest
import torch

from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.schedules import LearningRate, LinearRampToCosine, compute_lr

COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.1, num_ramp_steps=5, final_learning_rate=0.001, final_num_steps=20
    )
)
CONSTANT = LearningRate(constant=0.3)


def test_groups_sharing_a_schedule_evaluate_it_once_and_apply_their_multipliers() -> None:
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "name": name} for name in "abcd"]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    optimizer.param_groups[3]["lr"] = torch.tensor(0.0, dtype=torch.float64)
    tensor_lr = optimizer.param_groups[3]["lr"]
    # An equal config built separately counts as the same schedule.
    copy = LearningRate.model_validate(COSINE.model_dump())
    scheduler = LRShim(
        optimizer, {"a": COSINE, "b": copy, "c": CONSTANT, "d": COSINE}, lr_multipliers={"b": 0.5, "d": 2.0}
    )
    assert len(scheduler._unique_functions) == 2
    for step in range(25):
        cosine = compute_lr(COSINE, step)
        expected = [cosine, 0.5 * cosine, 0.3, 2.0 * cosine]
        lrs = [float(group["lr"]) for group in optimizer.param_groups]
        assert lrs == expected, step
        assert scheduler.get_last_lr() == expected
        assert type(optimizer.param_groups[0]["lr"]) is float
        assert optimizer.param_groups[3]["lr"] is tensor_lr  # written in place
        scheduler.step()


def _named_sgd(name: str) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "name": name}], lr=1.0)


def test_restart_from_keeps_the_groups_and_puts_the_schedule_at_a_step() -> None:
    saved = LRShim(_named_sgd("a"), {"a": COSINE})
    for _ in range(3):
        saved.step()
    optimizer = _named_sgd("a")
    scheduler = LRShim(optimizer, {"a": CONSTANT})  # another schedule: the saved one is not used
    scheduler.restart_from(saved.state_dict(), 2)
    assert scheduler.last_epoch == 2 and optimizer.param_groups[0]["lr"] == compute_lr(CONSTANT, 2)
    scheduler.step()
    assert scheduler.last_epoch == 3
    with pytest.raises(ValueError, match=r"groups \['a'\] in the checkpoint, \['b'\] here"):
        LRShim(_named_sgd("b"), {"b": COSINE}).restart_from(saved.state_dict())
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        scheduler.restart_from(saved.state_dict(), -1)
