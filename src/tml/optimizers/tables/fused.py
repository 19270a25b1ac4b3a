"""``FusedTableOptimizer``: torchrec's fused table optimizer, with one param group per table group.

``DistributedModelParallel.fused_optimizer`` holds one ``EmbeddingFusedOptimizer`` per FBGEMM kernel,
each with one unnamed param group; a table group may span several kernels (one per sharding type,
pooling, dimension bucket), and on a rank that holds none of its tables it has none. This optimizer
presents one param group per table group, named after it, on every rank. A write of a group's
``lr`` (``LRShim`` writes it after every step) hands it to the group's kernels at once, and so do
``step()`` and ``zero_grad()``: the update of a backward pass uses the LR the scheduler wrote last,
whatever the order of the loop's calls.

Its ``state_dict()`` is torch's format (``state`` by index, ``param_groups``) with each table's
fused state (e.g. ``user.momentum1``, a ``ShardedTensor``) as the state of the table's entry, and each
group's resume record; ``load_state_dict`` copies the saved state into the kernels' tensors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from tml.optimizers.runtime.resume import (
    RESUME_KEY,
    compare_records,
    effective_policy,
    judge,
    report_changes,
    schedules_compared,
    without_schedules,
)
from tml.optimizers.tables.assign import TableGroup


class FusedTable:
    """One table's local part in one kernel: its parameter name, the kernel's optimizer, its key there."""

    def __init__(self, name: str, kernel: Any, key: str, shape: Sequence[int]) -> None:
        self.name = name
        self.kernel = kernel
        self.key = key
        self.shape = list(shape)
        """The table's (global) shape."""

    @property
    def tensor(self) -> Any:
        return self.kernel.params[self.key]


class TableGroupDict(dict[str, Any]):
    """A table group's param-group dict: writing its ``lr`` (as ``LRShim`` does) hands the new LR to
    the group's kernels at once, so the next backward pass uses it whatever the loop's order of
    ``zero_grad()``, ``step()`` and ``scheduler.step()``."""

    kernels: tuple[Any, ...] = ()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == "lr":
            push_learning_rate(self.kernels, value)


def push_learning_rate(kernels: Sequence[Any], lr: Any) -> None:
    """Write ``lr`` into the param group of each kernel and have the kernel take it (torchrec's
    ``EmbeddingFusedOptimizer.zero_grad`` hands its group's LR to FBGEMM and does nothing else)."""
    value = float(lr)
    for kernel in kernels:
        kernel.param_groups[0]["lr"] = value
        kernel.zero_grad()


def table_fingerprint(group: TableGroup) -> dict[str, Any]:
    """What the config asks of one table group (compared on every load)."""
    plateau = group.reduce_on_plateau
    return {
        "algorithm": group.algorithm.key,
        "torch_class": "fbgemm." + group.algorithm.key,
        "hyperparameters": group.algorithm.hyperparameters(),
        "schedule": group.schedule.model_dump(mode="json", exclude_none=True),
        "lr_multiplier": 1.0,
        # recorded only where set, as for dense groups, so the records of other table groups are unchanged
        **({} if plateau is None else {"reduce_on_plateau": plateau.model_dump(mode="json")}),
    }


