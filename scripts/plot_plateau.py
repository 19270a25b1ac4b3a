"""Draw docs/img/plateau.png: a run whose validation loss stalls, under ``reduce_on_plateau``.

The schedule of the "Metric-driven decay" section of docs/schedules.md (a ramp to a cosine), one
evaluation every 500 steps of a made-up validation loss that stops improving twice, and the LR that
``LRShim`` writes, beside the schedule alone. Run it after changing the example:
``.venv/bin/python scripts/plot_plateau.py``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure

from tml.optimizers import LRShim
from tml.optimizers.config import LearningRate, ReduceOnPlateau
from tml.optimizers.schedules import compute_lr

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "img" / "plateau.png"
SCHEDULE = LearningRate.model_validate(
    {
        "linear_ramp_to_cosine": {
            "learning_rate": 1.0e-3,
            "final_learning_rate": 1.0e-5,
            "num_ramp_steps": 1000,
            "final_num_steps": 200000,
        }
    }
)
PLATEAU = ReduceOnPlateau(metric="engagement_loss", factor=0.5, patience=2, min_learning_rate=1.0e-6)
STEPS, EVERY = 60000, 500


def validation_loss(step: int) -> float:
    """Improves, stalls at step 15,000, improves again at the lower LR, stalls at 30,000, improves."""
    first = 0.5 + 0.5 * math.exp(-3)  # the value at 15,000
    if step < 15000:
        return 0.5 + 0.5 * math.exp(-step / 5000)
    if step < 17000:
        return first
    if step < 30000:
        return first - 0.02 * (step - 17000) / 13000
    if step < 32000:
        return first - 0.02
    return first - 0.02 - 0.01 * (step - 32000) / 28000


def main() -> int:
    optimizer = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "name": "engagement"}])
    scheduler = LRShim(optimizer, {"engagement": SCHEDULE}, plateaus={"engagement": PLATEAU})
    lrs, losses = [], []
    for step in range(1, STEPS + 1):
        scheduler.step()
        if step % EVERY == 0:
            losses.append((step, validation_loss(step)))
            scheduler.report({"engagement_loss": losses[-1][1]})
        lrs.append(float(optimizer.param_groups[0]["lr"]))
    steps = list(range(1, STEPS + 1))
    figure = Figure(figsize=(8, 3), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.plot(steps, [compute_lr(SCHEDULE, step) for step in steps], "--", color="0.6", label="schedule")
    axes.plot(steps, lrs, color="C0", label="with reduce_on_plateau")
    for reduction in scheduler.plateau_state()["engagement"]["reductions"]:
        axes.axvline(reduction, color="C0", linestyle=":", linewidth=0.8)
    axes.set_xlabel("step")
    axes.set_ylabel("learning rate")
    metric_axes = axes.twinx()
    metric_axes.plot(*zip(*losses, strict=True), ".", color="C1", markersize=3, label="engagement_loss")
    metric_axes.set_ylabel("validation loss")
    handles = axes.get_legend_handles_labels()
    metric_handles = metric_axes.get_legend_handles_labels()
    axes.legend(handles[0] + metric_handles[0], handles[1] + metric_handles[1], loc="upper right")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUTPUT)
    reductions = scheduler.plateau_state()["engagement"]["reductions"]
    print(f"wrote {OUTPUT.relative_to(ROOT)}: reductions at {reductions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
