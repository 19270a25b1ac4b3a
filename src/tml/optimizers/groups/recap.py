"""The Heavy Ranker's (recap's) optimizer format: a schedule per task tower and one for the backbone.

recap (``projects/home/recap/optimizer`` in the original) gave each task tower its own Adam and
schedule: a tower's parameters are those whose name contains ``.<task>.``, with every ``.`` of the
task name replaced by ``__`` (``recap.engagement.is_replied`` → ``.recap__engagement__is_replied.``,
the module name recap's model gives the tower); every other parameter is the backbone. A parameter
that two towers claim is an error. ``OptimizerConfig`` reads this format as it stands and turns it
into param groups named after the tasks, plus ``backbone`` (or ``single_task`` for
``single_task_learning_rate``), as recap named them.
"""

from __future__ import annotations

import re

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.optimizers.schedules import LearningRate

BACKBONE_GROUP = "backbone"
"""The group of the parameters no tower claims (multi-task form)."""
SINGLE_TASK_GROUP = "single_task"
"""The only group of the single-task form."""


def sanitize(task: str) -> str:
    """A task's module name in recap's model: every ``.`` replaced by ``__``.

    Examples:
      >>> sanitize("recap.engagement.is_replied")
      'recap__engagement__is_replied'
    """
    return task.replace(".", "__")


def tower_pattern(task: str) -> str:
    """The param-group pattern of a task's tower: names containing ``.<sanitized task>.``.

    Examples:
      >>> tower_pattern("recap.engagement.is_replied")
      're:\\\\.recap__engagement__is_replied\\\\.'
    """
    return "re:" + re.escape(f".{sanitize(task)}.")


class MultiTaskLearningRates(StrictConfig):
    """recap's per-tower schedules: one ``LearningRate`` per task, one for the backbone."""

    tower_learning_rates: dict[str, LearningRate] = pydantic.Field(
        description="Task name -> the schedule of that task's tower (the parameters whose name "
        "contains '.<task with . replaced by __>.'), in the order of the param groups."
    )
    backbone_learning_rate: LearningRate | None = pydantic.Field(
        None,
        description="The schedule of every parameter no tower claims (the group 'backbone'); may be "
        "left out only when the algorithm has a numeric lr, which is then used.",
    )

    @pydantic.field_validator("tower_learning_rates")
    @classmethod
    def _towers_named(cls, towers: dict[str, LearningRate]) -> dict[str, LearningRate]:
        if not towers:
            raise ValueError("needs at least one tower, got none")
        for task in towers:
            if not task.strip():
                raise ValueError(f"a task name must not be empty, got {task!r}")
            if task == BACKBONE_GROUP:
                raise ValueError(f"a task cannot be named {BACKBONE_GROUP!r}: that is the backbone's group")
        sanitized: dict[str, str] = {}
        for task in towers:
            other = sanitized.setdefault(sanitize(task), task)
            if other != task:
                raise ValueError(f"tasks {other!r} and {task!r} have the same module name {sanitize(task)!r}")
        return towers
