"""The table demo's job: the torchrec model sharded by ``DistributedModelParallel``, and its checkpoints.

``tml-optim train`` trains this job when the config has ``embedding_tables`` (the dense demo model
has no torchrec table for them; this model's tables cannot be trained without them). It is built
with the two calls of :mod:`tml.optimizers.tables`: ``apply_table_rules`` on the unsharded model,
``DistributedModelParallel`` with torchrec's default planner (the 10-row ``country`` table goes
data-parallel: its rule's algorithm trains it as ``<group>.dense``), then ``build_optimizer``.

Its checkpoints are the dense demo's (``<dir>/step-<step>/``, written under a temporary name and
renamed once complete, ``manifest.json`` last with every file's size and checksum, the run's
``extra``) with the tensors written by :func:`~tml.optimizers.tables.checkpoint.save_table_checkpoint`
(the sharded tables, the table groups' fused state) and read back by
:func:`~tml.optimizers.tables.checkpoint.load_table_checkpoint` under the resume contract. The
manifest's ``model`` says which demo model wrote it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from tml.optimizers import apply_table_rules, build_optimizer
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.demo.table_model import TableModelShape, TableRankingModel
from tml.optimizers.distributed import checkpoint as files
from tml.optimizers.distributed.checkpoint import MANIFEST_FORMAT, checkpoint_path, list_checkpoints
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.tables.checkpoint import group_records, load_table_checkpoint, save_table_checkpoint

TABLE_MODEL = "tables"
"""The manifest's ``model`` of a checkpoint of the table model (the dense demo's has none)."""

_QUIET_LOGGERS = ("", "torchrec", "torch.fx._symbolic_trace", "torch.distributed")


@contextlib.contextmanager
def quiet_torchrec() -> Iterator[None]:
    """torchrec's informational warnings (planner estimates, a data-parallel table's sharding spec)
    kept out of the command's output for the duration of the block; the levels are restored."""
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="torchrec")
            warnings.filterwarnings("ignore", module="fbgemm_gpu")
            # torch's notice that FBGEMM registers no autograd kernel for the dense (data-parallel)
            # table's lookup, once per process; torchrec's own DenseTableBatchedEmbeddingBagsCodegen
            # does its backward (the table tests check those tables' updates).
            warnings.filterwarnings("ignore", message="fbgemm::dense_embedding_codegen_lookup_function")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def start_single_rank_group() -> bool:
    """A gloo process group of one rank (an in-memory store), which ``DistributedModelParallel``
    needs even in one process; True if this call started it."""
    if dist.is_initialized():
        return False
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    return True


def build_table_model(
    config: OptimizerConfig, shape: TableModelShape | None = None
) -> tuple[torch.nn.Module, torch.optim.Optimizer, LRShim]:
    """The table model with the config's table rules applied, sharded on the process group's ranks,
    and its optimizer and scheduler; the weights come from torch's RNG (seed it first).

    Raises:
      ValueError: the config's table rules do not fit the model's tables (``user_id``, ``item_id``,
        ``country``), or ``build_optimizer`` refuses what torchrec built.
    """
    from torchrec.distributed.model_parallel import DistributedModelParallel

    model = TableRankingModel(shape or TableModelShape())
    apply_table_rules(model, config)
    sharded = DistributedModelParallel(model, device=torch.device("cpu"))
    optimizer, scheduler = build_optimizer(sharded, config)
    return sharded, optimizer, scheduler


def save_tables(
    directory: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    *,
    config: OptimizerConfig,
    extra: dict[str, Any],
    world_size: int,
) -> Path:
    """Write the checkpoint of ``step`` (the newest only is kept); collective on every rank.

    Every rank writes its shards into ``<dir>/.step-<step>.tmp``; rank 0 then writes the manifest and
    renames the directory to ``<dir>/step-<step>``.
    """
    final = checkpoint_path(directory, step)
    temporary = final.with_name(f".{final.name}.tmp")

    def prepare() -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        for abandoned in final.parent.glob(".step-*.tmp"):  # left by a run killed while writing
            shutil.rmtree(abandoned, ignore_errors=True)
        temporary.mkdir()

    files._on_rank_zero(prepare)
    save_table_checkpoint(temporary, model, optimizer, scheduler)  # ends with a barrier
    records = group_records(optimizer)

    def commit() -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "model": TABLE_MODEL,
            "step": step,
            "world_size": world_size,
            "files": files._describe_files(temporary),
            "scheduler": scheduler.state_dict(),
            "config": config.model_dump(mode="json", exclude_none=True),
            "groups": [{"name": name, "params": record["param_names"]} for name, record in records.items()],
            "shapes": {},
            "extra": extra,
        }
        files._write_manifest(temporary, manifest)  # last: the checkpoint is complete
        files._replace_directory(temporary, final)
        for old in list_checkpoints(final.parent)[:-1]:
            shutil.rmtree(old, ignore_errors=True)

    files._on_rank_zero(commit)
    return final


def load_tables(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRShim, *, policy: str
) -> None:
    """Load a checkpoint of :func:`save_tables` in place; collective.

    Raises:
      ResumeError: the checkpoint's groups do not fit under ``policy`` (nothing is loaded then).
    """
    load_table_checkpoint(path, model, optimizer, scheduler, policy=policy)


__all__ = [
    "TABLE_MODEL",
    "build_table_model",
    "load_tables",
    "quiet_torchrec",
    "save_tables",
    "start_single_rank_group",
]
