"""Lightning: the ``configure_optimizers`` dict of an ``OptimizerConfig``, stepped once per optimizer step."""

from __future__ import annotations

from typing import Literal, TypedDict

import torch

from tml.optimizers.config import OptimizerConfig
from tml.optimizers.optimizer import build_optimizer
from tml.optimizers.runtime.lr_shim import LRShim

__all__ = ["LightningOptimizerConfig", "LightningSchedulerConfig", "configure_optimizers"]


class LightningSchedulerConfig(TypedDict):
    """The ``lr_scheduler`` entry of Lightning's optimizer config (its ``LRSchedulerConfigType``)."""

    scheduler: LRShim
    interval: Literal["step"]
    frequency: int


class LightningOptimizerConfig(TypedDict):
    """What ``LightningModule.configure_optimizers`` returns (Lightning's ``OptimizerLRSchedulerConfig``)."""

    optimizer: torch.optim.Optimizer
    lr_scheduler: LightningSchedulerConfig


def configure_optimizers(
    module: torch.nn.Module,
    config: OptimizerConfig,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> LightningOptimizerConfig:
    """The optimizer and scheduler of ``module`` in the form ``LightningModule.configure_optimizers`` returns.

    Builds ``build_optimizer(module, config)`` and asks Lightning to step the scheduler with
    ``interval: "step"`` and ``frequency: 1``: once per optimizer step, so that the schedule's step
    ``t`` is the number of optimizer steps taken (with ``accumulate_grad_batches=k`` the schedule
    advances once every ``k`` batches, not once per batch). Lightning's default, ``interval:
    "epoch"``, would hold each LR for a whole epoch.

    ``LRShim`` is a ``torch.optim.lr_scheduler.LRScheduler``, so Lightning takes it without a custom
    ``lr_scheduler_step``; its state goes into Lightning's checkpoints and comes back on
    ``Trainer.fit(ckpt_path=...)``. A config whose param groups use several algorithms gives a
    ``CombinedOptimizer``, which is one ``torch.optim.Optimizer`` to Lightning (automatic
    optimization, one optimizer).

    Args:
      module: the model, usually the ``LightningModule`` itself (``self``); its trainable parameters
        are matched against the config's param-group rules by their names in ``module``.
      config: the optimizer config.
      total_steps, steps_per_epoch: the run that schedule lengths written relative to it
        (``"2%"``, ``"3ep"``) are resolved with, as ``build_optimizer``'s: in a ``LightningModule``,
        ``total_steps=int(self.trainer.estimated_stepping_batches)`` (optimizer steps, gradient
        accumulation counted).

    Returns:
      ``{"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step",
      "frequency": 1}}``.

    Raises:
      ValueError: as ``build_optimizer`` (no trainable parameter, a rule that matches nothing…).

    Examples:
      >>> from tml.optimizers import OptimizerConfig
      >>> config = OptimizerConfig.model_validate({"sgd": {"lr": 0.1},
      ...     "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 2}}})
      >>> result = configure_optimizers(torch.nn.Linear(2, 1), config)
      >>> scheduler = result["lr_scheduler"]
      >>> scheduler["interval"], scheduler["frequency"], type(scheduler["scheduler"]).__name__
      ('step', 1, 'LRShim')
      >>> lrs = [result["optimizer"].param_groups[0]["lr"]]
      >>> for _ in range(3):  # what Lightning does after each optimizer step
      ...     scheduler["scheduler"].step()
      ...     lrs.append(result["optimizer"].param_groups[0]["lr"])
      >>> lrs
      [0.0, 0.05, 0.1, 0.1]
    """
    optimizer, scheduler = build_optimizer(
        module, config, total_steps=total_steps, steps_per_epoch=steps_per_epoch
    )
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
    }
