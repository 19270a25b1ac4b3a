r"""Metric-driven decay: the ``reduce_on_plateau`` config, its plateau tracker and its closed form.

A group with ``reduce_on_plateau`` has the learning rate

.. math::

    \mathrm{lr}(t) = \max\bigl(s(t)\, f^{n(t)},\ \min(s(t), m)\bigr)

where :math:`s(t)` is the group's schedule at step :math:`t` (times its multiplier), :math:`f` the
``factor``, :math:`m` the ``min_learning_rate`` and :math:`n(t)` the number of reductions at steps
:math:`\le t`. The value is a pure function of the step and of the list of steps where reductions
happened; the :class:`PlateauTracker` (best value, bad reports, cooldown left) decides, at each
reported metric, whether one more reduction happens, with the rules of torch's
``ReduceLROnPlateau``. Nothing here depends on torch: the LR scheduler keeps one tracker and one
list of reductions per group (``tml.optimizers.runtime.plateau``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Literal

import pydantic

from tml.core.config import raise_at
from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import MAX_STEPS, NO_BOOL, LearningRateValue, NonNegativeFloat

PlateauMode = Literal["min", "max"]
ThresholdMode = Literal["rel", "abs"]

ReductionFactor = Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, lt=1.0, allow_inf_nan=False)]
"""A factor in (0, 1): each reduction multiplies the learning rate by it."""

Reports = Annotated[int, NO_BOOL, pydantic.Field(ge=0, le=MAX_STEPS)]
"""A number of reports (evaluations) in [0, 10¹⁵]."""


class ReduceOnPlateau(StrictConfig):
    """Reduce a group's learning rate by ``factor`` when its metric stops improving.

    torch's ``ReduceLROnPlateau`` rules, over the values given to ``scheduler.report(...)``: a report
    improves on the best value so far when it is below ``best * (1 - threshold)`` (``mode: min``,
    ``threshold_mode: rel``), ``best - threshold`` (``abs``), or above ``best * (1 + threshold)`` /
    ``best + threshold`` (``mode: max``); the first report always improves. After more than
    ``patience`` reports in a row without improvement the learning rate is reduced; the next
    ``cooldown`` reports are not counted. The reduction multiplies the group's schedule from then on:
    the LR is ``schedule(t) * factor ** reductions``, never taken below ``min_learning_rate`` by the
    reductions.
    """

    metric: str = pydantic.Field(
        min_length=1,
        description="The name of the metric this group reacts to: a key of the mapping given to "
        "scheduler.report({...}). Every report must hold it.",
    )
    mode: PlateauMode = pydantic.Field(
        "min", description="'min': the metric should decrease (a loss); 'max': increase (an AUC)."
    )
    factor: ReductionFactor = pydantic.Field(
        0.1, description="Each reduction multiplies the learning rate by this, in (0, 1) (torch's factor)."
    )
    patience: Reports = pydantic.Field(
        10,
        description="The number of reports in a row without improvement that are tolerated: the "
        "next one reduces (0: the first report that does not improve reduces).",
    )
    threshold: NonNegativeFloat = pydantic.Field(
        1e-4,
        description="How much better than the best value a report must be to count as an "
        "improvement: a fraction of the best value (threshold_mode rel, below 1) or an amount (abs).",
    )
    threshold_mode: ThresholdMode = pydantic.Field(
        "rel",
        description="'rel': improve on best * (1 - threshold) (mode min) or best * (1 + threshold) "
        "(mode max); 'abs': on best - threshold or best + threshold.",
    )
    cooldown: Reports = pydantic.Field(
        0, description="The number of reports after a reduction that are not counted against patience."
    )
    min_learning_rate: LearningRateValue = pydantic.Field(
        0.0,
        description="Reductions never take the group's learning rate below this (torch's min_lr); "
        "they never raise it either: where the schedule itself is lower, the schedule's value holds.",
    )

    @pydantic.model_validator(mode="after")
    def _relative_threshold_below_one(self) -> ReduceOnPlateau:
        if self.threshold_mode == "rel" and self.threshold >= 1.0:
            raise_at(
                type(self).__name__,
                ("threshold",),
                "with threshold_mode rel, threshold is a fraction of the best value and must be below "
                f"1, got {self.threshold!r} (in mode min no positive value could improve on it); use "
                "threshold_mode: abs for an amount",
                self.threshold,
            )
        return self


@dataclasses.dataclass(frozen=True)
class PlateauTracker:
    """Where a metric stands against its plateau: torch's ``best``, ``num_bad_epochs`` and
    ``cooldown_counter``.

    Examples:
      >>> config = ReduceOnPlateau(metric="loss", patience=1, threshold_mode="abs", threshold=0.0)
      >>> tracker, reductions = PlateauTracker.start(config), []
      >>> for value in [1.0, 0.9, 0.95, 0.95, 0.95, 0.8]:
      ...     tracker, reduced = tracker.after(value, config)
      ...     reductions.append(reduced)
      >>> reductions
      [False, False, False, True, False, False]
      >>> tracker
      PlateauTracker(best=0.8, bad_reports=0, cooldown_left=0)
    """

    best: float
    """The best value reported so far (``inf`` for ``mode: min`` before the first report)."""
    bad_reports: int
    """Reports in a row without improvement since the last improvement, reduction or cooldown."""
    cooldown_left: int
    """Reports left in the cooldown of the last reduction."""

    @classmethod
    def start(cls, config: ReduceOnPlateau) -> PlateauTracker:
        """The tracker before any report: the worst possible best value, no count."""
        return cls(best=math.inf if config.mode == "min" else -math.inf, bad_reports=0, cooldown_left=0)

    def after(self, value: float, config: ReduceOnPlateau) -> tuple[PlateauTracker, bool]:
        """The tracker after a report of ``value``, and whether that report reduces the LR.

        torch's ``ReduceLROnPlateau.step`` in the same order: count the report as good or bad;
        inside a cooldown, count down and forget the bad reports; past ``patience`` bad reports,
        reduce, start the cooldown and forget them. A NaN is never better (a bad report), as in torch.
        """
        best, bad = self.best, self.bad_reports
        if improves(value, best, config):
            best, bad = value, 0
        else:
            bad += 1
        cooldown = self.cooldown_left
        if cooldown > 0:
            cooldown -= 1
            bad = 0
        reduced = bad > config.patience
        if reduced:
            cooldown, bad = config.cooldown, 0
        return PlateauTracker(best=best, bad_reports=bad, cooldown_left=cooldown), reduced


def improves(value: float, best: float, config: ReduceOnPlateau) -> bool:
    """Whether ``value`` improves on ``best`` (torch's ``_is_better``, the same float operations)."""
    if config.mode == "min":
        if config.threshold_mode == "rel":
            return value < best * (1.0 - config.threshold)
        return value < best - config.threshold
    if config.threshold_mode == "rel":
        return value > best * (config.threshold + 1.0)
    return value > best + config.threshold


def reduced_lr(lr: float, reductions: int, config: ReduceOnPlateau) -> float:
    r"""The learning rate ``lr`` (the group's schedule at a step) after ``reductions`` reductions.

    .. math:: \max(\mathrm{lr} \cdot f^{n},\ \min(\mathrm{lr}, m))

    with ``f = factor``, ``n = reductions``, ``m = min_learning_rate``: the reductions stop at the
    floor, and a schedule already below the floor (a warmup from 0) keeps its own value.

    Examples:
      >>> config = ReduceOnPlateau(metric="loss", factor=0.5, min_learning_rate=0.03)
      >>> [reduced_lr(0.1, n, config) for n in range(4)], reduced_lr(0.01, 2, config)
      ([0.1, 0.05, 0.03, 0.03], 0.01)
    """
    if reductions == 0:
        return lr
    return max(lr * config.factor**reductions, min(lr, config.min_learning_rate))


def describe_plateau(config: ReduceOnPlateau) -> str:
    """One line for people: the metric, when the LR is reduced, by how much, and the floor.

    Examples:
      >>> print(describe_plateau(ReduceOnPlateau(metric="auc", mode="max", factor=0.5, patience=2)))
      'auc' (max): x0.5 at the 3rd report in a row that does not improve on the best by 0.01% (rel), ...
    """
    bad = config.patience + 1
    ordinal = {1: "1st", 2: "2nd", 3: "3rd"}.get(bad, f"{bad}th")
    by = f"{config.threshold:.4g}" if config.threshold_mode == "abs" else f"{config.threshold * 100:.4g}%"
    return (
        f"{config.metric!r} ({config.mode}): x{config.factor:g} at the {ordinal} report in a row that does "
        f"not improve on the best by {by} ({config.threshold_mode}), then {config.cooldown} report(s) "
        f"of cooldown; floor {config.min_learning_rate:g}"
    )


__all__ = [
    "PlateauMode",
    "PlateauTracker",
    "ReduceOnPlateau",
    "ThresholdMode",
    "describe_plateau",
    "improves",
    "reduced_lr",
]
