"""``--total-steps`` / ``--steps-per-epoch``: the commands print resolved steps beside what was written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.cli.test_commands import parse_table, run_cli

CONFIG = """\
optimizer:
  sgd: {lr: 0.1}
  learning_rate:
    cosine_decay: {learning_rate: 0.1, warmup_steps: "2%", decay_steps: "3ep"}
"""


def test_validate_show_and_plot_print_the_resolved_steps(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    unresolved = run_cli("validate", path)
    assert unresolved.returncode == 0, unresolved.stderr
    assert "learning_rate.cosine_decay.warmup_steps: '2%' → resolved at build" in unresolved.stdout
    run = ("--total-steps", "1000", "--steps-per-epoch", "300")
    validated = run_cli("validate", path, *run)
    assert validated.returncode == 0, validated.stderr
    # 2% of 1000 = 20 steps of warmup; 3 epochs of 300 = 900 steps of decay.
    assert "learning_rate.cosine_decay.warmup_steps: '2%' → 20 steps" in validated.stdout
    assert "learning_rate.cosine_decay.decay_steps: '3ep' → 900 steps" in validated.stdout
    shown = run_cli("show", path, *run)
    assert shown.returncode == 0, shown.stderr
    rows = {int(row[0]): float(row[1]) for row in parse_table(shown.stdout) if row[0].isdigit()}
    assert rows[20] == 0.1 and rows[920] == 0.0
    assert rows[0] == 0.0
    assert "'3ep' → 900 steps" in shown.stdout
    plotted = run_cli("plot", path, *run, "-o", tmp_path / "lr.png")
    assert plotted.returncode == 0, plotted.stderr
    assert "'2%' → 20 steps" in plotted.stdout


def test_show_refuses_a_relative_length_without_the_run_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    shown = run_cli("show", path, "--total-steps", "1000")
    assert shown.returncode == 1
    assert re.search(
        rf"{re.escape(str(path))}:4:\d+: optimizer\.learning_rate\.cosine_decay\.decay_steps: '3ep' is a "
        r"number of epochs, and steps_per_epoch is not given",
        shown.stderr,
    ), shown.stderr


def test_a_total_steps_that_differs_from_the_configs_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG.replace("  sgd:", "  total_steps: 1000\n  sgd:"))
    shown = run_cli("show", path, "--total-steps", "2000", "--steps-per-epoch", "10")
    assert shown.returncode == 2
    assert (
        "total_steps 2000 was given for the run, but the optimizer config sets total_steps: 1000"
        in shown.stderr
    )


def test_train_resumes_a_longer_run_on_the_new_curve_under_the_config_policy(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(
        "optimizer:\n  adam: {lr: 0.01}\n  learning_rate:\n    warmup_stable_decay:\n"
        '      {learning_rate: 0.01, warmup_steps: "10%", stable_steps: "60%", decay_steps: "30%"}\n'
    )
    directory = tmp_path / "run"
    first = run_cli("train", path, "--steps", "30", "--total-steps", "40", "--checkpoint-dir", directory)
    assert first.returncode == 0, first.stderr
    longer = ("--steps", "40", "--total-steps", "80", "--checkpoint-dir", directory, "--resume")
    refused = run_cli("train", path, *longer)
    assert refused.returncode == 1
    assert "total_steps: 40 in the checkpoint, 80 here" in refused.stderr
    shown = run_cli("show", path, "--total-steps", "80", "--resume-from", directory)
    row = next(row for row in parse_table(shown.stdout) if row[0] == "default")
    # 40 steps: warmup 4, stable 24, decay 12, so step 30 is 2 steps into the decay; 80 steps: stable.
    assert float(row[1]) == pytest.approx(0.01 * (1 - 2 / 12), rel=1e-5) and float(row[2]) == 0.01
    resumed = run_cli("train", path, *longer, "--resume-policy", "config")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((directory / "step-00000040" / "manifest.json").read_text())
    assert manifest["scheduler"]["last_epoch"] == 40
    assert manifest["scheduler"]["schedules"][0]["warmup_stable_decay"]["decay_steps"] == 24  # 30% of 80


def test_resume_rows_name_a_group_the_checkpoint_lacks_and_a_missing_checkpoint(tmp_path: Path) -> None:
    from tml.optimizers.cli.errors import UsageError
    from tml.optimizers.cli.horizon import read_scheduler_state, resume_rows
    from tml.optimizers.config import OptimizerConfig

    config = OptimizerConfig.model_validate(
        {"sgd": {"lr": 0.1}, "param_groups": [{"name": "towers", "params": ["t.*"], "lr_multiplier": 2.0}]}
    )
    saved = {"last_epoch": 7, "group_names": ["default"], "schedules": [{"constant": 0.05}]}
    step, rows = resume_rows(config, saved)
    assert step == 7
    assert [(row.group, row.before, row.after, row.change) for row in rows] == [
        ("towers", None, 0.2, "new group"),  # 2 × 0.1
        ("default", 0.05, 0.1, "×2"),
    ]
    with pytest.raises(UsageError, match="no checkpoint"):
        read_scheduler_state(tmp_path)
