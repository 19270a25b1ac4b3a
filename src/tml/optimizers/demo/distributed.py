"""``tml-optim train`` under torchrun: the process group, each rank's data shard, DCP checkpoints.

With ``WORLD_SIZE`` > 1 (set by torchrun) the demo model is wrapped in DDP on a gloo process group,
every rank trains on its slice of each global batch (the batch of the data position, as in one
process), and checkpoints go through :mod:`tml.optimizers.distributed.checkpoint` (DCP, one
``step-<step>`` directory with a manifest). The manifest's ``extra`` holds what DCP does not: the
data position, the seed, the loss history and every rank's torch RNG state (dropout), so that a
resume at the same world size continues bit-identically. At world size 1 none of this is used: the
single-process checkpoint format (``checkpoint.pt``) is unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
from pathlib import Path

import pydantic
import torch
import torch.distributed as dist

from tml.optimizers.cli.errors import CliError
from tml.optimizers.demo.checkpoint import CHECKPOINT_NAME
from tml.optimizers.distributed.checkpoint import (
    MANIFEST_NAME,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from tml.optimizers.runtime.lr_shim import LRShim

BACKEND = "gloo"
"""CPU training; the demo model is small."""


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place in the job: rank 0 of 1 without torchrun."""

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints and writes the plots."""
        return self.rank == 0


def launched_ranks() -> Ranks:
    """The rank and world size torchrun gave this process (``RANK``, ``WORLD_SIZE``); 0 of 1 otherwise."""
    return Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def start_process_group(ranks: Ranks) -> bool:
    """Join the job's gloo process group when there are several ranks; True if this call started it."""
    if not ranks.distributed or dist.is_initialized():
        return False
    dist.init_process_group(BACKEND)
    return True


def rank_seed(seed: int, rank: int) -> int:
    """The seed of a rank's torch RNG (dropout) after the model is built: distinct per rank."""
    return seed * 1_000_003 + 7919 * (rank + 1)


def shard(tensors: tuple[torch.Tensor, ...], ranks: Ranks) -> tuple[torch.Tensor, ...]:
    """This rank's rows of a global batch (``tensor_split``: sizes differ by at most one row)."""
    return tuple(tensor.tensor_split(ranks.world_size)[ranks.rank] for tensor in tensors)


def agree(loss: float, signal_number: int | None, ranks: Ranks) -> tuple[float, int | None]:
    """The loss averaged over the ranks and a stop request seen by any rank; collective.

    A signal may reach the ranks at different steps (or only one): every rank stops after the same
    step, so that the checkpoint they write together is consistent.
    """
    mine = torch.tensor([loss, float(signal_number or 0)], dtype=torch.float64)
    gathered = [torch.empty_like(mine) for _ in range(ranks.world_size)]
    dist.all_gather(gathered, mine)
    mean = sum(float(values[0]) for values in gathered) / ranks.world_size
    signals = [int(values[1]) for values in gathered if values[1] != 0]
    return mean, (signals[0] if signals else None)


def has_checkpoint(directory: Path) -> bool:
    """A checkpoint of either format is in ``directory``."""
    return latest_checkpoint(directory) is not None or (directory / CHECKPOINT_NAME).exists()


def remove_checkpoints(directory: Path, ranks: Ranks) -> None:
    """For ``--fresh``: rank 0 removes the checkpoints of both formats (a later resume must not find
    an old one, and ``keep`` must not keep an old, later step instead of the new ones); collective."""
    if ranks.is_main:
        (directory / CHECKPOINT_NAME).unlink(missing_ok=True)
        for path in list_checkpoints(directory):
            shutil.rmtree(path)
    if ranks.distributed:
        dist.barrier()


def save(
    directory: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    config: pydantic.BaseModel,
    *,
    position: int,
    seed: int,
    losses: list[float],
) -> Path:
    """Write the DCP checkpoint of ``step`` (the newest only is kept); collective."""
    states: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(states, _encode(torch.get_rng_state()))
    extra = {"data_position": position, "seed": seed, "losses": losses, "rng_states": states}
    return save_checkpoint(directory, step, model, optimizer, scheduler, config=config, extra=extra, keep=1)


@dataclasses.dataclass(frozen=True)
class Resumed:
    step: int
    position: int
    losses: list[float]


def resume(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    config: pydantic.BaseModel,
    *,
    seed: int,
    steps: int,
    ranks: Ranks,
) -> Resumed:
    """Load the latest DCP checkpoint of ``directory`` and this rank's RNG state; collective.

    Raises:
      CliError: on every rank: no checkpoint, one written by another number of ranks or with another
        seed, beyond ``steps``, damaged, or of another config.
    """
    path = latest_checkpoint(directory)
    if path is None:
        if (directory / CHECKPOINT_NAME).exists():
            raise CliError(
                f"cannot resume: {directory / CHECKPOINT_NAME} was written by a single process; resume "
                "it without torchrun (or with --nproc_per_node 1)"
            )
        raise CliError(f"no checkpoint to resume from: {directory} holds no complete step-* checkpoint")
    try:  # every rank reads the same manifest, so every rank decides alike
        manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
        saved_ranks, extra = int(manifest["world_size"]), manifest["extra"]
        saved_seed, saved_step = int(extra["seed"]), int(manifest["step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CliError(f"cannot resume: {path}/{MANIFEST_NAME} is unreadable ({error})") from None
    if saved_ranks != ranks.world_size:
        raise CliError(
            f"cannot resume: {path} was written by {saved_ranks} ranks and this run has "
            f"{ranks.world_size}; a bit-identical resume needs the same data shards and RNG states: "
            f"run with torchrun --nproc_per_node {saved_ranks}"
        )
    if saved_seed != seed:
        raise CliError(f"cannot resume: the checkpoint was written with --seed {saved_seed}")
    if saved_step > steps:
        raise CliError(f"cannot resume: the checkpoint is at step {saved_step}, beyond --steps {steps}")
    try:
        info = load_checkpoint(path, model, optimizer, scheduler, config=config)
    except CheckpointError as error:
        raise CliError(f"cannot resume: {error}") from None
    torch.set_rng_state(_decode(info.extra["rng_states"][ranks.rank]))
    return Resumed(info.step, int(info.extra["data_position"]), [float(x) for x in info.extra["losses"]])


def refuse_other_format(directory: Path) -> None:
    """A single process cannot resume a checkpoint written under torchrun."""
    path = latest_checkpoint(directory)
    if path is not None and not (directory / CHECKPOINT_NAME).exists():
        try:
            world_size = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))["world_size"]
        except (OSError, ValueError, KeyError, TypeError):
            world_size = "several"
        raise CliError(
            f"cannot resume: {path} was written under torchrun by {world_size} ranks; resume it with "
            f"torchrun --nproc_per_node {world_size}"
        )


def _encode(state: torch.Tensor) -> str:
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def _decode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


__all__ = [
    "Ranks",
    "Resumed",
    "agree",
    "has_checkpoint",
    "launched_ranks",
    "refuse_other_format",
    "remove_checkpoints",
    "resume",
    "save",
    "shard",
    "start_process_group",
]
