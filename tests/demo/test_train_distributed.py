"""``tml-optim train`` under torchrun (2 gloo ranks): the docs' commands, kill -9, SIGTERM, resume.

The reference is the docs' command as written: an uninterrupted 2-rank run of 12 steps, a
checkpoint every 3. The same run is then killed (SIGKILL of rank 1 after step 7: the checkpoint of
step 6 is the last one), resumed and stopped by SIGTERM reaching rank 1 alone after step 7 (every
rank stops after step 8 and writes its shard) while rank 0 is killed writing the manifest (so the
checkpoint of step 6 stays the latest), and finished by the docs' ``--resume`` command as written.
Its final checkpoint must equal the reference's bit for bit: model, optimizer state, scheduler,
losses, RNG states. Faults are injected by tests/distributed/faulty_train.py."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "distributed"))
from launch import HERE, REPO, run, torchrun

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, build_optimizer
from tml.optimizers.cli.main import main
from tml.optimizers.demo.distributed import Ranks, rank_seed, shard
from tml.optimizers.demo.model import ModelShape, RankingModel, SyntheticRankingData
from tml.optimizers.distributed import MANIFEST_NAME, list_checkpoints, load_checkpoint, save_checkpoint

DOCS = REPO / "docs" / "distributed.md"
CONFIG = REPO / "examples" / "cli_demo.yaml"
TIMEOUT = 120
FINAL = "step-00000012"


def train_commands() -> list[list[str]]:
    """The docs' torchrun lines that run ``tml-optim train``, as written."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    return [
        shlex.split(line)
        for block in blocks
        for line in block.splitlines()
        if line.startswith("torchrun ") and "tml-optim train" in line
    ]


def repository_like(directory: Path) -> Path:
    directory.mkdir()
    (directory / "examples").symlink_to(REPO / "examples")
    return directory


