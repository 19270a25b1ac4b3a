"""``--total-steps`` / ``--steps-per-epoch``: the commands print resolved steps beside what was written."""

from __future__ import annotations

import re
from pathlib import Path

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
