"""The checkpoints of ``tml-optim train``: DCP directories, one format for any number of ranks.

Checkpoints go through :mod:`tml.optimizers.distributed.checkpoint` (``<dir>/step-<step>/``, the
newest only is kept; written atomically, every file checked before loading). It holds the model,
optimizer and scheduler state and the optimizer config; its manifest's ``extra`` holds the rest of
what a bit-identical resume needs: the data position, the seed, the loss history and every rank's
torch RNG state (dropout). The data stream is a pure function of the position, so a resume at the
same number of ranks continues exactly; at another number the data shards and RNG states differ,
so it is refused.
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch

from tml.optimizers.cli.errors import CliError
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.demo.distributed import Ranks, barrier, gather
from tml.optimizers.demo.table_job import TABLE_MODEL, load_tables, save_tables
from tml.optimizers.distributed.checkpoint import (
    CheckpointError,
    config_differences,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import ResumeError, ResumePolicy


@dataclasses.dataclass(frozen=True)
class Job:
    """What a run trains and checkpoints: the model as trained (DDP-wrapped under torchrun, or the
    table model in a ``DistributedModelParallel``)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LRShim
    config: OptimizerConfig
    tables: bool = False
    """The table model (:mod:`tml.optimizers.demo.table_job`): its checkpoints are table checkpoints."""


@dataclasses.dataclass
class RunState:
    """Where a run is: steps done, the next data position, the (rank-averaged) loss of every step."""

    step: int = 0
    data_position: int = 0
    losses: list[float] = dataclasses.field(default_factory=list)

    def advance(self, loss: float) -> None:
        """One step done, with ``loss``; the next batch is the next position's."""
        self.step += 1
        self.data_position += 1
        self.losses.append(loss)


def has_checkpoint(directory: Path) -> bool:
    """``directory`` holds a complete checkpoint."""
    return latest_checkpoint(directory) is not None


def remove_checkpoints(directory: Path, ranks: Ranks) -> None:
    """For ``--fresh``: rank 0 removes the checkpoints (a later resume must not find an old one, and
    ``keep`` must not keep an old, later step instead of the new ones); collective."""
    if ranks.is_main:
        for path in list_checkpoints(directory):
            shutil.rmtree(path)
    barrier(ranks)


def save(directory: Path, job: Job, state: RunState, *, seed: int, ranks: Ranks) -> Path:
    """Write the checkpoint of ``state.step`` (the newest only is kept); collective."""
    extra = {
        "data_position": state.data_position,
        "seed": seed,
        "losses": state.losses,
        "rng_states": gather(_encode(torch.get_rng_state()), ranks),
    }
    if job.tables:
        return save_tables(
            directory,
            state.step,
            job.model,
            job.optimizer,
            job.scheduler,
            config=job.config,
            extra=extra,
            world_size=ranks.world_size,
        )
    return save_checkpoint(
        directory, state.step, job.model, job.optimizer, job.scheduler, config=job.config, extra=extra, keep=1
    )


def check_writable(directory: Path, ranks: Ranks) -> None:
    """Refuse, before the first step, a checkpoint directory that cannot be written; collective.

    Rank 0 creates it (and its parents) and writes and removes a probe file there.

    Raises:
      CliError: on every rank alike, naming the directory and the reason.
    """
    failure: str | None = None
    if ranks.is_main:
        probe = directory / ".tml-write-probe"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            failure = f"--checkpoint-dir {directory} cannot be written: {error}"
    failure = gather(failure, ranks)[0]  # rank 0's verdict, on every rank
    if failure is not None:
        raise CliError(f"{failure}; give a --checkpoint-dir that can be written (nothing was trained)")


