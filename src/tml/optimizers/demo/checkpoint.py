"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds everything the run needs to continue bit-identically: model, optimizer and
scheduler state, the global torch RNG state (dropout), the data position, the loss history and the
config it was written with (a run is never resumed with another config).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tml.optimizers.cli.errors import CliError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1
"""The version of the checkpoint's layout; a checkpoint of another version is refused."""


def checkpoint_path(directory: str | Path) -> Path:
    """The file of the latest checkpoint in a directory."""
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically: a temporary file, then a rename.

    A crash at any moment leaves either the previous checkpoint or the new one, never a torn file.
    """
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            torch.save({"format": FORMAT, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)
    return path


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read the checkpoint of a directory (plain data and tensors only).

    Raises:
      CliError: no checkpoint there, or one that cannot be read or has another format.
    """
    path = checkpoint_path(directory)
    if not path.is_file():
        raise CliError(f"no checkpoint to resume from: {path} does not exist")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CliError(f"cannot read the checkpoint {path}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CliError(f"{path} is not a tml-optim checkpoint of format {FORMAT} (found {found!r})")
    return state


def _sync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows), hence best effort.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


__all__ = ["CHECKPOINT_NAME", "checkpoint_path", "load_checkpoint", "save_checkpoint"]
