"""Images: the learning rate of every group (of one or several files) over the steps, and a loss curve.

matplotlib runs on its Agg backend (no display needed). Images have an exact pixel size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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


@dataclasses.dataclass(frozen=True)
class Curve:
    """One curve of a learning-rate plot: a schedule times a multiplier, with its legend label."""

    label: str
    schedule: LearningRate
    multiplier: float = 1.0
    source: int = 0
    """Which file it comes from (the line style of an overlay: solid, dashed, dash-dot, …)."""


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

    A group's curve is its schedule times its entry in ``multipliers`` (1 when absent). See
    :func:`plot_curves` for the axis and the styles.
    """
    factors = multipliers or {}
    curves = [Curve(name, schedule, factors.get(name, 1.0)) for name, schedule in schedules.items()]
    return plot_curves(curves, output, end=end, log_y=log_y, size=size, title=title)


def plot_curves(
    curves: Sequence[Curve],
    output: str | Path,
    *,
    end: int,
    log_y: bool | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    title: str | None = None,
) -> Path:
    """Draw the curves from step 0 to ``end``, each schedule's phase boundaries as dotted lines.

    The values come from the vectorized ``compute_lr`` on a tensor of steps. ``log_y``: a log axis
    (``True``), a linear one (``False``), or, by default, a log axis when the curves' peaks span
    more than :data:`LOG_SCALE_SPAN` (one group at 0.01 would flatten others at 1e-4 into a line; a
    decay towards 0 alone does not make the axis logarithmic). On a log axis, steps where the
    learning rate is 0 are left out (a log axis cannot show 0), and the axis goes down to the lowest
    value a curve takes after its peak (its final LR; its lowest when it still rises at the end),
    but not more than :data:`LOG_AXIS_DEPTH` below the lowest peak: warmups from 0 and decays to 0
    enter and leave through the bottom.
    Curves of several files (``source``) have one line style per file; a curve that is exactly an
    earlier one is drawn with fine dots, and its legend says so. The file's format comes from its
    suffix (``.png``, ``.svg``, ``.pdf``).
    """
    figure, axes = _figure(size)
    steps = sample_steps(end, [curve.schedule for curve in curves])
    values = [curve.multiplier * compute_lr(curve.schedule, steps) for curve in curves]
    if log_y is None:
        log_y = wants_log_axis(values)
    colors = _colors(len(curves))
    for index, (curve, value, color) in enumerate(zip(curves, values, colors, strict=True)):
        same_as = next(
            (curves[other].label for other in range(index) if torch.equal(values[other], value)), None
        )
        label, style = curve.label, SOURCE_STYLES[curve.source % len(SOURCE_STYLES)]
        if same_as is not None:
            label, style = f"{curve.label} (= {same_as})", DUPLICATE_STYLE
        if log_y:
            value = torch.where(value > 0, value, torch.nan)
        axes.plot(steps.numpy(), value.numpy(), label=label, color=color, linewidth=1.6, linestyle=style)
        for boundary in schedule_milestones(curve.schedule):
            if 0 < boundary <= end:
                axes.axvline(boundary, color=color, linestyle=":", linewidth=1.0, alpha=0.8)
    if log_y:
        axes.set_yscale("log")
        limits = log_axis_limits(values)
        if limits is not None:
            axes.set_ylim(*limits)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("learning rate")
    axes.set_xlim(0, max(end, 1))
    axes.set_title(title or "learning rate per param group (dotted: phase boundaries)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small" if len(curves) > 6 else "medium")
    return _save(figure, output)


def wants_log_axis(curves: Sequence[torch.Tensor]) -> bool:
    """Whether the curves' peaks span more than :data:`LOG_SCALE_SPAN` (a log axis by default).

    Examples:
      >>> wants_log_axis([torch.tensor([0.0, 1e-2]), torch.tensor([0.0, 2e-4])])
      False
      >>> wants_log_axis([torch.tensor([0.0, 1e-2]), torch.tensor([0.0, 5e-5])])
      True
    """
    peaks = [float(curve.max()) for curve in curves if curve.numel() and float(curve.max()) > 0]
    return bool(peaks) and max(peaks) / min(peaks) > LOG_SCALE_SPAN


def log_axis_limits(curves: Sequence[torch.Tensor]) -> tuple[float, float] | None:
    """The bottom and top of a log axis: from the lowest value a curve takes after its peak (its
    lowest when it still rises at the end), but not more than :data:`LOG_AXIS_DEPTH` below the
    lowest peak, to the highest peak, with a margin of 1.5× each way. ``None`` without a positive
    value."""
    positive = [curve for curve in curves if curve.numel() and float(curve.max()) > 0]
    if not positive:
        return None
    peaks = [float(curve.max()) for curve in positive]
    bottom = max(min(_lowest_after_peak(curve) for curve in positive), min(peaks) / LOG_AXIS_DEPTH)
    return bottom / 1.5, max(peaks) * 1.5


def _lowest_after_peak(value: torch.Tensor) -> float:
    """The least positive value after the curve's peak; of the whole curve when it still rises at
    the end of the plot (a warmup is all there is to show)."""
    peak_at = int(torch.argmax(value))
    after = value if peak_at == value.numel() - 1 else value[peak_at:]
    return float(after[after > 0].min()) if bool((after > 0).any()) else float(value.max())


SOURCE_STYLES: tuple[Any, ...] = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))
"""The line style of each file's curves in an overlay: solid, dashed, dash-dot, dash-dot-dot."""
DUPLICATE_STYLE: Any = (0, (1, 1.5))
"""The line style of a curve that is exactly an earlier one (fine dots, over the earlier line)."""
LOG_AXIS_DEPTH = 1000.0
"""A log axis shows down to this factor below the lowest peak (a decay to 0 would stretch it)."""


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
"""The ratio of the greatest to the least peak of the curves above which ``plot`` draws a log axis."""

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


def _colors(count: int) -> list[Any]:
    if count <= 10:
        return [f"C{index}" for index in range(count)]
    import matplotlib

    palette = matplotlib.colormaps["tab20"]
    return [palette(index % 20) for index in range(count)]


def _save(figure: Figure, output: str | Path) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, selectable
        figure.savefig(path, dpi=DPI, format=image_format(path))
    return path


__all__ = [
    "DEFAULT_SIZE",
    "Curve",
    "log_axis_limits",
    "plot_curves",
    "plot_losses",
    "plot_schedules",
    "sample_steps",
    "wants_log_axis",
]
