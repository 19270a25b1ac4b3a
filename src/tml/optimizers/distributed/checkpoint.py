"""Checkpoints of model, optimizer and ``LRShim`` through ``torch.distributed.checkpoint`` (DCP).

A checkpoint is a directory ``<root>/step-<step>`` holding DCP's files (one shard file per rank
plus ``.metadata``) and ``manifest.json``, written last by rank 0: the size and SHA-256 of every
file, the scheduler's state, the optimizer config and the param groups (group name → parameter
names). A checkpoint is written into a hidden temporary directory and renamed into place once
complete, so a process killed while writing leaves the previous checkpoint as the latest one; a
truncated or corrupted file is found by the manifest before anything is loaded.

The model and optimizer state go through ``get_state_dict`` / ``set_state_dict``
(``torch.distributed.checkpoint.state_dict``): parameter names are the model's own (no DDP
``module.`` prefix), and DTensor (FSDP2) state is resharded on load, so a checkpoint written by
``N`` ranks loads on ``M`` ranks, or in a single process without a process group. A
``CombinedOptimizer`` goes through them as its children (torch's functions take several optimizers;
its own ``state_dict`` layout is not torch's). Before loading, an optimizer without state is given
its state (DCP fills the tensors of a template), and a checkpoint holding optimizer state that the
template has no entry for is refused: DCP would leave that state out without a word.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.distributed.optim import ZeroRedundancyOptimizer

from tml.optimizers.algorithms.facts import takes_sparse_gradients_only
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import (
    ResumeError,
    ResumePolicy,
    ResumeWarning,
    compare_records,
    default_policy,
    effective_policy,
    judge,
    resume_policy,
    saved_records,
    without_schedules,
)
from tml.optimizers.runtime.resume import differences as json_differences

MANIFEST_NAME = "manifest.json"
"""The file that marks a checkpoint as complete; written last."""

MANIFEST_FORMAT = 1
_MANIFEST_KEYS = frozenset(
    {"format", "step", "world_size", "files", "scheduler", "config", "groups", "shapes", "extra"}
)
"""The keys every manifest has; ``resume`` (the optimizer's group records) is newer, and optional."""

SCHEDULE_KEYS = frozenset({"learning_rate", "lr", "reduce_on_plateau"})
"""Config keys that only choose the schedule: with ``reset_schedule=True`` they may differ."""

_CHECKPOINT_NAME = re.compile(r"^step-(\d{8,})$")
_HASH_CHUNK = 1 << 20
_OPTIMIZER_STATE = "optimizer.state."
"""The prefix of the optimizer's per-parameter state among DCP's (flattened) keys."""

T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, corrupted, or does not fit the model, optimizer or config."""


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`load_checkpoint` restored."""

    path: Path
    step: int
    """The training step the checkpoint was saved at (as given to :func:`save_checkpoint`)."""
    world_size: int
    """The number of ranks that wrote it."""
    extra: dict[str, Any]
    """The JSON data given to :func:`save_checkpoint` as ``extra``."""


def checkpoint_path(root: str | os.PathLike[str], step: int) -> Path:
    """The directory of the checkpoint of ``step`` under ``root``: ``<root>/step-00000042``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return Path(root) / f"step-{step:08d}"


def list_checkpoints(root: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoints under ``root`` (those with a manifest), oldest step first.

    Temporary directories of checkpoints being written, or abandoned by a killed run, are left out.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in root.iterdir()
        if (match := _CHECKPOINT_NAME.match(path.name)) and (path / MANIFEST_NAME).is_file()
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step under ``root``, ``None`` if there is none."""
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(
    root: str | os.PathLike[str],
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    *,
    config: pydantic.BaseModel | None = None,
    extra: Mapping[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Save model, optimizer and scheduler as the checkpoint of ``step``; collective on every rank.

    Every rank writes its shard with DCP into ``<root>/.step-<step>.tmp``; then rank 0 writes the
    manifest and renames the directory to ``<root>/step-<step>``. A checkpoint of the same step is
    replaced. Call it after ``optimizer.step()`` (``get_state_dict`` initializes the state of an
    optimizer that never stepped by stepping it with zero gradients).

    Args:
      root: the directory of the run's checkpoints, shared by every rank (created if missing).
      step: the number of training steps done; names the checkpoint.
      model: the model as trained (plain, DDP-wrapped or FSDP2-sharded).
      optimizer: its optimizer.
      scheduler: its ``LRShim``.
      config: the optimizer config (any pydantic model); recorded so that a resume with another
        config is refused with what differs.
      extra: JSON-serializable data to keep with the checkpoint (e.g. the data position).
      keep: keep only the newest ``keep`` complete checkpoints (``None``: keep all).

    Returns:
      The checkpoint's directory.

    Raises:
      CheckpointError: on every rank, when rank 0 could not complete the checkpoint.
    """
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be >= 1 or None, got {keep}")
    _refuse_zero(optimizer)
    try:
        json.dumps(dict(extra or {}))
    except (TypeError, ValueError) as error:
        raise TypeError(f"extra must be JSON-serializable: {error}") from error
    final = checkpoint_path(root, step)
    temporary = final.with_name(f".{final.name}.tmp")
    world_size = _world_size()

    def prepare() -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        for abandoned in final.parent.glob(".step-*.tmp"):  # left by a run killed while writing
            shutil.rmtree(abandoned, ignore_errors=True)
        temporary.mkdir()

    _on_rank_zero(prepare)
    model_state, optimizer_state = get_state_dict(model, _torch_optimizers(optimizer))
    groups = _group_structure(optimizer_state)
    shapes = _shapes(model_state)
    with _single_process_quiet():
        dcp.save(
            {"model": model_state, "optimizer": optimizer_state},
            checkpoint_id=temporary,
            no_dist=not _distributed(),
        )

    def commit() -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "step": step,
            "world_size": world_size,
            "files": _describe_files(temporary),
            "scheduler": scheduler.state_dict(),
            "config": None if config is None else config.model_dump(mode="json", exclude_none=True),
            "groups": groups,
            "resume": saved_records(optimizer_state["param_groups"]),
            "shapes": shapes,
            "extra": dict(extra or {}),
        }
        _write_manifest(temporary, manifest)
        _replace_directory(temporary, final)
        if keep is not None:
            for old in list_checkpoints(final.parent)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)

    _on_rank_zero(commit)
    return final


def verify_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that every file of a checkpoint is present with its recorded size and checksum.

    Returns:
      The checkpoint's manifest.

    Raises:
      CheckpointError: naming the checkpoint and what is wrong (no manifest: incomplete; a file
        missing, of another size (truncated), or with another checksum (corrupted)).
    """
    path = Path(path)
    manifest_file = path / MANIFEST_NAME
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path}: no such directory")
    if not manifest_file.is_file():
        raise CheckpointError(
            f"checkpoint {path}: no {MANIFEST_NAME}, so it is incomplete (its writer was interrupted); "
            "resume from an earlier checkpoint"
        )
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST_NAME} is unreadable ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise CheckpointError(
            f"checkpoint {path}: {MANIFEST_NAME} has format {found!r}, expected {MANIFEST_FORMAT}"
        )
    missing_keys = sorted(_MANIFEST_KEYS - set(manifest))
    if missing_keys:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST_NAME} lacks {', '.join(missing_keys)}")
    problems = []
    for name, recorded in sorted(manifest["files"].items()):
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
            continue
        size = file.stat().st_size
        if size != recorded["size"]:
            problems.append(f"{name} has {size} bytes, {recorded['size']} were written (truncated?)")
        elif _sha256(file) != recorded["sha256"]:
            problems.append(f"{name} does not match its SHA-256 checksum (corrupted)")
    if problems:
        raise CheckpointError(f"checkpoint {path} is damaged, nothing was loaded: " + "; ".join(problems))
    return manifest


