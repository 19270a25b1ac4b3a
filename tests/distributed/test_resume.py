"""Resume under torchrun (2 gloo ranks on CPU) at other world sizes, 2 → 1 → 2: the docs commands.

The reference is an uninterrupted 2-rank run of examples/distributed_train.py (16 steps, a
checkpoint every 4). The commands of docs/distributed.md run as written (2 ranks to step 8, 1 rank
to step 12, 2 ranks to step 16, plus FSDP2 and ZeRO runs); their checkpoints are compared with the
reference's. Same-world-size resume after kill -9 (mid-step and while saving) and SIGTERM is tested
with ``tml-optim train``, which checkpoints through the same functions, in
tests/demo/test_train_distributed.py.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import EXAMPLE, REPO, load_module, run, torchrun

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, build_optimizer, compute_lr
from tml.optimizers.distributed import list_checkpoints, load_checkpoint

CONFIG_PATH = REPO / "examples" / "single_task.yaml"
DOCS = REPO / "docs" / "distributed.md"
RTOL = 1e-6
"""Norm-wise per tensor, as in tests/distributed/test_training.py: runs at different world sizes average
the gradient over other slices, which differs by float rounding."""

example = load_module(EXAMPLE, "distributed_train")


def config() -> OptimizerConfig:
    return load_config_from_yaml(OptimizerConfig, CONFIG_PATH, key="optimizer")


def load_in_one_process(path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """A checkpoint's model state, loaded into a plain model in this process (no process group)."""
    model = example.make_model()
    optimizer, scheduler = build_optimizer(model, config())
    info = load_checkpoint(path, model, optimizer, scheduler, config=config())
    assert scheduler.last_epoch == info.step
    assert optimizer.param_groups[0]["lr"] == compute_lr(config().schedule(), info.step)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}, info.world_size


def assert_identical(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name


def assert_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        error = torch.linalg.vector_norm(actual[name] - expected[name])
        assert error <= RTOL * torch.linalg.vector_norm(expected[name]), f"{name}: ||difference|| = {error}"


def train_args(checkpoint_dir: Path, steps: int, *extra: str) -> list[str]:
    return ["--steps", str(steps), "--checkpoint-dir", str(checkpoint_dir), "--checkpoint-every", "4", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """An uninterrupted 2-rank run: its checkpoint directory and final model state."""
    out = tmp_path_factory.mktemp("reference")
    torchrun(2, EXAMPLE, *train_args(out / "checkpoints", 16, "--final-state", str(out / "final.pt")))
    return out / "checkpoints", torch.load(out / "final.pt", weights_only=True)


def doc_commands() -> list[list[str]]:
    """The torchrun lines of the docs' ``sh`` blocks that run the example, as written (those of
    ``tml-optim train`` are run by tests/demo/test_train_distributed.py)."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    return [
        shlex.split(line)
        for block in blocks
        for line in block.splitlines()
        if line.startswith("torchrun ") and "examples/distributed_train.py" in line
    ]


@pytest.fixture(scope="module")
def docs_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the docs' commands in order, from a directory laid out like the repository."""
    cwd = tmp_path_factory.mktemp("docs")
    (cwd / "examples").symlink_to(REPO / "examples")
    for command in doc_commands():
        run(command, cwd=cwd)
    return cwd / "runs"


def test_docs_list_the_commands_the_tests_rely_on() -> None:
    commands = [" ".join(command) for command in doc_commands()]
    assert len(commands) == 5
    assert all(command.startswith("torchrun --standalone --nproc_per_node ") for command in commands)
    assert [command.split()[3] for command in commands if "runs/dist" in command] == ["2", "1", "2"]


def test_docs_commands_run_and_write_checkpoints_at_each_world_size(docs_run: Path) -> None:
    world_sizes = {
        path.name: json.loads((path / "manifest.json").read_text())["world_size"]
        for path in list_checkpoints(docs_run / "dist")
    }
    assert world_sizes == {"step-00000008": 2, "step-00000012": 1, "step-00000016": 2}
    assert [path.name for path in list_checkpoints(docs_run / "fsdp")] == ["step-00000002", "step-00000004"]


def test_resume_from_2_ranks_on_1_continues_within_rtol(
    docs_run: Path, reference: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    resumed, world_size = load_in_one_process(docs_run / "dist" / "step-00000012")
    assert world_size == 1
    expected, _ = load_in_one_process(reference[0] / "step-00000012")
    assert_close(resumed, expected)


def test_resume_from_1_rank_on_2_continues_within_rtol(
    docs_run: Path, reference: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    resumed, world_size = load_in_one_process(docs_run / "dist" / "step-00000016")
    assert world_size == 2
    assert_close(resumed, reference[1])


def test_fsdp2_checkpoint_loads_in_one_process_and_matches_single_process_training(docs_run: Path) -> None:
    loaded, world_size = load_in_one_process(docs_run / "fsdp" / "step-00000004")
    assert world_size == 2
    model = example.make_model()
    optimizer, scheduler = build_optimizer(model, config())
    for step in range(4):
        inputs, targets = example.make_batch(step, 0, 1)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()
    assert_close(loaded, model.state_dict())