def resume(
    directory: Path, job: Job, *, seed: int, steps: int, ranks: Ranks, policy: ResumePolicy | None = None
) -> tuple[Path, RunState]:
    """Load the latest checkpoint of ``directory`` into ``job`` and this rank's RNG state; collective.

    ``policy`` (``None``: the config's ``resume``): ``strict`` refuses a checkpoint written with
    another optimizer config, listing the keys that differ; ``config`` loads its state and applies
    this config's hyperparameters and schedules (``load_checkpoint``'s ``policy``).

    Returns:
      The checkpoint's path and the state of the run it holds.

    Raises:
      CliError: on every rank alike: no checkpoint, a damaged one, or one written by another number
        of ranks, with another config or seed, or beyond ``steps``.
    """
    path = latest_checkpoint(directory)
    if path is None:
        raise CliError(f"no checkpoint to resume from: {directory} holds no complete step-* checkpoint")
    try:  # every rank checks the same files, so every rank decides alike
        chosen = policy or job.config.resume
        manifest = verify_checkpoint(path)
        _check_model(path, manifest, job)
        _check_resumable(path, manifest, job.config, seed=seed, steps=steps, ranks=ranks, policy=chosen)
        if job.tables:
            load_tables(path, job.model, job.optimizer, job.scheduler, policy=chosen)
            step, extra = int(manifest["step"]), manifest["extra"]
        else:
            info = load_checkpoint(
                path, job.model, job.optimizer, job.scheduler, config=job.config, policy=chosen
            )
            step, extra = info.step, info.extra
    except (CheckpointError, ResumeError) as error:
        raise CliError(f"cannot resume: {error}") from None
    torch.set_rng_state(_decode(extra["rng_states"][ranks.rank]))
    losses = [float(loss) for loss in extra["losses"]]
    return path, RunState(step, int(extra["data_position"]), losses)


def _check_model(path: Path, manifest: dict[str, Any], job: Job) -> None:
    """The checkpoint was written by the demo model this config trains (the table model for a config
    with ``embedding_tables``, the dense one otherwise)."""
    saved_tables = manifest.get("model") == TABLE_MODEL
    if saved_tables != job.tables:
        written, trains = (
            ("the table model", "the dense demo model")
            if saved_tables
            else (
                "the dense demo model",
                "the table model",
            )
        )
        raise CliError(
            f"cannot resume: {path} was written by {written}, and this config trains {trains} "
            "(a config with embedding_tables trains the table model); start over with --fresh"
        )


def _check_resumable(
    path: Path,
    manifest: dict[str, Any],
    config: OptimizerConfig,
    *,
    seed: int,
    steps: int,
    ranks: Ranks,
    policy: str,
) -> None:
    saved_ranks, extra = int(manifest["world_size"]), manifest["extra"]
    if saved_ranks != ranks.world_size:
        written, how = (
            f"under torchrun by {saved_ranks} ranks",
            f"with torchrun --nproc_per_node {saved_ranks}",
        )
        if saved_ranks == 1:
            written, how = "by one process", "without torchrun (or with --nproc_per_node 1)"
        raise CliError(
            f"cannot resume: {path} was written {written}; resume it {how} (a bit-identical resume "
            f"needs the same data shards and RNG states; this run has {ranks.world_size})"
        )
    differences = config_differences(
        manifest["config"], config.model_dump(mode="json", exclude_none=True), ignore=frozenset({"resume"})
    )
    if differences and policy == "strict":
        raise CliError(
            "cannot resume: the checkpoint was written with another optimizer config "
            f"({'; '.join(differences)}); resume with the same config, apply this one to the saved "
            "state with --resume-policy config, or start over with --fresh"
        )
    if int(extra["seed"]) != seed:
        raise CliError(f"cannot resume: the checkpoint was written with --seed {extra['seed']}")
    if int(manifest["step"]) > steps:
        raise CliError(f"cannot resume: the checkpoint is at step {manifest['step']}, beyond --steps {steps}")


def _encode(state: torch.Tensor) -> str:
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def _decode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


__all__ = ["Job", "RunState", "check_writable", "has_checkpoint", "remove_checkpoints", "resume", "save"]
