"""The resume contract with lengths relative to the run: the checkpoint records the resolved schedule.

Under ``strict`` a resume compares what trains (the resolved steps, not how they were written); under
``config`` a longer ``total_steps`` re-resolves the schedule and training continues from the saved
step on the new curve. The expected learning rates are computed here from WSD's formula.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.cli.test_commands import parse_table, run_cli
from tests.runtime.test_resume import Towers, through_torch_save

from tml.optimizers import OptimizerConfig, ResumeWarning, build_optimizer, load_optimizer_state
from tml.optimizers.distributed import save_checkpoint
from tml.optimizers.runtime.resume import RESUME_KEY


def wsd_config(total_steps: int, **extra: Any) -> dict[str, Any]:
    """Warmup 10% of the run, hold 60%, decay linearly to 0 over the last 30%."""
    return {
        "adam": {"lr": 0.1},
        "total_steps": total_steps,
        "learning_rate": {
            "warmup_stable_decay": {
                "learning_rate": 0.1,
                "warmup_steps": "10%",
                "stable_steps": "60%",
                "decay_steps": "30%",
            }
        },
        **extra,
    }


def wsd_lr(step: int, total: int) -> float:
    """WSD's value at ``step`` for a run of ``total`` steps (warmup from 0; then 0.1; then linear to 0)."""
    warmup, stable, decay = total // 10, total * 6 // 10, total * 3 // 10
    if step < warmup:
        return 0.1 * step / warmup
    if step < warmup + stable:
        return 0.1
    return 0.1 * max(0.0, 1 - (step - warmup - stable) / decay)


def train(config: dict[str, Any], steps: int, model: torch.nn.Module | None = None) -> tuple[Any, Any, Any]:
    torch.manual_seed(0)
    model = model or Towers()
    optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(config))
    for step in range(steps):
        optimizer.zero_grad()
        model(torch.full((2, 4), 0.5 + step)).backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_the_record_holds_the_resolved_schedule() -> None:
    _, optimizer, scheduler = train(wsd_config(100), 0)
    record = json.loads(optimizer.state_dict()["param_groups"][0][RESUME_KEY])
    schedule = record["fingerprint"]["schedule"]["warmup_stable_decay"]
    assert (schedule["warmup_steps"], schedule["stable_steps"], schedule["decay_steps"]) == (10, 60, 30)
    assert scheduler.state_dict()["schedules"][0]["warmup_stable_decay"]["decay_steps"] == 30


def test_strict_compares_what_trains_not_how_it_was_written() -> None:
    _, saved_optimizer, saved_scheduler = train(wsd_config(100), 20)
    absolute = wsd_config(100)
    absolute["learning_rate"]["warmup_stable_decay"].update(warmup_steps=10, stable_steps=60, decay_steps=30)
    _, optimizer, scheduler = train(absolute, 0)
    optimizer.load_state_dict(through_torch_save(saved_optimizer.state_dict()))  # strict: the same steps
    scheduler.load_state_dict(saved_scheduler.state_dict())
    assert scheduler.last_epoch == 20 and scheduler.get_last_lr() == saved_scheduler.get_last_lr()


def test_a_longer_run_under_resume_config_continues_on_the_new_curve() -> None:
    model, saved_optimizer, saved_scheduler = train(wsd_config(100), 80)
    assert saved_scheduler.get_last_lr()[0] == pytest.approx(wsd_lr(80, 100))  # decaying: 0.0667
    state = through_torch_save(saved_optimizer.state_dict())
    longer = wsd_config(200, resume="config")
    optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(longer))
    with pytest.warns(ResumeWarning, match=r"decay_steps: 30 in the checkpoint, 60 here"):
        load_optimizer_state(optimizer, state)
    scheduler.load_state_dict(saved_scheduler.state_dict())
    for step in range(80, 90):  # the run of 200 steps is still stable at 0.1 here: the LR jumps up
        assert scheduler.last_epoch == step
        assert optimizer.param_groups[0]["lr"] == pytest.approx(wsd_lr(step, 200), rel=1e-12) == 0.1
        optimizer.step()
        scheduler.step()


def test_show_resume_from_prints_the_lr_at_the_resume_step_before_and_after(tmp_path: Path) -> None:
    model, optimizer, scheduler = train(wsd_config(100), 80)
    save_checkpoint(tmp_path / "run", 80, model, optimizer, scheduler)
    path = tmp_path / "longer.yaml"
    path.write_text(json.dumps({"optimizer": wsd_config(200, resume="config")}))
    shown = run_cli("show", path, "--resume-from", tmp_path / "run")
    assert shown.returncode == 0, shown.stderr
    row = next(row for row in parse_table(shown.stdout) if row[0] == "default")
    assert float(row[1]) == pytest.approx(wsd_lr(80, 100), rel=1e-5)  # 0.0666667, as printed
    assert float(row[2]) == pytest.approx(wsd_lr(80, 200))  # 0.1
    assert row[3] == "×1.5"
    assert "continues from step 80 on this config's curve" in shown.stdout