class FusedTableOptimizer(torch.optim.Optimizer):
    """The fused kernels of the table groups as a ``torch.optim.Optimizer`` with named groups.

    Args:
      groups: each table group with its local tables (possibly none on this rank).
      lrs: each group's initial learning rate.
      resume_policy: the config's ``resume``.
    """

    def __init__(
        self,
        groups: Sequence[tuple[TableGroup, Sequence[FusedTable]]],
        lrs: Sequence[float],
        resume_policy: str = "strict",
    ) -> None:
        param_groups = []
        members: list[list[FusedTable]] = []
        for (group, tables), lr in zip(groups, lrs, strict=True):
            group_dict = TableGroupDict(
                name=group.name,
                params=[table.tensor for table in tables],
                algorithm=group.algorithm.key,
                **group.algorithm.hyperparameters(),
            )
            group_dict.kernels = tuple({id(table.kernel): table.kernel for table in tables}.values())
            group_dict["lr"] = float(lr)
            param_groups.append(group_dict)
            members.append(list(tables))
        kernels: dict[int, Any] = {}
        for tables in members:
            for table in tables:
                kernels.setdefault(id(table.kernel), table.kernel)
        super().__setstate__(
            {
                "defaults": {},
                "param_groups": param_groups,
                "_members": members,
                "_kernels": list(kernels.values()),
                "_records": [self._record(group, tables) for (group, tables) in groups],
                "_resume_policy": resume_policy,
            }
        )

    _members: list[list[FusedTable]]
    _kernels: list[Any]
    _records: list[dict[str, Any]]
    _resume_policy: str

    @staticmethod
    def _record(group: TableGroup, tables: Sequence[FusedTable]) -> dict[str, Any]:
        """The group's record: every table of the group (on every rank, whichever it holds), with its
        shape, and the fingerprint."""
        return {
            "param_names": [table.parameter_name for table in group.tables],
            "shapes": [[table.num_embeddings, table.embedding_dim] for table in group.tables],
            "fingerprint": table_fingerprint(group),
        }

    def records(self) -> dict[str, dict[str, Any]]:
        """Group name -> record (the same on every rank)."""
        return {group["name"]: record for group, record in zip(self.param_groups, self._records, strict=True)}

    def tables_of(self, name: str) -> list[FusedTable]:
        """The local tables of group ``name``."""
        (index,) = [i for i, group in enumerate(self.param_groups) if group["name"] == name]
        return list(self._members[index])

    @property
    def state(self) -> defaultdict[Any, Any]:  # type: ignore[override]
        """Every table's fused state (each kernel's live state), keyed by the table's tensor."""
        merged: defaultdict[Any, Any] = defaultdict(dict)
        for kernel in self._kernels:
            merged.update(kernel.state)
        return merged

    def push_learning_rates(self) -> None:
        """Hand every group's ``lr`` to its kernels (also done on every write of a group's ``lr``)."""
        for group in self.param_groups:
            push_learning_rate(getattr(group, "kernels", ()), group["lr"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """The kernels update in the backward pass; this hands them the groups' current LRs again."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.push_learning_rates()
        for kernel in self._kernels:
            kernel.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The kernels keep no gradient; this hands them the groups' current LRs again."""
        self.push_learning_rates()
        for kernel in self._kernels:
            kernel.zero_grad()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused: the table groups come from the config's embedding_tables rules."""
        raise TypeError("a FusedTableOptimizer's groups come from the config's embedding_tables rules")

    def state_dict(self) -> dict[str, Any]:
        """torch's format: ``state`` by index (each table's fused state), ``param_groups`` with records."""
        state: dict[int, Any] = {}
        saved_groups = []
        index = 0
        for group, tables, record in zip(self.param_groups, self._members, self._records, strict=True):
            ids = []
            for table in tables:
                if table.tensor in table.kernel.state:
                    state[index] = dict(table.kernel.state[table.tensor])
                ids.append(index)
                index += 1
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = ids
            saved[RESUME_KEY] = json.dumps(record)
            saved_groups.append(saved)
        return {"state": state, "param_groups": saved_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Copy a ``state_dict()`` of the same table groups into the kernels' state tensors.

        Raises:
          ResumeError: the groups, tables or shapes differ, or (under ``strict``) the hyperparameters
            or schedules.
        """
        saved_groups = state_dict["param_groups"]
        saved_records = {
            group["name"]: json.loads(group[RESUME_KEY]) for group in saved_groups if RESUME_KEY in group
        }
        current = {
            group["name"]: record for group, record in zip(self.param_groups, self._records, strict=True)
        }
        comparison = compare_records(saved_records, current)
        if not schedules_compared():
            comparison = without_schedules(comparison)
        changes = judge(comparison, effective_policy(self._resume_policy))
        per_kernel: dict[int, dict[str, Any]] = defaultdict(dict)
        for saved, tables in zip(saved_groups, self._members, strict=True):
            for index, table in zip(saved["params"], tables, strict=True):
                entry = state_dict["state"].get(index)
                if entry is not None:
                    per_kernel[id(table.kernel)][table.key] = entry
        for kernel in self._kernels:
            kernel.load_state_dict({"state": per_kernel.get(id(kernel), {})})
        report_changes(changes)

    def __repr__(self) -> str:
        groups = ", ".join(f"{group['name']}: {group['algorithm']}" for group in self.param_groups)
        return f"FusedTableOptimizer({groups})"


__all__ = ["FusedTable", "FusedTableOptimizer", "TableGroupDict", "push_learning_rate", "table_fingerprint"]
