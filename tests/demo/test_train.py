"""``tml-optim train`` as a user runs it: stopped by SIGTERM or killed, resumed, bit-identical."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from tml.optimizers.distributed import MANIFEST_NAME, latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "cli_demo.yaml"
ALTERNATIVE = "optimizer:\n  sgd: {lr: 0.01, momentum: 0.9}\n"


def command(*arguments: str | Path) -> list[str]:
    script = Path(sys.executable).with_name("tml-optim")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "tml.optimizers.cli.main"]
    return [*base, *map(str, arguments)]


ENVIRONMENT = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run_cli(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*arguments),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENVIRONMENT,
        timeout=300,
        check=False,
    )


def start_and_stop(directory: Path, stop: signal.Signals, cwd: Path) -> subprocess.Popen[str]:
    """Start a run that would not finish, wait for its first checkpoint, then send ``stop``."""
    process = subprocess.Popen(
        command(
            "train", DEMO, "--steps", "1000000", "--checkpoint-dir", directory, "--checkpoint-every", "4"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=ENVIRONMENT,
    )
    deadline = time.monotonic() + 240
    while latest_checkpoint(directory) is None:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)
    process.send_signal(stop)
    process.wait(timeout=120)
    return process


def load(directory: Path) -> dict[str, Any]:
    """The latest checkpoint of ``directory`` as saved: DCP's tensors read by torch (not by our
    loader), and the manifest's scheduler state, step, data position, losses and RNG states."""
    path = latest_checkpoint(directory)
    assert path is not None, f"no checkpoint in {directory}"
    converted = directory.parent / f"{directory.name}.pt"
    dcp_to_torch_save(path, converted)
    state: dict[str, Any] = torch.load(converted, weights_only=True)
    converted.unlink()
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    extra = manifest["extra"]
    assert state["optimizer"]["state"], "the checkpoint holds no optimizer state"
    return {
        **state,
        "scheduler": manifest["scheduler"],
        "step": manifest["step"],
        "data_position": extra["data_position"],
        "losses": extra["losses"],
        "rng": extra["rng_states"],
    }


def assert_same_tensors(left: Any, right: Any, where: str = "") -> None:
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and left.dtype == right.dtype, where
        assert torch.equal(left, right), f"{where} differs"
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            assert_same_tensors(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same_tensors(a, b, f"{where}[{index}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def test_stopped_or_killed_then_resumed_is_bit_identical(tmp_path: Path) -> None:
    terminated = start_and_stop(tmp_path / "terminated", signal.SIGTERM, tmp_path)
    _, errors = terminated.communicate()
    assert terminated.returncode == 128 + signal.SIGTERM, errors
    assert "stopped by SIGTERM at step" in errors and "Traceback" not in errors
    assert not list((tmp_path / "terminated").glob(".*.tmp")), "a temporary file was left behind"
    killed = start_and_stop(tmp_path / "killed", signal.SIGKILL, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    killed.communicate()

    stopped_at = {name: int(load(tmp_path / name)["step"]) for name in ("terminated", "killed")}
    assert all(step >= 4 for step in stopped_at.values()), stopped_at
    assert int(load(tmp_path / "killed")["step"]) % 4 == 0  # only periodic checkpoints: none torn
    total = max(stopped_at.values()) + 12

    for name in stopped_at:
        resumed = run_cli(
            "train", DEMO, "--steps", total, "--checkpoint-dir", tmp_path / name, "--resume", cwd=tmp_path
        )
        assert resumed.returncode == 0, resumed.stderr
        assert f"resuming from step {stopped_at[name]}" in resumed.stdout
    reference = run_cli(
        "train", DEMO, "--steps", total, "--checkpoint-dir", tmp_path / "reference", cwd=tmp_path
    )
    assert reference.returncode == 0, reference.stderr

    expected = load(tmp_path / "reference")
    assert expected["step"] == total
    for name in stopped_at:
        state = load(tmp_path / name)
        for part in ("model", "optimizer", "scheduler", "rng", "losses", "step", "data_position"):
            assert_same_tensors(state[part], expected[part], f"{name}.{part}")


def test_train_writes_the_plots_and_guards_its_checkpoint(tmp_path: Path) -> None:
    from matplotlib.image import imread

    result = run_cli(
        "train", DEMO, "--steps", "10", "--checkpoint-dir", "run", "--output-dir", "out", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "step 10/10" in result.stdout  # the progress, as log lines when not on a terminal
    assert "lr default=" in result.stdout and "steps/s" in result.stdout
    for name in ("loss.png", "lr.png"):
        assert str(Path("out") / name) in result.stdout
        assert imread(tmp_path / "out" / name).shape[:2] == (500, 1000)
    state = load(tmp_path / "run")
    assert len(state["losses"]) == 10

    again = run_cli("train", DEMO, "--steps", "10", "--checkpoint-dir", "run", cwd=tmp_path)
    assert again.returncode == 1 and "already holds a checkpoint" in again.stderr
    (tmp_path / "other.yaml").write_text(ALTERNATIVE)
    other = run_cli(
        "train", "other.yaml", "--steps", "20", "--checkpoint-dir", "run", "--resume", cwd=tmp_path
    )
    assert other.returncode == 1 and "another optimizer config" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    missing = run_cli("train", DEMO, "--checkpoint-dir", "nowhere", "--resume", cwd=tmp_path)
    assert missing.returncode == 1 and "no checkpoint to resume from" in missing.stderr


def test_a_checkpoint_dir_that_cannot_be_written_fails_before_the_first_step(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a directory")
    result = run_cli("train", DEMO, "--steps", "1000000", "--checkpoint-dir", "a_file/run", cwd=tmp_path)
    assert result.returncode == 1
    assert re.search(
        r"--checkpoint-dir a_file/run cannot be written: \[Errno 20\] Not a directory: .*; give a "
        r"--checkpoint-dir that can be written \(nothing was trained\)",
        result.stderr,
    ), result.stderr
    assert "step 1/" not in result.stdout
