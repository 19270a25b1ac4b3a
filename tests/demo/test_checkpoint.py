"""The checkpoints of ``tml-optim train`` in process: what a resume restores, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig
from tml.optimizers.cli.errors import CliError
from tml.optimizers.demo.checkpoint import Job, RunState, has_checkpoint, resume, save
from tml.optimizers.demo.distributed import Ranks
from tml.optimizers.demo.model import ModelShape, SyntheticRankingData
from tml.optimizers.demo.trainer import build_job, train_step
from tml.optimizers.distributed import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
ONE_PROCESS = Ranks()


def trained_job(path: Path, seed: int = 0) -> Job:
    """The demo job of ``path``'s config after two steps."""
    job = build_job(load_config_from_yaml(OptimizerConfig, path, key="optimizer"), seed, ONE_PROCESS)
    data = SyntheticRankingData(ModelShape(), seed=seed)
    for position in range(2):
        train_step(job, data, position, ONE_PROCESS)
    return job


def tensors(job: Job) -> dict[str, torch.Tensor]:
    state = {f"model.{name}": value.clone() for name, value in job.model.state_dict().items()}
    for child_index, child in enumerate(getattr(job.optimizer, "optimizers", [job.optimizer])):
        for index, values in child.state_dict()["state"].items():
            state.update(
                {f"optimizer.{child_index}.{index}.{key}": value.clone() for key, value in values.items()}
            )
    return state


# cli_demo.yaml: one Adam; multi_task_towers.yaml (make demo): Adam and SGD groups, a CombinedOptimizer.
@pytest.mark.parametrize("config", ["cli_demo.yaml", "multi_task_towers.yaml"])
def test_resume_restores_job_run_state_and_rng_and_keeps_the_newest_checkpoint(
    tmp_path: Path, config: str
) -> None:
    job = trained_job(ROOT / "examples" / config)
    save(tmp_path, job, RunState(1, 1, [0.75]), seed=0, ranks=ONE_PROCESS)
    save(tmp_path, job, RunState(2, 2, [0.75, 0.5]), seed=0, ranks=ONE_PROCESS)
    expected, next_draw = tensors(job), torch.rand(4)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["step-00000002"]

    resumed = build_job(job.config, seed=1, ranks=ONE_PROCESS)  # other weights: all from the checkpoint
    path, state = resume(tmp_path, resumed, seed=0, steps=2, ranks=ONE_PROCESS)
    assert path == tmp_path / "step-00000002" and state == RunState(2, 2, [0.75, 0.5])
    assert torch.equal(torch.rand(4), next_draw)  # the RNG state of the save
    actual = tensors(resumed)
    assert actual.keys() == expected.keys() and any(name.startswith("optimizer.") for name in actual)
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name
    assert resumed.scheduler.last_epoch == 2


def _damage_a_shard(directory: Path) -> None:
    next(directory.glob("step-*/*.distcp")).write_bytes(b"not a checkpoint")


REFUSALS = [
    ("no checkpoint", {}, None, r"^no checkpoint to resume from: .* holds no complete step-\* checkpoint$"),
    ("other seed", {"seed": 3}, "save", r"^cannot resume: the checkpoint was written with --seed 0$"),
    (
        "beyond --steps",
        {"steps": 1},
        "save",
        r"^cannot resume: the checkpoint is at step 2, beyond --steps 1$",
    ),
    (
        "other number of ranks",
        {"ranks": Ranks(0, 2)},
        "save",
        r"^cannot resume: .*step-00000002 was written by one process; resume it without torchrun \(or "
        r"with --nproc_per_node 1\) \(a bit-identical resume needs the same data shards and RNG states; "
        r"this run has 2\)$",
    ),
    (
        "damaged",
        {},
        "damage",
        r"^cannot resume: checkpoint .*step-00000002 is damaged, nothing was loaded: __0_0\.distcp has 16 "
        r"bytes, \d+ were written \(truncated\?\)$",
    ),
]


@pytest.mark.parametrize(
    ("changes", "setup", "expected"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_checkpoint_that_cannot_be_resumed_is_a_one_line_error(
    tmp_path: Path, changes: dict[str, object], setup: str | None, expected: str
) -> None:
    job = trained_job(ROOT / "examples" / "cli_demo.yaml")
    if setup is not None:
        save(tmp_path, job, RunState(2, 2, [0.75, 0.5]), seed=0, ranks=ONE_PROCESS)
        assert has_checkpoint(tmp_path)
    if setup == "damage":
        _damage_a_shard(tmp_path)
    arguments = {"seed": 0, "steps": 2, "ranks": ONE_PROCESS, **changes}
    with pytest.raises(CliError, match=expected):
        resume(tmp_path, job, **arguments)  # type: ignore[arg-type]


def test_a_resume_with_another_weight_decay_lists_the_key_or_applies_it_under_the_config_policy(
    tmp_path: Path,
) -> None:
    from tml.optimizers import ResumeWarning

    job = trained_job(ROOT / "examples" / "cli_demo.yaml")
    save(tmp_path, job, RunState(2, 2, [0.75, 0.5]), seed=0, ranks=ONE_PROCESS)
    changed = job.config.model_copy(update={"adam": job.config.adam.model_copy(update={"weight_decay": 0.5})})
    other = build_job(OptimizerConfig.model_validate(changed.model_dump()), seed=0, ranks=ONE_PROCESS)
    with pytest.raises(
        CliError,
        match=r"^cannot resume: the checkpoint was written with another optimizer config "
        r"\(adam\.weight_decay: 0\.0 in the checkpoint, 0\.5 here\); resume with the same config, apply "
        r"this one to the saved state with --resume-policy config, or start over with --fresh$",
    ):
        resume(tmp_path, other, seed=0, steps=2, ranks=ONE_PROCESS)
    with pytest.warns(
        ResumeWarning,
        match=r"group 'default': hyperparameters\.weight_decay: 0\.0 in the checkpoint, 0\.5 here$",
    ):
        _, state = resume(tmp_path, other, seed=0, steps=2, ranks=ONE_PROCESS, policy="config")
    assert state == RunState(2, 2, [0.75, 0.5])
    assert [group["weight_decay"] for group in other.optimizer.param_groups] == [0.5]
    expected = tensors(job)
    actual = tensors(other)
    for name in expected:  # the saved model and moments, this config's weight decay
        assert torch.equal(actual[name], expected[name]), name