def load_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    *,
    config: pydantic.BaseModel | None = None,
    reset_schedule: bool = False,
    schedule_step: int = 0,
    policy: ResumePolicy | None = None,
) -> CheckpointInfo:
    """Restore model, optimizer and scheduler from a checkpoint; collective on every rank.

    Everything is checked before anything is loaded: the files (sizes and checksums, by rank 0),
    the param groups (names, parameter names and shapes, and each group's config fingerprint, as
    recorded by the optimizer: see ``tml.optimizers.runtime.resume``), the model's tensors and the
    schedules; also the whole config, when given here and the checkpoint has no group records (an
    older checkpoint). On any mismatch every rank raises the same error and the model,
    optimizer and scheduler are untouched. The world size may differ from the one that saved.

    Args:
      path: a checkpoint directory (see :func:`latest_checkpoint`).
      model, optimizer, scheduler: built as for the run that saved (any world size, any wrapper).
      config: the optimizer config of this run; refused if it differs from the checkpoint's.
      reset_schedule: keep the model and optimizer state but not the schedule position: the
        schedules (and config keys in :data:`SCHEDULE_KEYS`) may then differ, and the scheduler is
        put at ``schedule_step``.
      schedule_step: with ``reset_schedule``, the step of the schedule to continue from (0:
        restart it); ignored otherwise.
      policy: ``"strict"`` refuses a checkpoint saved with other hyperparameters or schedules;
        ``"config"`` loads its state and applies this run's (reported once, a ``ResumeWarning``).
        ``None``: the optimizer config's ``resume``. Another parameter set, shape or algorithm
        class is refused under every policy.

    Returns:
      The checkpoint's step, world size and extra data.

    Raises:
      CheckpointError: the checkpoint is incomplete, damaged or does not fit.
    """
    if reset_schedule and schedule_step < 0:
        raise ValueError(f"schedule_step must be >= 0, got {schedule_step}")
    _refuse_zero(optimizer)
    path = Path(path)
    manifest, saved_keys = _broadcast_from_rank_zero(lambda: (verify_checkpoint(path), _saved_keys(path)))
    optimizers = _torch_optimizers(optimizer)
    schedule_before = scheduler.state_dict()  # an LRShim counting optimizer steps counts the next one
    initialized = _initialize_state(optimizers)

    def undo() -> None:
        scheduler.load_state_dict(schedule_before)
        _undo_initialization(initialized)

    chosen = policy or effective_policy(default_policy(optimizer))
    model_state, optimizer_state = get_state_dict(model, optimizers)
    # Under strict, a config given here is compared as a whole (its paths are the config's); the
    # groups' records are compared always (also without a config), for what the config lines miss.
    whole_config = config if chosen == "strict" and manifest.get("config") is not None else None
    differences = _differences(
        manifest, _group_structure(optimizer_state), _shapes(model_state), whole_config, reset_schedule
    ) + _state_missing_here(saved_keys, optimizer_state)
    differences += _record_differences(
        manifest.get("resume"), optimizer_state, chosen, reset_schedule, refused_only=whole_config is not None
    )
    try:  # the scheduler checks a state itself, before it changes anything
        with warnings.catch_warnings():  # what it applies is reported by the load below, once
            warnings.simplefilter("ignore", ResumeWarning)
            _restore_schedule(scheduler, manifest["scheduler"], reset_schedule, schedule_step, chosen)
    except ValueError as error:
        differences.append(f"scheduler: {error}")
    if differences:
        undo()
        raise CheckpointError(
            f"checkpoint {path} does not fit this run, nothing was loaded: "
            + "; ".join(differences)
            + (
                " (to keep model and optimizer but restart the schedule, pass reset_schedule=True)"
                if not reset_schedule and any(line.startswith("scheduler: ") for line in differences)
                else ""
            )
        )
    # DCP loads into these dicts in place (tensors copied into, other values replaced).
    try:
        with _single_process_quiet():
            dcp.load(
                {"model": model_state, "optimizer": optimizer_state},
                checkpoint_id=path,
                no_dist=not _distributed(),
            )
    except CheckpointException as error:
        undo()
        raise CheckpointError(f"checkpoint {path}: DCP could not load it: {error}") from error
    # Not strict: torch would refuse the parameters of a stateless child (SGD without momentum) of a
    # CombinedOptimizer for having no state. What strict checks was checked above: the model's tensors
    # (names and shapes), and optimizer state on both sides (DCP refuses template keys it lacks).
    with resume_policy(
        chosen, schedules=not reset_schedule
    ):  # the optimizers' own checks, under the same policy; one report
        set_state_dict(
            model,
            optimizers,
            model_state_dict=model_state,
            optim_state_dict=optimizer_state,
            options=StateDictOptions(strict=False),
        )
        # The optimizer's groups now hold the saved learning rates: write the schedule's again.
        _restore_schedule(scheduler, manifest["scheduler"], reset_schedule, schedule_step, chosen)
    return CheckpointInfo(path, int(manifest["step"]), int(manifest["world_size"]), manifest["extra"])


