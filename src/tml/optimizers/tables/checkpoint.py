"""DCP checkpoints of a sharded torchrec model and its optimizer, keyed by group name.

``save_table_checkpoint`` writes, with ``torch.distributed.checkpoint`` (every rank its shards):

- ``model``: the ``DistributedModelParallel``'s ``state_dict()`` (``ShardedTensor`` tables);
- ``optimizer.<group>.<parameter name>.<state key>``: every group's per-parameter state, a dense
  group's by parameter name, a table group's by table (its fused state: row-wise Adagrad's
  ``<table>.momentum1``, a ``ShardedTensor``);

and rank 0 writes ``tables.json``: the optimizer's group records (what the config asked of every
group, as the resume contract compares them) and the scheduler's state. ``load_table_checkpoint``
compares the records under the resume policy before anything is read (a different group, table,
shape or algorithm is refused; other hyperparameters or schedules are refused under ``strict`` and
reported under ``config``), then DCP loads the tensors in place, and the scheduler continues where
it was: training resumes bit-identically. Checkpoints are written and read at the same world size
and sharding plan (the shards of a table are where the plan put them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.flat import FlatOptimizer
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.resume import (
    compare_records,
    contracts_of,
    effective_policy,
    judge,
    report_changes,
    resume_policy,
)
from tml.optimizers.tables.fused import FusedTableOptimizer

RECORDS_NAME = "tables.json"
_FORMAT = "tml.tables.checkpoint/1"


def _children(optimizer: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    return list(optimizer.optimizers) if isinstance(optimizer, CombinedOptimizer) else [optimizer]


def group_records(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Every group's record (group name -> record), in the optimizer's group order."""
    records: dict[str, Any] = {}
    for child in _children(optimizer):
        if isinstance(child, FusedTableOptimizer):
            records.update(child.records())
        else:
            for contract in contracts_of(child):
                records.update(contract.records)
    return {group["name"]: records[group["name"]] for group in optimizer.param_groups}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's per-parameter state, by group name then parameter name (the live tensors);
    groups and parameters without state left out.

    Raises:
      ValueError: a group is flat (``flatten: true``): its state lives in flat buffers, which this
        checkpoint does not take yet.
    """
    state: dict[str, Any] = {}
    for child in _children(optimizer):
        if isinstance(child, FlatOptimizer):
            names = ", ".join(repr(group["name"]) for group in child.param_groups)
            raise ValueError(
                f"table checkpoints do not take flat groups ({names}: flatten true); set flatten: false"
            )
        if isinstance(child, FusedTableOptimizer):
            for group in child.param_groups:
                state[group["name"]] = {
                    table.name: dict(table.kernel.state.get(table.tensor, {}))
                    for table in child.tables_of(group["name"])
                }
            continue
        records = {
            name: record for contract in contracts_of(child) for name, record in contract.records.items()
        }
        for group in child.param_groups:
            names = records[group["name"]]["param_names"]
            state[group["name"]] = {
                name: dict(child.state[param])
                for name, param in zip(names, group["params"], strict=True)
                if param in child.state
            }
    # DCP keeps no empty container: a group or parameter without state (SGD) is left out.
    return {
        group: {name: entries for name, entries in params.items() if entries}
        for group, params in state.items()
        if any(params.values())
    }


@torch.no_grad()
def _initialize_dense_state(optimizer: torch.optim.Optimizer) -> None:
    """Give every dense child without state its state (one step at LR 0 with zero gradients), so that
    DCP has tensors to load into; the parameters and gradients are left as they were."""
    for child in _children(optimizer):
        if isinstance(child, FusedTableOptimizer) or child.state:
            continue
        params = [param for group in child.param_groups for param in group["params"]]
        gradients = [param.grad for param in params]
        learning_rates = [group["lr"] for group in child.param_groups]
        for param in params:
            param.grad = torch.zeros_like(param)
        for group in child.param_groups:
            group["lr"] = 0.0
        try:
            child.step()
        finally:
            for group, learning_rate in zip(child.param_groups, learning_rates, strict=True):
                group["lr"] = learning_rate
            for param, gradient in zip(params, gradients, strict=True):
                param.grad = gradient


def save_table_checkpoint(
    path: str | os.PathLike[str], model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRShim
) -> Path:
    """Save the sharded model, its optimizer and scheduler into ``path``; collective on every rank.

    Returns:
      ``path``.
    """
    directory = Path(path)
    state = {"model": model.state_dict(), "optimizer": optimizer_tensors(optimizer)}
    dcp.save(state, checkpoint_id=directory, no_dist=not dist.is_initialized())
    if not dist.is_initialized() or dist.get_rank() == 0:
        manifest = {
            "format": _FORMAT,
            "records": group_records(optimizer),
            "scheduler": scheduler.state_dict(),
        }
        (directory / RECORDS_NAME).write_text(json.dumps(manifest, sort_keys=True))
    if dist.is_initialized():
        dist.barrier()
    return directory


def load_table_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRShim,
    *,
    policy: str | None = None,
) -> None:
    """Load a ``save_table_checkpoint`` into a model, optimizer and scheduler built from the config.

    Args:
      policy: the resume policy (``strict`` / ``config``); default: the config's ``resume``.

    Raises:
      ResumeError: the checkpoint's groups do not fit (see the module's documentation); nothing is
        loaded then.
    """
    directory = Path(path)
    manifest = json.loads((directory / RECORDS_NAME).read_text())
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"{directory} is not a table checkpoint (format {manifest.get('format')!r})")
    chosen = policy or effective_policy(scheduler.resume_policy)
    changes = judge(compare_records(manifest["records"], group_records(optimizer), ordered=False), chosen)
    _initialize_dense_state(optimizer)
    state = {"model": model.state_dict(), "optimizer": optimizer_tensors(optimizer)}
    dcp.load(state, checkpoint_id=directory, no_dist=not dist.is_initialized())
    model.load_state_dict(state["model"])
    with resume_policy(chosen):
        scheduler.load_state_dict(manifest["scheduler"], policy=chosen)
        report_changes(changes)


__all__ = ["group_records", "load_table_checkpoint", "optimizer_tensors", "save_table_checkpoint"]
