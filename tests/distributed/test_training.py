"""build_optimizer under torch.distributed, 2 ranks on gloo: DDP, FSDP2 (DTensor, fused Adam), ZeRO-1.

One torchrun job (tests/distributed/modes.py) trains every variant from the same initial model on
the same data (each rank its half of every global batch) and records every rank's learning rates
at every step, gathered. Here the results are checked against a single-process run of the same
model on the whole batches and against the closed-form schedule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import EXAMPLE, HERE, load_module, torchrun

from tml.core.config import load_config_from_yaml
from tml.optimizers import LRShim, OptimizerConfig, build_optimizer, compute_lr
from tml.optimizers.distributed import single_optimizer_class

STEPS = 6
CONFIG_YAML = """
adam: {lr: 0.05}
learning_rate:
  linear_ramp_to_cosine:
    {learning_rate: 0.05, final_learning_rate: 0.001, num_ramp_steps: 2, final_num_steps: 6}
"""
RTOL = 1e-6
"""Relative tolerance, norm-wise per tensor: ||actual - expected|| <= RTOL * ||expected||. In float32
the ranks' averaged gradient differs from the whole batch's by rounding (a few ulps), which an
element-wise rtol cannot absorb for entries near zero."""

example = load_module(EXAMPLE, "distributed_train")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "optimizer.yaml"
    path.write_text(CONFIG_YAML)
    return path


@pytest.fixture(scope="module")
def job(config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("modes")
    torchrun(2, HERE / "modes.py", str(config_path), str(out), str(STEPS))
    return out, json.loads((out / "results.json").read_text())


def single_process_reference(config: OptimizerConfig, *, fused: bool = False) -> dict[str, torch.Tensor]:
    """The same model trained in one process on the whole global batches."""
    model = example.make_model()
    if fused:
        schedule = config.schedule()
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=compute_lr(schedule, 0), eps=1e-7, fused=True
        )
        scheduler = LRShim(optimizer, {"default": schedule})
    else:
        optimizer, scheduler = build_optimizer(model, config)
    for step in range(STEPS):
        inputs, targets = example.make_batch(step, 0, 1)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()
    return {name: tensor.detach() for name, tensor in model.state_dict().items()}


def assert_states_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()  # the model's own names: no DDP "module." prefix
    for name in expected:
        assert actual[name].shape == expected[name].shape, name
        error = torch.linalg.vector_norm(actual[name] - expected[name])
        assert error <= RTOL * torch.linalg.vector_norm(expected[name]), f"{name}: ||difference|| = {error}"


@pytest.mark.parametrize("variant", ["ddp", "fsdp", "fsdp_fused", "zero", "zero_config"])
def test_every_rank_has_the_schedules_learning_rate_at_every_step(
    job: tuple[Path, dict[str, Any]], config_path: Path, variant: str
) -> None:
    _, results = job
    schedule = load_config_from_yaml(OptimizerConfig, config_path).schedule()
    gathered = results[variant]["learning_rates"]  # [step][rank][group]
    assert len(gathered) == STEPS + 1
    for step, per_rank in enumerate(gathered):
        assert per_rank == [[compute_lr(schedule, step)]] * 2, f"step {step}"


@pytest.mark.parametrize(("variant", "fused"), [("ddp", False), ("fsdp", False), ("fsdp_fused", True)])
def test_training_matches_a_single_process(
    job: tuple[Path, dict[str, Any]], config_path: Path, variant: str, fused: bool
) -> None:
    out, _ = job
    config = load_config_from_yaml(OptimizerConfig, config_path)
    trained = torch.load(out / f"{variant}.pt", weights_only=True)
    assert_states_close(trained, single_process_reference(config, fused=fused))


def test_fsdp2_parameters_are_sharded_dtensors(job: tuple[Path, dict[str, Any]]) -> None:
    _, results = job
    assert results["fsdp_parameter_types"] == ["DTensor"]
    total = sum(parameter.numel() for parameter in example.make_model().parameters())
    local = results["fsdp_local_numel"]
    assert sum(local) == total and max(local) < total  # each rank holds a part


def test_zero_equals_ddp_and_shards_the_optimizer_state(job: tuple[Path, dict[str, Any]]) -> None:
    out, results = job
    zero = torch.load(out / "zero.pt", weights_only=True)
    ddp = torch.load(out / "ddp.pt", weights_only=True)
    assert_states_close(zero, ddp)
    assert results["zero_optimizer_class"] == "Adam"
    total = sum(parameter.numel() for parameter in example.make_model().parameters())
    local = results["zero_local_state_numel"]  # entries of Adam's exp_avg held by each rank
    assert sum(local) == total and max(local) < total


def test_the_shard_optimizer_state_option_equals_ddp_and_shards_the_state(
    job: tuple[Path, dict[str, Any]],
) -> None:
    out, results = job
    assert results["zero_config_optimizer_types"] == ["ZeroRedundancyOptimizer", "Adam"]
    sharded = torch.load(out / "zero_config.pt", weights_only=True)
    assert_states_close(sharded, torch.load(out / "ddp.pt", weights_only=True))
    # Each rank holds Adam's two moments for its share of the parameters only; together, all.
    total = sum(parameter.numel() for parameter in example.make_model().parameters())
    local = results["zero_config_local_state"]
    assert [sorted(sizes) for sizes in local] == [["exp_avg", "exp_avg_sq"]] * 2
    assert sum(sizes["exp_avg"] for sizes in local) == total
    assert sum(sizes["exp_avg_sq"] for sizes in local) == total
    assert all(0 < sizes["exp_avg"] < total for sizes in local)


def test_a_rank_with_another_learning_rate_is_caught_on_every_rank(job: tuple[Path, dict[str, Any]]) -> None:
    _, results = job
    assert results["mismatch_errors_on_ranks"] == [True, True]
    assert "group 'default'" in results["mismatch_error"]
    assert "rank 1 has 0.5" in results["mismatch_error"]


class _Container(torch.optim.Optimizer):
    """A torchrec-style container of one optimizer per algorithm (``_optims``)."""

    def __init__(self, children: list[tuple[str, torch.optim.Optimizer]]) -> None:
        self._optims = children
        self.param_groups = [group for _, child in children for group in child.param_groups]


def test_zero_refuses_groups_with_several_algorithms() -> None:
    dense, embedding = torch.nn.Linear(2, 2), torch.nn.Embedding(4, 2)
    container = _Container(
        [
            ("dense", torch.optim.Adam([{"params": dense.parameters(), "name": "dense"}])),
            ("embedding", torch.optim.SGD([{"params": embedding.parameters(), "name": "embedding"}], lr=0.1)),
        ]
    )
    with pytest.raises(ValueError, match=r"2 algorithms \('dense': Adam, 'embedding': SGD\)"):
        single_optimizer_class(container)
    single = _Container([("dense", torch.optim.Adam(dense.parameters()))])
    assert single_optimizer_class(single) is torch.optim.Adam
    assert single_optimizer_class(torch.optim.SGD(dense.parameters(), lr=0.1)) is torch.optim.SGD
