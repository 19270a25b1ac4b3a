"""The plateau state of an ``LRShim``: per group, its tracker and the steps where its LR was reduced.

``LRShim`` holds one :class:`PlateauGroups` when some group has ``reduce_on_plateau``; it asks it
to scale the schedule's values (:meth:`PlateauGroups.scaled`), to take a report
(:meth:`PlateauGroups.report`), and for the state to save and restore. That state is the whole of
it: per group the tracker (best value, bad reports, cooldown left) and the list of reduction steps,
plain data (``torch.load(weights_only=True)`` and JSON both read it back exactly).
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Container, Mapping, Sequence
from typing import Any

import torch

from tml.optimizers.schedules.plateau import PlateauTracker, ReduceOnPlateau, reduced_lr

STATE_KEYS = ("metric", "mode", "best", "bad_reports", "cooldown_left", "reductions")
"""The saved state of one group, in this order."""


class PlateauGroups:
    """The groups of an ``LRShim`` that have ``reduce_on_plateau``: their trackers and reductions.

    Args:
      group_names: every group of the scheduler, in order.
      plateaus: group name -> its ``reduce_on_plateau`` (groups without one left out).
    """

    def __init__(self, group_names: Sequence[str], plateaus: Mapping[str, ReduceOnPlateau]) -> None:
        self.configs = dict(plateaus)
        self.positions = [index for index, name in enumerate(group_names) if name in self.configs]
        self.names = [group_names[index] for index in self.positions]
        self.trackers: dict[str, PlateauTracker] = {}
        self.reductions: dict[str, list[int]] = {}
        self.reset()

    def reset(self) -> None:
        """Every tracker as before the first report, no reduction (a new run)."""
        self.trackers = {name: PlateauTracker.start(self.configs[name]) for name in self.names}
        self.reductions = {name: [] for name in self.names}

    def scaled(self, lrs: list[float], step: int) -> list[float]:
        """``lrs`` (each group's schedule value at ``step``, in group order) after each group's
        reductions at steps up to ``step``."""
        for index, name in zip(self.positions, self.names, strict=True):
            steps = self.reductions[name]
            if steps:
                count = len(steps) if steps[-1] <= step else bisect.bisect_right(steps, step)
                lrs[index] = reduced_lr(lrs[index], count, self.configs[name])
        return lrs

    def report(self, metrics: Mapping[str, Any], step: int) -> list[str]:
        """Feed each group its metric; record a reduction at ``step`` where one happens.

        Every value is read and checked before any tracker moves, so a report that fails changes
        nothing.

        Returns:
          The names of the groups whose LR this report reduced.

        Raises:
          TypeError: ``metrics`` is not a mapping, or a value is not a number (a bool, a tensor of
            more than one element).
          KeyError: a group's metric is not in ``metrics`` (the message names the group and metric).
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(
                "report takes a mapping of metric name -> value, e.g. scheduler.report({"
                f"{self.configs[self.names[0]].metric!r}: 0.41}}), got {type(metrics).__name__}"
            )
        values: dict[str, float] = {}
        for name in self.names:
            metric = self.configs[name].metric
            if metric not in values:
                if metric not in metrics:
                    raise MissingMetricError(
                        f"param group {name!r} reduces its LR on the plateaus of {metric!r}, which this "
                        f"report lacks (it has: {', '.join(map(repr, metrics)) or 'nothing'}); report "
                        "every group's metric each time"
                    )
                values[metric] = metric_value(metrics[metric], metric)
        reduced = []
        for name in self.names:
            config = self.configs[name]
            self.trackers[name], reduces = self.trackers[name].after(values[config.metric], config)
            if reduces:
                self.reductions[name].append(step)
                reduced.append(name)
        return reduced

    def state(self) -> dict[str, dict[str, Any]]:
        """Group name -> its metric, mode, tracker and reduction steps (plain data)."""
        return {
            name: {
                "metric": self.configs[name].metric,
                "mode": self.configs[name].mode,
                "best": self.trackers[name].best,
                "bad_reports": self.trackers[name].bad_reports,
                "cooldown_left": self.trackers[name].cooldown_left,
                "reductions": list(self.reductions[name]),
            }
            for name in self.names
        }

    def load(self, saved: Mapping[str, Any] | None, last_epoch: int, *, strict: bool) -> list[str]:
        """Restore a :meth:`state` saved at position ``last_epoch``.

        ``strict`` (the saved groups had this ``reduce_on_plateau``, as the scheduler checked):
        every group's state is taken as saved. Otherwise (the config wins) a group keeps its saved
        reductions, and its tracker when its metric and mode are the ones it was saved with; a
        group that the config gives no plateau drops its reductions; a group new to plateaus starts
        fresh. Nothing changes when the state is refused.

        Returns:
          What the config changed, one line per group (for the resume report).

        Raises:
          ValueError: ``saved`` is malformed, or (``strict``) is not the state of these groups.
        """
        saved = dict(saved or {})
        for name, entry in saved.items():
            problem = _malformed(entry, last_epoch)
            if problem:
                raise ValueError(f"the checkpoint's plateau state of group {name!r} {problem}")
        if strict and sorted(saved) != sorted(self.names):
            raise ValueError(
                f"the checkpoint has the plateau state of groups {sorted(saved)}, this scheduler "
                f"reduces the LR of groups {sorted(self.names)}"
            )
        self.reset()
        changes = dropped_reductions(saved, keep=self.configs)
        for name, entry in saved.items():
            if name not in self.configs:
                continue
            self.reductions[name] = list(entry["reductions"])
            config = self.configs[name]
            if (entry["metric"], entry["mode"]) != (config.metric, config.mode):
                changes.append(
                    f"group {name!r}: the plateau tracker of {entry['metric']!r} ({entry['mode']}) "
                    f"restarts for {config.metric!r} ({config.mode}); its reductions are kept"
                )
                continue
            self.trackers[name] = PlateauTracker(
                best=float(entry["best"]),
                bad_reports=entry["bad_reports"],
                cooldown_left=entry["cooldown_left"],
            )
        return changes


def dropped_reductions(saved: Any, keep: Container[str] = ()) -> list[str]:
    """The resume report of saved plateau states whose groups (those not in ``keep``) have no
    ``reduce_on_plateau`` here: their reductions no longer apply."""
    if not isinstance(saved, Mapping):
        return []
    return [
        f"group {name!r}: no reduce_on_plateau here: its {len(entry['reductions'])} reduction(s) "
        f"(at steps {entry['reductions']}) no longer apply"
        for name, entry in saved.items()
        if name not in keep and isinstance(entry, Mapping) and entry.get("reductions")
    ]


class MissingMetricError(KeyError):
    """A report lacks the metric of a group that has ``reduce_on_plateau``."""

    def __str__(self) -> str:  # KeyError's own shows the message's repr
        return str(self.args[0])


def metric_value(value: Any, metric: str) -> float:
    """A reported value as a float: a Python or NumPy number, or a tensor of one element."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"metric {metric!r}: expected a number, got a tensor of shape {list(value.shape)} "
                "(reduce it to one value first, e.g. .mean())"
            )
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"metric {metric!r}: expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _malformed(entry: Any, last_epoch: int) -> str | None:
    """Why ``entry`` is not one group's saved plateau state, or ``None``."""
    if not isinstance(entry, Mapping) or sorted(entry) != sorted(STATE_KEYS):
        return f"must have the keys {', '.join(STATE_KEYS)}, got {entry!r}"
    metric, mode, best, bad, cooldown, steps = (entry[key] for key in STATE_KEYS)
    if not isinstance(metric, str) or mode not in ("min", "max"):
        return f"has metric {metric!r} and mode {mode!r}, not a metric name and min or max"
    if not isinstance(best, (int, float)) or isinstance(best, bool) or math.isnan(best):
        return f"has best {best!r}, not a number"
    for key, count in (("bad_reports", bad), ("cooldown_left", cooldown)):
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return f"has {key} {count!r}, not a count"
    if not isinstance(steps, list) or not all(
        isinstance(step, int) and not isinstance(step, bool) for step in steps
    ):
        return f"has reductions {steps!r}, not a list of steps"
    if steps != sorted(steps) or (steps and (steps[0] < 0 or steps[-1] > max(last_epoch, 0))):
        return f"has reductions {steps} that are not sorted steps within 0..{last_epoch}"
    return None


__all__ = ["STATE_KEYS", "MissingMetricError", "PlateauGroups", "dropped_reductions", "metric_value"]
