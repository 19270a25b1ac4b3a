"""``LRShim``: the torch ``LRScheduler`` that writes closed-form schedules into param groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from tml.optimizers.schedules import LearningRate, compile_schedule

_STATE_FORMAT = 1


def count_param_groups(optimizer: torch.optim.Optimizer) -> int:
    """The number of param groups of an optimizer, or of all optimizers of a torchrec-style container."""
    children = getattr(optimizer, "_optims", None)
    if children is None:
        return len(optimizer.param_groups)
    return sum(len((child[1] if isinstance(child, tuple) else child).param_groups) for child in children)


class LRShim(LRScheduler):
    """A learning-rate scheduler with one closed-form schedule per param group.

    Right after construction, group ``i``'s learning rate is ``compute_lr(schedule_i, 0)``; after
    ``k`` calls of :meth:`step` it is ``compute_lr(schedule_i, k)``. The value is a pure function of
    the step, so it is exact at any step and after any resume. A group whose ``lr`` is a tensor is
    updated in place (``fill_``), a float ``lr`` stays a float.

    Args:
      optimizer: any ``torch.optim.Optimizer`` (also a torchrec ``CombinedOptimizer``).
      lr_dict: group name -> schedule, in the order of ``optimizer.param_groups``.
      last_epoch: the index of the last step taken, ``-1`` for a new run (torch's convention).

    Raises:
      ValueError: ``lr_dict`` does not have one schedule per param group.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr_dict: Mapping[str, LearningRate],
        last_epoch: int = -1,
    ) -> None:
        group_count = count_param_groups(optimizer)
        if group_count != len(lr_dict):
            raise ValueError(
                f"the optimizer has {group_count} param groups but lr_dict has {len(lr_dict)} "
                f"schedules (groups named: {', '.join(lr_dict) or 'none'}); give one per group"
            )
        self.lr_dict = dict(lr_dict)
        self.group_names = list(self.lr_dict)
        self._lr_functions = [compile_schedule(config) for config in self.lr_dict.values()]
        self._last_lr: list[float] = []  # type: ignore[assignment]
        super().__init__(optimizer, last_epoch)

    def step(self, epoch: int | None = None) -> None:
        """Advance the schedule by one step and write every group's learning rate."""
        if epoch is not None:
            raise TypeError(
                "LRShim.step() takes no epoch: the position is the number of step() calls "
                "(restore a position with load_state_dict)"
            )
        self._step_count += 1
        self.last_epoch += 1
        self._write_lrs()

    def _write_lrs(self) -> None:
        step = self.last_epoch
        values = [lr_at(step) for lr_at in self._lr_functions]
        for group, value in zip(self.optimizer.param_groups, values, strict=True):
            current = group["lr"]
            if isinstance(current, torch.Tensor):
                current.fill_(value)
            else:
                group["lr"] = value
        self._last_lr = values

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The learning rate of every group at the current step (closed form, no side effect)."""
        return [lr_at(self.last_epoch) for lr_at in self._lr_functions]

    _get_closed_form_lr = get_lr

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        """The learning rates last written, one float per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The step plus what identifies the schedules: plain data, loadable with ``weights_only``."""
        return {
            "format": _STATE_FORMAT,
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "group_names": list(self.group_names),
            "schedules": self._schedule_records(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and write its learning rates into the groups.

        Raises:
          ValueError: the state was saved by a scheduler with other groups or other schedules.
        """
        if state_dict.get("format") != _STATE_FORMAT:
            raise ValueError(
                f"not an LRShim state (format {state_dict.get('format')!r}, expected {_STATE_FORMAT})"
            )
        differences = self._differences(state_dict["group_names"], state_dict["schedules"])
        if differences:
            raise ValueError(
                "the checkpoint's schedules differ from this scheduler's: " + "; ".join(differences)
            )
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["step_count"])
        self._write_lrs()

    def _differences(self, names: list[str], schedules: list[dict[str, Any]]) -> list[str]:
        if names != self.group_names:
            return [f"groups {names} in the checkpoint, {self.group_names} here"]
        return [
            f"group {name!r}: {saved} in the checkpoint, {mine} here"
            for name, saved, mine in zip(names, schedules, self._schedule_records(), strict=True)
            if saved != mine
        ]

    def _schedule_records(self) -> list[dict[str, Any]]:
        # Unset keys are left out, so adding a schedule kind to LearningRate changes no record.
        return [config.model_dump(mode="json", exclude_none=True) for config in self.lr_dict.values()]
