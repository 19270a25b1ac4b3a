"""The learning-rate schedule of every param group a config defines, without building a model.

This is the one place the command knows how a config maps to param groups: ``show``, ``plot``,
``validate`` and the training job's progress display all go through :func:`group_schedules`.
"""

from __future__ import annotations

from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.groups.rules import DEFAULT_GROUP


def group_schedules(config: OptimizerConfig) -> dict[str, LearningRate]:
    """Each param group's name and schedule, in param-group order, from the config alone.

    The groups are the config's rules in order (``param_groups``, or recap's task towers), then the
    group of the parameters no rule claims. Companion groups that ``build_optimizer`` derives from a
    model (``<group>.no_weight_decay``, layer-decay groups) share their group's schedule and are not
    listed. A group's ``lr_multiplier`` is not part of its schedule: see :func:`group_multipliers`.

    Examples:
      >>> from tml.optimizers.config import SgdConfig
      >>> group_schedules(OptimizerConfig(sgd=SgdConfig(lr=0.1)))
      {'default': LearningRate(constant=0.1, ...)}
    """
    return {spec.name: spec.schedule for spec in config.group_specs()}


def group_multipliers(config: OptimizerConfig) -> dict[str, float]:
    """Each param group's ``lr_multiplier``: its learning rate is the multiplier times its schedule."""
    return {spec.name: spec.lr_multiplier for spec in config.group_specs()}


__all__ = ["DEFAULT_GROUP", "group_multipliers", "group_schedules"]
