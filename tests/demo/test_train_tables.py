"""``tml-optim train`` on the torchrec table model (a config with ``embedding_tables``): stopped by
SIGTERM in one process, rank 1 killed by SIGKILL under torchrun, resumed, bit-identical to an
uninterrupted run; the checkpoints read back by torch's own DCP converter, not by our loader."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.demo.test_train import ENVIRONMENT, assert_same_tensors, command, run_cli
from tests.demo.test_train_distributed import repository_like
from tests.distributed.launch import HERE as DISTRIBUTED
from tests.distributed.launch import REPO, run, torchrun
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, apply_table_rules
from tml.optimizers.cli.main import main
from tml.optimizers.demo.table_model import (
    TABLE_ROWS,
    SyntheticTableData,
    TableModelShape,
    TableRankingModel,
)
from tml.optimizers.distributed import MANIFEST_NAME, latest_checkpoint, list_checkpoints

EXAMPLE = REPO / "examples" / "embedding_tables.yaml"
DENSE = REPO / "examples" / "cli_demo.yaml"
DOCS = REPO / "docs" / "cli.md"
TIMEOUT = 120


def saved(directory: Path) -> dict[str, Any]:
    """The latest checkpoint of ``directory``: every tensor as torch's DCP converter reads it, and
    the manifest."""
    path = latest_checkpoint(directory)
    assert path is not None, f"no checkpoint in {directory}"
    converted = directory.parent / f"{directory.name}.pt"
    dcp_to_torch_save(path, converted)
    state: dict[str, Any] = torch.load(converted, weights_only=True)
    converted.unlink()
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    return {"tensors": state, "manifest": manifest}


def assert_same_run(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_same_tensors(actual["tensors"], expected["tensors"], "checkpoint")
    for part in ("step", "world_size", "scheduler", "extra", "model"):
        assert actual["manifest"][part] == expected["manifest"][part], part


def test_the_example_fits_the_table_model() -> None:
    config = load_config_from_yaml(OptimizerConfig, EXAMPLE, key="optimizer")
    model = TableRankingModel(TableModelShape(), device="meta")
    groups = apply_table_rules(model, config)
    assert [(group.name, group.table_names) for group in groups] == [
        ("ids", ["user_id", "item_id"]),
        ("small", ["country"]),
    ]
    dense = [name for name, _ in model.named_parameters() if not name.startswith("ebc.")]
    assert dense and all(name.startswith(("towers.is_clicked.", "towers.is_liked.")) for name in dense)


def test_the_data_is_a_function_of_the_seed_and_position() -> None:
    shape = TableModelShape()
    first, again = SyntheticTableData(shape, seed=3), SyntheticTableData(shape, seed=3)
    for left, right in zip(first.batch(7), again.batch(7), strict=True):
        assert torch.equal(left, right)
    assert not torch.equal(first.batch(7)[1], first.batch(8)[1])
    assert not torch.equal(first.batch(7)[1], SyntheticTableData(shape, seed=4).batch(7)[1])
    dense, ids, labels = first.batch(0)
    assert dense.shape == (128, shape.dense_features) and labels.shape == (128, len(shape.tasks))
    for column, rows in enumerate(TABLE_ROWS.values()):  # every id is a row of its table
        assert int(ids[:, column].min()) >= 0 and int(ids[:, column].max()) < rows
    assert set(labels.unique().tolist()) == {0.0, 1.0}


def test_stopped_by_sigterm_then_resumed_is_bit_identical_on_one_rank(tmp_path: Path) -> None:
    process = subprocess.Popen(
        command(
            "train", EXAMPLE, "--steps", "1000000", "--checkpoint-dir", "stopped", "--checkpoint-every", "4"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=ENVIRONMENT,
    )
    deadline = time.monotonic() + TIMEOUT
    while latest_checkpoint(tmp_path / "stopped") is None:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, errors = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM, errors
    assert "training the table model (torchrec)" in output and "Traceback" not in errors
    stopped_at = int(saved(tmp_path / "stopped")["manifest"]["step"])
    assert stopped_at >= 4
    total = stopped_at + 6

    resumed = run_cli(
        "train", EXAMPLE, "--steps", total, "--checkpoint-dir", "stopped", "--resume", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {stopped_at}" in resumed.stdout
    reference = run_cli("train", EXAMPLE, "--steps", total, "--checkpoint-dir", "straight", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    # the progress names every group: the dense one, the data-parallel country table, the fused ids
    assert f"step {total}/{total}" in reference.stdout
    assert "lr default=" in reference.stdout and "small.dense=" in reference.stdout
    assert " ids=" in reference.stdout
    assert (tmp_path / "straight" / "lr.png").stat().st_size > 0
    expected = saved(tmp_path / "straight")
    assert expected["manifest"]["model"] == "tables" and expected["manifest"]["step"] == total
    assert any(
        key.endswith(".momentum1")
        for key in expected["tensors"]["optimizer"]["ids"]["ebc.embedding_bags.user_id.weight"]
    )
    assert_same_run(saved(tmp_path / "stopped"), expected)


def doc_commands() -> list[list[str]]:
    """docs/cli.md's torchrun lines that train the table model, as written."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    return [
        shlex.split(line)
        for block in blocks
        for line in block.splitlines()
        if line.startswith("torchrun ") and "embedding_tables.yaml" in line
    ]