def _refuse_zero(optimizer: torch.optim.Optimizer) -> None:
    if isinstance(optimizer, ZeroRedundancyOptimizer):
        raise TypeError(
            "checkpoints of a ZeroRedundancyOptimizer (ZeRO-1) are not supported: get_state_dict cannot "
            "gather its sharded state; checkpoint DDP or FSDP2 runs, or consolidate_state_dict() and "
            "save on rank 0 yourself"
        )


def _restore_schedule(
    scheduler: LRShim, saved: dict[str, Any], reset_schedule: bool, step: int, policy: str
) -> None:
    """The saved position, or (``reset_schedule``) ``step`` of this scheduler's schedules."""
    if reset_schedule:
        scheduler.restart_from(saved, step)
    else:
        scheduler.load_state_dict(saved, policy=policy)


def _record_differences(
    saved: dict[str, Any] | None,
    optimizer_state: dict[str, Any],
    policy: str,
    reset_schedule: bool,
    *,
    refused_only: bool,
) -> list[str]:
    """What the optimizer's group records refuse (before DCP loads anything); empty if they fit.

    With ``refused_only``, changes of hyperparameters and schedules are left to the config's
    comparison (which names them by config path)."""
    current = saved_records(optimizer_state["param_groups"])
    if saved is None or current is None:
        return []
    comparison = compare_records(saved, current, ordered=False)
    if refused_only:
        comparison = dataclasses.replace(comparison, changed=[])
    elif reset_schedule:  # the schedules may differ: the scheduler restarts
        comparison = without_schedules(comparison)
    try:
        judge(comparison, policy, what="the optimizer state")
    except ResumeError as error:
        return [str(error)]
    return []


