"""Build a torch optimizer and its ``LRShim`` scheduler from an ``OptimizerConfig``."""

from __future__ import annotations

import torch

from tml.optimizers.config import OptimizerConfig
from tml.optimizers.scheduler import LRShim
from tml.optimizers.schedules import compute_lr

DEFAULT_GROUP = "default"
"""The name of the param group that holds every parameter no rule claims."""


def get_optimizer_class(optimizer_config: OptimizerConfig) -> type[torch.optim.Optimizer]:
    """The torch optimizer class of the chosen algorithm (``torch.optim.Adam`` for ``adam``…)."""
    return optimizer_config.algorithm().optimizer_class


def build_optimizer(
    model: torch.nn.Module, optimizer_config: OptimizerConfig
) -> tuple[torch.optim.Optimizer, LRShim]:
    """Build the optimizer of ``model``'s trainable parameters and its learning-rate scheduler.

    Every trainable parameter goes into one param group, named ``"default"``, with the config's
    algorithm, hyperparameters and schedule. Call ``optimizer.step()`` then ``scheduler.step()``
    once per training step.

    Raises:
      ValueError: the model has no trainable parameter.
    """
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if not parameters:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimize")
    algorithm = optimizer_config.algorithm()
    schedule = optimizer_config.schedule()
    optimizer = algorithm.optimizer_class(  # type: ignore[call-arg]
        [{"params": parameters, "name": DEFAULT_GROUP}],
        lr=compute_lr(schedule, 0),
        **algorithm.optimizer_kwargs(),
    )
    scheduler = LRShim(optimizer, {DEFAULT_GROUP: schedule})
    return optimizer, scheduler


__all__ = ["LRShim", "build_optimizer", "compute_lr", "get_optimizer_class"]