def test_rank_1_killed_then_resumed_is_bit_identical_on_two_ranks(tmp_path: Path) -> None:
    first, resume = doc_commands()
    assert first[:5] == ["torchrun", "--standalone", "--nproc_per_node", "2", "--no-python"]
    assert resume == [*first, "--resume"]
    straight = repository_like(tmp_path / "straight")
    output = run(first, cwd=straight, timeout=TIMEOUT).stdout
    assert output.count("trained 8 steps") == 1  # rank 0 alone reports
    # Rank 1 is killed (SIGKILL) after step 5: the checkpoint of step 3 is the last one.
    killed = repository_like(tmp_path / "killed")
    faults = ["--kill-rank", "1", "--kill-at-step", "5", "--"]
    arguments = first[first.index("tml-optim") + 1 :]
    torchrun(
        2,
        DISTRIBUTED / "faulty_train.py",
        *faults,
        *arguments,
        cwd=killed,
        timeout=TIMEOUT,
        expect_failure=True,
    )
    directory = Path("runs") / "embedding_tables"
    assert [path.name for path in list_checkpoints(killed / directory)] == ["step-00000003"]
    output = run(resume, cwd=killed, timeout=TIMEOUT).stdout
    assert "resuming from step 3" in output and output.count("trained 8 steps") == 1
    expected = saved(straight / directory)
    assert expected["manifest"]["world_size"] == 2
    assert_same_run(saved(killed / directory), expected)


def test_a_checkpoint_of_the_other_demo_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path / "run")
    assert main(["train", str(EXAMPLE), "--steps", "2", "--checkpoint-dir", directory]) == 0
    capsys.readouterr()
    status = main(
        [
            "train",
            str(DENSE),
            "--steps",
            "4",
            "--checkpoint-dir",
            directory,
            "--resume",
            "--resume-policy",
            "config",
        ]
    )
    assert status == 1
    assert (
        "was written by the table model, and this config trains the dense demo model"
        in capsys.readouterr().err
    )


def test_table_rules_that_do_not_fit_the_table_model_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text(
        "optimizer:\n  adam: {lr: 0.001}\n  embedding_tables:\n"
        "    - {name: ids, tables: ['users_*'], exact_sgd: {lr: 0.1}}\n"
        "    - {name: rest, tables: ['*'], exact_sgd: {lr: 0.1}}\n"
    )
    assert main(["train", str(config), "--steps", "2", "--checkpoint-dir", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert "cannot train the table model (tables user_id, item_id, country" in error
    assert "embedding_tables[0] 'ids': its pattern 'users_*' matches no table" in error


def test_a_resume_with_another_table_schedule_is_refused_or_applied_under_the_config_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path / "run")
    assert main(["train", str(EXAMPLE), "--steps", "3", "--checkpoint-dir", directory]) == 0
    faster = tmp_path / "faster.yaml"  # the ids ramp goes to 0.08 instead of 0.05
    faster.write_text(EXAMPLE.read_text().replace("learning_rate: 0.05,", "learning_rate: 0.08,"))
    capsys.readouterr()
    resume = [
        "train",
        str(faster),
        "--steps",
        "4",
        "--checkpoint-dir",
        directory,
        "--resume",
        "--log-every",
        "1",
    ]
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert "another optimizer config" in error and "embedding_tables" in error, error
    # show --resume-from gives the jump before it happens: the ramp at step 3, old and new
    assert main(["show", str(faster), "--resume-from", directory]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"ids\s+│\s+0\.0015\s+│\s+0\.0024\s+│", shown), shown
    assert main([*resume, "--resume-policy", "config"]) == 0
    output = capsys.readouterr().out
    assert "resuming from step 3" in output
    # step 4 trains at step 3 of the new ramp: 0.08 * 3 / 100 (the old one gave 0.0015)
    assert re.search(r"step 4/4 .* ids=0\.0024\b", output), output
