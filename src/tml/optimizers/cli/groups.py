"""The learning-rate schedule of every param group a config defines, without building a model.

This is the one place the command knows how a config maps to param groups: ``show``, ``plot``,
``validate`` and the training job's progress display all go through :func:`group_schedules`.
"""

from __future__ import annotations

from tml.optimizers.config import LearningRate, OptimizerConfig

DEFAULT_GROUP = "default"
"""The group of every parameter that no rule claims (the only group before param groups exist)."""


def group_schedules(config: OptimizerConfig) -> dict[str, LearningRate]:
    """Each param group's name and schedule, in param-group order.

    Today every parameter is in one group, ``"default"``, with ``config.schedule()``. Once named
    param groups exist (``config.param_groups``, the param-group issue), this reads them: each
    group's own schedule (or the default one), in rule order, then ``"default"`` for the
    parameters no rule claims. It needs no model: the groups come from the config alone.

    Examples:
      >>> from tml.optimizers.config import SgdConfig
      >>> group_schedules(OptimizerConfig(sgd=SgdConfig(lr=0.1)))
      {'default': LearningRate(constant=0.1, ...)}
    """
    return {DEFAULT_GROUP: config.schedule()}


__all__ = ["DEFAULT_GROUP", "group_schedules"]
