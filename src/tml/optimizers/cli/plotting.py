"""PNG images: the learning rate of every group over the steps, and a training loss curve.

matplotlib runs on its Agg backend (no display needed). Images have an exact pixel size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tml.optimizers.config import LearningRate
from tml.optimizers.schedules import compute_lr, schedule_milestones

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_SIZE = (1000, 500)
"""Width and height of the images in pixels (``tml-optim plot --size`` has the same default)."""
DPI = 100
MAX_POINTS = 20_000
"""Above this many steps, the curve is sampled on this many evenly spaced steps plus every phase boundary."""


def sample_steps(end: int, schedules: Sequence[LearningRate] = ()) -> torch.Tensor:
    """The steps a curve is drawn through: every step up to ``end``, or a sample of them.

    Examples:
      >>> sample_steps(4).tolist()
      [0, 1, 2, 3, 4]
    """
    if end + 1 <= MAX_POINTS:
        return torch.arange(end + 1, dtype=torch.int64)
    sample = torch.linspace(0, end, MAX_POINTS, dtype=torch.float64).round().to(torch.int64)
    boundaries = [step for schedule in schedules for step in schedule_milestones(schedule) if step <= end]
    extra = torch.tensor(boundaries + [max(step - 1, 0) for step in boundaries], dtype=torch.int64)
    return torch.unique(torch.cat([sample, extra]))


def plot_schedules(
    schedules: Mapping[str, LearningRate],
    output: str | Path,
    *,
    end: int,
    log_y: bool | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    title: str | None = None,
    multipliers: Mapping[str, float] | None = None,
) -> Path:
    """Draw one curve per group from step 0 to ``end``, with phase boundaries as dotted lines.

    A group's curve is its schedule times its entry in ``multipliers`` (1 when absent).

    The values come from the vectorized ``compute_lr`` on a tensor of steps. ``log_y``: a log axis
    (``True``), a linear one (``False``), or, by default, a log axis when the groups' positive
    learning rates span more than :data:`LOG_SCALE_SPAN` (one group at 0.01 would flatten others
    at 1e-4 into a line). On a log axis, steps where the learning rate is 0 are left out (a log axis
    cannot show 0). A group whose curve is exactly an earlier group's is drawn dashed, and its
    legend says so. The file's format comes from its suffix (``.png``, ``.svg``, ``.pdf``).
    """
    figure, axes = _figure(size)
    steps = sample_steps(end, list(schedules.values()))
    curves = {
        name: (multipliers or {}).get(name, 1.0) * compute_lr(schedule, steps)
        for name, schedule in schedules.items()
    }
    if log_y is None:
        log_y = _span(curves.values()) > LOG_SCALE_SPAN
    colors = _colors(len(schedules))
    for (name, schedule), color in zip(schedules.items(), colors, strict=True):
        values = curves[name]
        same_as = next(
            (other for other in curves if other != name and torch.equal(curves[other], values)), None
        )
        label, style = (name, "-")
        if same_as is not None and list(curves).index(same_as) < list(curves).index(name):
            label, style = (f"{name} (= {same_as})", "--")
        if log_y:
            values = torch.where(values > 0, values, torch.nan)
        axes.plot(steps.numpy(), values.numpy(), label=label, color=color, linewidth=1.6, linestyle=style)
        for boundary in schedule_milestones(schedule):
            if 0 < boundary <= end:
                axes.axvline(boundary, color=color, linestyle=":", linewidth=1.0, alpha=0.8)
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("learning rate")
    axes.set_xlim(0, max(end, 1))
    axes.set_title(title or "learning rate per param group (dotted: phase boundaries)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    return _save(figure, output)


def plot_losses(
    losses: Sequence[float], output: str | Path, *, size: tuple[int, int] = DEFAULT_SIZE, title: str = ""
) -> Path:
    """Draw the training loss per step and its exponential moving average."""
    figure, axes = _figure(size)
    steps = list(range(len(losses)))
    axes.plot(steps, losses, color="0.7", linewidth=0.8, label="loss")
    smoothed: list[float] = []
    average = losses[0] if losses else 0.0
    for value in losses:
        average = 0.95 * average + 0.05 * value
        smoothed.append(average)
    axes.plot(steps, smoothed, color="C0", linewidth=1.8, label="moving average (0.95)")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("training loss")
    axes.set_title(title or "training loss")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    return _save(figure, output)


def _figure(size: tuple[int, int]) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    width, height = size
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


LOG_SCALE_SPAN = 100.0
"""The ratio of the greatest to the least positive learning rate above which ``plot`` draws a log axis."""

IMAGE_FORMATS = ("png", "svg", "pdf")
"""The file formats of the plots, chosen by the output file's suffix."""


def image_format(output: str | Path) -> str:
    """The format of an output file, from its suffix (``png`` when it has none).

    Raises:
      ValueError: the suffix names another format.
    """
    suffix = Path(output).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix not in IMAGE_FORMATS:
        raise ValueError(
            f"{output}: cannot write .{suffix} images; use {', '.join('.' + f for f in IMAGE_FORMATS)}"
        )
    return suffix


def _span(curves: Iterable[torch.Tensor]) -> float:
    positive = [curve[curve > 0] for curve in curves]
    values = torch.cat(positive) if positive else torch.empty(0)
    return float(values.max() / values.min()) if values.numel() else 1.0


def _colors(count: int) -> list[str]:
    return [f"C{index % 10}" for index in range(count)]


def _save(figure: Figure, output: str | Path) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format=image_format(path))
    return path


__all__ = ["DEFAULT_SIZE", "plot_losses", "plot_schedules", "sample_steps"]