def load_in_one_process(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's model and optimizer tensors (loaded in this process) and its manifest."""
    config = load_config_from_yaml(OptimizerConfig, CONFIG, key="optimizer")
    model = RankingModel(ModelShape())
    optimizer, scheduler = build_optimizer(model, config)
    load_checkpoint(path, model, optimizer, scheduler, config=config)
    tensors = {f"model.{name}": value.clone() for name, value in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        tensors.update({f"optimizer.{index}.{key}": value.clone() for key, value in state.items()})
    return tensors, json.loads((path / MANIFEST_NAME).read_text())


def test_the_docs_show_one_train_command_and_its_resume() -> None:
    first, resume = train_commands()
    assert first[:5] == ["torchrun", "--standalone", "--nproc_per_node", "2", "--no-python"]
    assert resume == [*first, "--resume"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The docs' first command, run as written: its checkpoint directory and output."""
    cwd = repository_like(tmp_path_factory.mktemp("reference") / "repo")
    output = run(train_commands()[0], cwd=cwd, timeout=TIMEOUT).stdout
    return cwd / "runs" / "train", output


def test_rank_0_alone_reports_and_writes_the_plots(reference: tuple[Path, str]) -> None:
    directory, output = reference
    assert output.count("trained 12 steps") == 1 and output.count("step 12/12") == 1
    assert (directory / "loss.png").stat().st_size > 0 and (directory / "lr.png").stat().st_size > 0
    assert [path.name for path in list_checkpoints(directory)] == [FINAL]  # the newest only
    manifest = json.loads((directory / FINAL / MANIFEST_NAME).read_text())
    assert manifest["world_size"] == 2 and manifest["step"] == 12
    assert manifest["extra"]["data_position"] == 12 and len(manifest["extra"]["losses"]) == 12
    states = manifest["extra"]["rng_states"]
    assert len(states) == 2 and states[0] != states[1]  # each rank its own dropout stream


def test_kill_9_of_a_rank_sigterm_and_a_kill_while_saving_then_resume_is_bit_identical(
    tmp_path: Path, reference: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cwd = repository_like(tmp_path / "repo")
    directory = cwd / "runs" / "train"
    first, resume = train_commands()
    script = HERE / "faulty_train.py"
    tml_arguments = first[first.index("tml-optim") + 1 :]

    # 1. Rank 1 is killed after step 7: the checkpoint of step 6 is the last one.
    _torchrun_in(cwd, script, "--kill-rank", "1", "--kill-at-step", "7", "--", *tml_arguments)
    assert [path.name for path in list_checkpoints(directory)] == ["step-00000006"]

    # 2. Resumed from step 6; SIGTERM reaches rank 1 alone after step 7: every rank stops after
    #    step 8 and writes its shard of the checkpoint; rank 0 is killed while writing the manifest.
    #    The checkpoint is incomplete, so the one of step 6 stays the latest.
    faults = ["--signal-rank", "1", "--signal-at-step", "7", "--kill-while-saving-step", "8"]
    stopped = _torchrun_in(cwd, script, *faults, "--", *tml_arguments, "--resume")
    assert "resuming from step 6" in stopped
    assert sorted(path.name for path in (directory / ".step-00000008.tmp").iterdir()) == [
        ".metadata",
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    assert [path.name for path in list_checkpoints(directory)] == ["step-00000006"]

    # 3. The docs' --resume command, as written, finishes the run.
    finished = run(resume, cwd=cwd, timeout=TIMEOUT).stdout
    assert "resuming from step 6" in finished and "trained 12 steps" in finished
    assert not (directory / ".step-00000008.tmp").exists()  # removed by the next save (step 9)

    actual, actual_manifest = load_in_one_process(directory / FINAL)
    expected, expected_manifest = load_in_one_process(reference[0] / FINAL)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name
    for part in ("extra", "scheduler", "step", "world_size"):
        assert actual_manifest[part] == expected_manifest[part], part

    # One process cannot resume what two ranks wrote; it says how to.
    status = main(["train", str(CONFIG), "--steps", "12", "--checkpoint-dir", str(directory), "--resume"])
    assert status == 1
    assert "written under torchrun by 2 ranks; resume it with torchrun --nproc_per_node 2" in (
        capsys.readouterr().err
    )


def _torchrun_in(cwd: Path, script: Path, *arguments: str) -> str:
    """torchrun of ``script`` with 2 ranks from ``cwd``; the run is expected to fail (a fault stops it)."""
    return torchrun(2, script, *arguments, cwd=cwd, timeout=TIMEOUT, expect_failure=True)


def towers_config(cwd: Path, flatten: bool) -> str:
    """examples/multi_task_towers.yaml, or a copy whose two algorithms (adam, sgd) set ``flatten``."""
    if not flatten:
        return "examples/multi_task_towers.yaml"
    text = (REPO / "examples" / "multi_task_towers.yaml").read_text()
    text = text.replace("  adam:  ", "  adam:\n    flatten: true\n   ", 1).replace(
        "      sgd:", "      sgd:\n        flatten: true", 1
    )
    (cwd / "towers_flat.yaml").write_text(text)
    return "towers_flat.yaml"


@pytest.mark.parametrize("flatten", [False, True], ids=["plain", "flatten"])
def test_multi_task_towers_killed_by_kill_9_then_resumed_is_bit_identical_under_torchrun(
    tmp_path: Path, flatten: bool
) -> None:
    # multi_task_towers.yaml (make demo) has Adam and SGD groups: a CombinedOptimizer, whose first
    # DCP checkpoint used to fail (KeyError: 'state'); with flatten: true both children are flat.
    cwd = repository_like(tmp_path / "repo")
    config = towers_config(cwd, flatten)
    first = train_commands()[0]
    tml_arguments = ["train", config, "--checkpoint-every", "3", "--steps", "6"]
    base = [*first[: first.index("tml-optim") + 1], *tml_arguments]
    run([*base, "--checkpoint-dir", "straight"], cwd=cwd, timeout=TIMEOUT)
    # Rank 1 is killed (SIGKILL) after step 4: the checkpoint of step 3 is the last one.
    killed = [*tml_arguments, "--checkpoint-dir", "resumed"]
    _torchrun_in(cwd, HERE / "faulty_train.py", "--kill-rank", "1", "--kill-at-step", "4", "--", *killed)
    assert [path.name for path in list_checkpoints(cwd / "resumed")] == ["step-00000003"]
    output = run([*base, "--checkpoint-dir", "resumed", "--resume"], cwd=cwd, timeout=TIMEOUT)
    assert "resuming from step 3" in output.stdout
    manifests = [
        json.loads((cwd / name / "step-00000006" / MANIFEST_NAME).read_text())
        for name in ("straight", "resumed")
    ]
    assert manifests[0]["world_size"] == 2 and manifests[0]["extra"] == manifests[1]["extra"]
    assert manifests[0]["scheduler"] == manifests[1]["scheduler"]
    assert manifests[0]["resume"] == manifests[1]["resume"]
    assert {record["fingerprint"]["flatten"] for record in manifests[0]["resume"].values()} == {flatten}
    actual, expected = (_saved_tensors(cwd / name / "step-00000006") for name in ("resumed", "straight"))
    assert actual.keys() == expected.keys()
    assert any(name.startswith("optimizer.state.towers.") for name in actual)  # the Adam child's state
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name


def _saved_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a DCP checkpoint as saved, read by torch (``dcp_to_torch_save``), by flat name."""
    converted = path.with_name(f"{path.name}.pt")
    dcp_to_torch_save(path, converted)
    state = torch.load(converted, weights_only=True)
    flat: dict[str, torch.Tensor] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}.{key}" if prefix else str(key), item)

    visit("", state)
    return flat


def test_fresh_removes_the_checkpoints_of_an_earlier_run(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    config = OptimizerConfig(adam={"lr": 0.01})
    optimizer, scheduler = build_optimizer(model, config)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path, 100, model, optimizer, scheduler, config=config)
    assert main(["train", str(CONFIG), "--steps", "2", "--checkpoint-dir", str(tmp_path)]) == 1
    assert main(["train", str(CONFIG), "--steps", "2", "--checkpoint-dir", str(tmp_path), "--fresh"]) == 0
    assert [path.name for path in list_checkpoints(tmp_path)] == ["step-00000002"]  # step 100 is gone


def test_each_rank_trains_on_its_slice_of_the_global_batch() -> None:
    batch = SyntheticRankingData(ModelShape(), seed=0).batch(3)
    slices = [shard(batch, Ranks(rank, 2)) for rank in range(2)]
    for index, tensor in enumerate(batch):
        assert torch.equal(torch.cat([part[index] for part in slices]), tensor)
    assert slices[0][0].shape[0] == slices[1][0].shape[0] == batch[0].shape[0] // 2
    assert rank_seed(0, 0) != rank_seed(0, 1)