def _torch_optimizers(optimizer: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    """The torch optimizers whose state torch's ``get_state_dict`` / ``set_state_dict`` read and write:
    a ``CombinedOptimizer``'s children (its own state layout is keyed by group), else the optimizer."""
    if isinstance(optimizer, CombinedOptimizer):
        return list(optimizer.optimizers)
    return [optimizer]


@torch.no_grad()
def _initialize_state(
    optimizers: Sequence[torch.optim.Optimizer],
) -> list[tuple[torch.optim.Optimizer, dict[str, Any]]]:
    """Give every optimizer without state its state, so that DCP has tensors to load into.

    torch's ``get_state_dict`` does the same only when no parameter has a gradient; a
    ``FlatOptimizer``'s parameters always have one (a view into its buffer). One step with zero
    gradients at learning rate 0 creates the state and leaves the parameters as they are; the
    gradients and learning rates are put back.

    Returns:
      Each optimizer so initialized with its state before (empty), for :func:`_undo_initialization`.
    """
    initialized = []
    for optimizer in optimizers:
        before = optimizer.state_dict()  # a FlatOptimizer's ``state`` is empty outside its state_dict
        if before["state"]:
            continue
        params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        gradients = [(param.grad, None if param.grad is None else param.grad.clone()) for param in params]
        learning_rates = [group["lr"] for group in optimizer.param_groups]
        sparse = takes_sparse_gradients_only(type(optimizer))
        for param in params:
            param.grad = torch.zeros_like(param).to_sparse() if sparse else torch.zeros_like(param)
        for group in optimizer.param_groups:
            group["lr"] = torch.zeros_like(group["lr"]) if isinstance(group["lr"], torch.Tensor) else 0.0
        try:
            optimizer.step()
        finally:
            for group, learning_rate in zip(optimizer.param_groups, learning_rates, strict=True):
                group["lr"] = learning_rate
            for param, (gradient, values) in zip(params, gradients, strict=True):
                if gradient is not None and values is not None:
                    gradient.copy_(values)  # a flat buffer's view was rebound: refill it
                param.grad = gradient
        initialized.append((optimizer, before))
    return initialized


def _undo_initialization(initialized: list[tuple[torch.optim.Optimizer, dict[str, Any]]]) -> None:
    for optimizer, before in initialized:
        optimizer.load_state_dict(before)


def _saved_keys(path: Path) -> list[str]:
    """The (flattened) keys of everything DCP saved in a checkpoint, read from its ``.metadata``."""
    with _single_process_quiet():
        return sorted(dcp.FileSystemReader(path).read_metadata().state_dict_metadata)


def _state_missing_here(saved_keys: list[str], optimizer_state: dict[str, Any]) -> list[str]:
    """Optimizer state in the checkpoint that the template ``optimizer_state`` has no entry for.

    DCP loads the keys of the template only: state missing there would be silently left out.
    """
    here = {
        f"{_OPTIMIZER_STATE}{name}.{key}" for name, entry in optimizer_state["state"].items() for key in entry
    }
    missing = [
        key[len(_OPTIMIZER_STATE) :]
        for key in saved_keys
        if key.startswith(_OPTIMIZER_STATE) and not any(prefix in here for prefix in _prefixes(key))
    ]
    if not missing:
        return []
    return [
        "optimizer state in the checkpoint that this optimizer has no entry for (DCP would leave it "
        f"out): {', '.join(missing[:8])}" + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    ]


def _prefixes(key: str) -> Iterator[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c`` (a state entry may be nested below its key)."""
    parts = key.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


@contextlib.contextmanager
def _single_process_quiet() -> Iterator[None]:
    """Without a process group, DCP warns on every call that it assumes one process: intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.distributed is disabled", category=UserWarning)
        yield


# ---------------------------------------------------------------- comparison


def _differences(
    manifest: dict[str, Any],
    groups: list[dict[str, Any]],
    shapes: dict[str, list[int]],
    config: pydantic.BaseModel | None,
    reset_schedule: bool,
) -> list[str]:
    """How the checkpoint differs from this run's param groups, model tensors and config."""
    differences = []
    if manifest["groups"] != groups:
        differences.append(
            f"param groups {_describe_groups(manifest['groups'])} in the checkpoint, "
            f"{_describe_groups(groups)} here"
        )
    differences += [
        f"tensor {name!r}: shape {manifest['shapes'][name]} in the checkpoint, {shape} here"
        for name, shape in shapes.items()
        if name in manifest["shapes"] and manifest["shapes"][name] != shape
    ]
    missing = sorted(set(manifest["shapes"]) ^ set(shapes))
    if missing:
        differences.append(
            f"model tensors only in the checkpoint or only here: {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    saved_config = manifest.get("config")
    if config is not None and saved_config is not None:
        mine = config.model_dump(mode="json", exclude_none=True)
        ignore = (SCHEDULE_KEYS if reset_schedule else frozenset()) | {"resume"}
        differences += [f"config {line}" for line in config_differences(saved_config, mine, ignore=ignore)]
    return differences


def config_differences(
    saved: Any, current: Any, *, ignore: frozenset[str] = frozenset(), path: str = ""
) -> list[str]:
    """Where two JSON-like configs differ, one line per leaf: ``adam.eps: 1e-07 in the checkpoint, …``.

    Keys in ``ignore`` are skipped at any depth.

    Examples:
      >>> config_differences({"adam": {"lr": 0.1, "eps": 1e-7}}, {"adam": {"lr": 0.2, "eps": 1e-8}},
      ...                    ignore=frozenset({"lr"}))
      ['adam.eps: 1e-07 in the checkpoint, 1e-08 here']
    """
    return json_differences(saved, current, ignore=ignore, path=path)


def _group_structure(optimizer_state: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": group.get("name"), "params": [str(name) for name in group["params"]]}
        for group in optimizer_state["param_groups"]
    ]


def _shapes(model_state: dict[str, Any]) -> dict[str, list[int]]:
    """The global shape of every tensor of the model's state (a DTensor's ``shape`` is global)."""
    return {name: list(value.shape) for name, value in model_state.items() if isinstance(value, torch.Tensor)}


def _describe_groups(groups: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(f"{group['name']!r} ({len(group['params'])} params)" for group in groups) + "]"


# ---------------------------------------------------------------- files


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _describe_files(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        file.name: {"size": file.stat().st_size, "sha256": _sha256(file)}
        for file in sorted(directory.iterdir())
        if file.is_file() and file.name != MANIFEST_NAME
    }


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (temporary file, fsync, rename): the last file of a checkpoint."""
    temporary = directory / f".{MANIFEST_NAME}.tmp"
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=1, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, directory / MANIFEST_NAME)
    _fsync_directory(directory)


def _replace_directory(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` is moved aside first, then removed."""
    aside = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(target, aside)
    os.rename(source, target)
    _fsync_directory(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------- ranks


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    return dist.get_rank() if _distributed() else 0


def _world_size() -> int:
    return dist.get_world_size() if _distributed() else 1


def _broadcast_from_rank_zero(compute: Callable[[], T]) -> T:
    """Run ``compute`` on rank 0 and give its result, or raise its ``CheckpointError``, on every rank.

    A failure on rank 0 alone would otherwise leave the other ranks waiting in the next collective.
    """
    outcome: list[Any] = [None]
    failure: Exception | None = None
    if _rank() == 0:
        try:
            outcome = [("ok", compute())]
        except Exception as error:  # any failure: the other ranks must hear of it
            failure = error
            message = str(error) if isinstance(error, CheckpointError) else f"{type(error).__name__}: {error}"
            outcome = [("error", message)]
    if _distributed():
        dist.broadcast_object_list(outcome, src=0)
    status, value = outcome[0]
    if status == "error":
        raise CheckpointError(value) from failure
    return value


def _on_rank_zero(action: Callable[[], None]) -> None:
    """Run ``action`` on rank 0, then let every rank go on (or raise) together."""
    _broadcast_from_rank_zero(action)


__all__ = [
    "MANIFEST_NAME",
    "SCHEDULE_KEYS",
    "CheckpointError",
    "CheckpointInfo",
    "checkpoint_path",
    "config_differences",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "verify_checkpoint",
]
