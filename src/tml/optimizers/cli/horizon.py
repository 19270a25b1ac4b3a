"""``show --resume-from CKPT``: each group's learning rate at the checkpoint's step, before and after.

Before: the schedule the checkpoint was trained with (its scheduler's state records every group's
resolved schedule and multiplier). After: this config's, resolved with this run's ``total_steps``.
A resume under the ``config`` policy continues from the saved step on the new curve, so a jump
between the two columns is the jump training would make.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from tml.optimizers.cli.errors import UsageError
from tml.optimizers.cli.groups import group_multipliers, group_schedules
from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.distributed.checkpoint import CheckpointError, latest_checkpoint, verify_checkpoint
from tml.optimizers.schedules import compute_lr


@dataclasses.dataclass(frozen=True)
class ResumeRow:
    """One group's learning rate at the resume step."""

    group: str
    before: float | None
    """Under the checkpoint's schedule; ``None``: the checkpoint has no group of this name."""
    after: float
    """Under this config's schedule."""

    @property
    def change(self) -> str:
        """``same``, ``new group``, or the factor from before to after (``×2``, ``×0.5``)."""
        if self.before is None:
            return "new group"
        if self.before == self.after:
            return "same"
        if self.before == 0.0:
            return "from 0"
        return f"×{self.after / self.before:.4g}"


def read_scheduler_state(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint at ``path`` (a ``step-*`` directory, or a directory of them: the latest) and
    its scheduler's state.

    Raises:
      UsageError: no checkpoint there, or a damaged one.
    """
    path = Path(path)
    chosen = path if (path / "manifest.json").is_file() else latest_checkpoint(path)
    if chosen is None:
        raise UsageError(f"--resume-from {path}: no checkpoint (a step-* directory with a manifest.json)")
    try:
        manifest = verify_checkpoint(chosen)
    except CheckpointError as error:
        raise UsageError(f"--resume-from: {error}") from None
    return chosen, manifest["scheduler"]


def resume_rows(config: OptimizerConfig, scheduler_state: dict[str, Any]) -> tuple[int, list[ResumeRow]]:
    """The resume step (the saved scheduler position) and each config group's LR there, before and
    after (the config's groups, as ``show`` lists them)."""
    step = int(scheduler_state["last_epoch"])
    saved = dict(zip(scheduler_state["group_names"], scheduler_state["schedules"], strict=True))
    multipliers = group_multipliers(config)
    rows = []
    for name, schedule in group_schedules(config).items():
        after = multipliers.get(name, 1.0) * compute_lr(schedule, step)
        record = saved.get(name)
        before = None
        if record is not None:
            record = dict(record)
            multiplier = float(record.pop("lr_multiplier", 1.0))
            before = multiplier * compute_lr(LearningRate.model_validate(record), step)
        rows.append(ResumeRow(name, before, after))
    return step, rows


def is_jump(row: ResumeRow) -> bool:
    """Whether the LR changes at the resume step (beyond float rounding)."""
    return row.before is not None and not math.isclose(row.before, row.after, rel_tol=1e-12, abs_tol=0.0)


__all__ = ["ResumeRow", "is_jump", "read_scheduler_state", "resume_rows"]
