"""``reduce_on_plateau``: its config's refusals, its tracker against torch's ``ReduceLROnPlateau``,
and its closed form.

The tracker (best value, bad reports, cooldown left) is compared with torch's own scheduler, fed the
same metric sequence, after every report; the closed form with the formula written out here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.group_models import METRIC_VALUES, plateau_settings, torch_plateau

from tml.core.config import load_config_from_yaml
from tml.core.config.errors import ConfigError
from tml.optimizers import OptimizerConfig
from tml.optimizers.config import ReduceOnPlateau
from tml.optimizers.schedules.plateau import PlateauTracker, improves, reduced_lr

# ---------------------------------------------------------------- the tracker against torch


@settings(max_examples=300, deadline=None)
@given(plateau_settings(), st.lists(METRIC_VALUES, min_size=1, max_size=40))
def test_the_tracker_moves_as_torchs_after_every_report(
    settings: dict[str, Any], values: list[float]
) -> None:
    config = ReduceOnPlateau.model_validate(settings)
    optimizer, reference = torch_plateau(settings, lr=1.0)
    tracker = PlateauTracker.start(config)
    for value in values:
        lr_before = optimizer.param_groups[0]["lr"]
        reference.step(value)
        tracker, reduced = tracker.after(value, config)
        assert (tracker.best, tracker.bad_reports, tracker.cooldown_left) == (
            reference.best,
            reference.num_bad_epochs,
            reference.cooldown_counter,
        )
        if lr_before > settings["min_learning_rate"]:  # at its floor torch's LR shows no reduction
            assert reduced == (optimizer.param_groups[0]["lr"] < lr_before)


def test_torchs_documented_patience_example() -> None:
    # torch's docs for patience = 0: the first report sets the baseline, each later one that is not
    # better reduces at once; an equal value is not better.
    config = ReduceOnPlateau(metric="loss", patience=0, threshold=0.0, threshold_mode="abs")
    tracker, outcomes = PlateauTracker.start(config), []
    for value in [1.0, 2.0, 2.0, 0.5, 0.5]:
        tracker, reduced = tracker.after(value, config)
        outcomes.append(reduced)
    assert outcomes == [False, True, True, False, True]


def test_cooldown_holds_off_the_count_for_its_reports() -> None:
    # patience 1, cooldown 2, a flat metric: reduce at the 3rd report (2 bad ones > 1), then 2 reports
    # of cooldown, then 2 more bad ones: the 7th reduces again.
    config = ReduceOnPlateau(metric="loss", patience=1, cooldown=2, threshold=0.0, threshold_mode="abs")
    tracker, reductions = PlateauTracker.start(config), []
    for report in range(1, 10):
        tracker, reduced = tracker.after(1.0, config)
        if reduced:
            reductions.append(report)
    assert reductions == [3, 7]


@pytest.mark.parametrize(
    ("mode", "threshold_mode", "threshold", "best", "value", "better"),
    [
        ("min", "rel", 0.1, 1.0, 0.89, True),  # below 1.0 * 0.9
        ("min", "rel", 0.1, 1.0, 0.95, False),  # better, but not by 10%
        ("min", "abs", 0.1, 1.0, 0.85, True),  # below 1.0 - 0.1
        ("min", "abs", 0.1, 1.0, 0.95, False),
        ("max", "rel", 0.1, 1.0, 1.11, True),  # above 1.0 * 1.1
        ("max", "rel", 0.1, 1.0, 1.05, False),
        ("max", "abs", 0.1, 1.0, 1.15, True),  # above 1.0 + 0.1
        ("max", "abs", 0.1, 1.0, 1.05, False),
        ("min", "rel", 0.1, -1.0, -0.95, True),  # torch's rel with a negative best: -0.95 < -0.9
        ("min", "abs", 0.0, 1.0, math.nan, False),  # NaN is never better
    ],
)
def test_improves_by_mode_and_threshold(
    mode: str, threshold_mode: str, threshold: float, best: float, value: float, better: bool
) -> None:
    config = ReduceOnPlateau(metric="m", mode=mode, threshold_mode=threshold_mode, threshold=threshold)  # type: ignore[arg-type]
    assert improves(value, best, config) is better


# ---------------------------------------------------------------- the closed form


@settings(max_examples=200, deadline=None)
@given(
    lr=st.floats(min_value=0.0, max_value=10.0),
    reductions=st.integers(min_value=0, max_value=60),
    factor=st.floats(min_value=0.01, max_value=0.99),
    floor=st.floats(min_value=0.0, max_value=1.0),
)
def test_reduced_lr_is_the_schedule_times_factor_powers_floored(
    lr: float, reductions: int, factor: float, floor: float
) -> None:
    config = ReduceOnPlateau(metric="m", factor=factor, min_learning_rate=floor)
    value = reduced_lr(lr, reductions, config)
    assert value <= lr  # a reduction never raises the LR
    assert value >= min(lr, floor)  # nor takes it below the floor (or below the schedule's own value)
    if reductions == 0:
        assert value == lr
    elif lr * factor**reductions >= floor:
        assert value == lr * factor**reductions
    else:
        assert value == min(lr, floor)


def test_reduced_lr_golden_values() -> None:
    config = ReduceOnPlateau(metric="loss", factor=0.5, min_learning_rate=0.01)
    assert reduced_lr(0.08, 0, config) == 0.08
    assert reduced_lr(0.08, 1, config) == 0.04  # 0.08 * 0.5
    assert reduced_lr(0.08, 3, config) == 0.01  # 0.08 * 0.125 = 0.01, at the floor
    assert reduced_lr(0.08, 10, config) == 0.01  # held at the floor
    assert reduced_lr(0.004, 2, config) == 0.004  # a warmup below the floor is not lifted
    assert reduced_lr(0.0, 5, config) == 0.0


# ---------------------------------------------------------------- refusals at load

ERRORS: list[tuple[str, str]] = [
    # (the reduce_on_plateau mapping, as YAML; the expected message)
    ("{mode: min}", r"reduce_on_plateau\.metric: Field required"),
    ("{metric: ''}", r"reduce_on_plateau\.metric: String should have at least 1 character"),
    ("{metric: loss, mode: lowest}", r"reduce_on_plateau\.mode: Input should be 'min' or 'max'"),
    ("{metric: loss, factor: 1.0}", r"reduce_on_plateau\.factor: Input should be less than 1"),
    ("{metric: loss, factor: 0}", r"reduce_on_plateau\.factor: Input should be greater than 0"),
    ("{metric: loss, factor: -0.5}", r"reduce_on_plateau\.factor: Input should be greater than 0"),
    ("{metric: loss, factor: .nan}", r"reduce_on_plateau\.factor: expected a finite number"),
    (
        "{metric: loss, patience: -1}",
        r"reduce_on_plateau\.patience: Input should be greater than or equal to 0",
    ),
    ("{metric: loss, patience: 1.5}", r"reduce_on_plateau\.patience: Input should be a valid integer"),
    (
        "{metric: loss, patience: true}",
        r"reduce_on_plateau\.patience: expected a number, got the boolean True",
    ),
    (
        "{metric: loss, cooldown: -2}",
        r"reduce_on_plateau\.cooldown: Input should be greater than or equal to 0",
    ),
    (
        "{metric: loss, threshold: -0.1}",
        r"reduce_on_plateau\.threshold: Input should be greater than or equal to 0",
    ),
    (
        "{metric: loss, threshold: 1.0}",
        r"reduce_on_plateau\.threshold: with threshold_mode rel, threshold is a fraction of the best value "
        r"and must be below 1, got 1\.0",
    ),
    (
        "{metric: loss, threshold_mode: relative}",
        r"reduce_on_plateau\.threshold_mode: Input should be 'rel' or 'abs'",
    ),
    (
        "{metric: loss, min_learning_rate: -1.0e-5}",
        r"reduce_on_plateau\.min_learning_rate: Input should be greater than or equal to 0",
    ),
    ("{metric: loss, patiense: 3}", r"reduce_on_plateau\.patiense: Extra inputs are not permitted"),
    (
        "{metric: loss, min_learning_rate: 0.001}",
        r"reduce_on_plateau\.min_learning_rate: min_learning_rate 0\.001 is not below the greatest "
        r"learning rate of group 'towers' \(0\.001\): no reduction could lower it",
    ),
    ("true", r"reduce_on_plateau: true is not a setting: give \{metric: <name>, \.\.\.\}, or false"),
    (
        "0",
        r"reduce_on_plateau: expected a reduce_on_plateau setting \{metric: <name>, \.\.\.\} or false, got 0",
    ),
]


def yaml_config(tmp_path: Path, setting: str, *, where: str = "group") -> Path:
    path = tmp_path / "run.yaml"
    text = "optimizer:\n  adam: {lr: 0.01}\n"
    if where == "optimizer":
        text += f"  reduce_on_plateau: {setting}\n"
    text += (
        "  param_groups:\n"
        "    - name: towers\n"
        "      params: ['towers.*']\n"
        "      learning_rate: {constant: 0.001}\n"
    )
    if where == "group":
        text += f"      reduce_on_plateau: {setting}\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("setting", "message"), ERRORS, ids=[f"{i:02d}" for i in range(len(ERRORS))])
def test_a_bad_setting_fails_at_load_with_file_line_path_and_rule(
    setting: str, message: str, tmp_path: Path
) -> None:
    path = yaml_config(tmp_path, setting)
    with pytest.raises(ConfigError) as caught:
        load_config_from_yaml(OptimizerConfig, path, key="optimizer")
    text = str(caught.value)
    assert re.search(rf"{re.escape(str(path))}:7:\d+: optimizer\.param_groups\.0\." + message, text), text


def test_the_optimizers_setting_is_checked_against_every_group_that_inherits_it(tmp_path: Path) -> None:
    # The default group runs at 0.01, the towers at 0.001: a floor of 0.005 cannot lower the towers.
    path = yaml_config(tmp_path, "{metric: loss, min_learning_rate: 0.005}", where="optimizer")
    with pytest.raises(
        ConfigError,
        match=r"run\.yaml:3:\d+: optimizer\.reduce_on_plateau\.min_learning_rate: "
        r"min_learning_rate 0\.005 is not below the greatest learning rate of group 'towers'",
    ):
        load_config_from_yaml(OptimizerConfig, path, key="optimizer")


def test_false_opts_a_group_out_and_a_group_of_lr_0_is_left_alone() -> None:
    config = OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.01},
            "reduce_on_plateau": {"metric": "loss", "min_learning_rate": 0.001},
            "param_groups": [
                {"name": "embeddings", "params": ["e.*"], "reduce_on_plateau": False},
                {"name": "frozen", "params": ["f.*"], "lr_multiplier": 0.0},
                {"name": "tower", "params": ["t.*"], "reduce_on_plateau": {"metric": "tower_loss"}},
            ],
        }
    )
    metrics = {
        spec.name: spec.reduce_on_plateau and spec.reduce_on_plateau.metric for spec in config.group_specs()
    }
    assert metrics == {"embeddings": None, "frozen": "loss", "tower": "tower_loss", "default": "loss"}
    # false survives a round trip through the config's own data (a checkpoint's config, show, ...)
    again = OptimizerConfig.model_validate(config.model_dump(mode="json", exclude_none=True))
    assert again.param_groups[0].reduce_on_plateau is False


def test_recaps_towers_take_the_optimizers_setting() -> None:
    config = OptimizerConfig.model_validate(
        {
            "adam": {"lr": 0.01},
            "reduce_on_plateau": {"metric": "loss", "factor": 0.5},
            "multi_task_learning_rates": {"tower_learning_rates": {"engagement": {"constant": 0.002}}},
        }
    )
    assert [(spec.name, spec.reduce_on_plateau) for spec in config.group_specs()] == [
        ("engagement", ReduceOnPlateau(metric="loss", factor=0.5)),
        ("backbone", ReduceOnPlateau(metric="loss", factor=0.5)),
    ]


def test_torchs_defaults_are_the_defaults() -> None:
    config = ReduceOnPlateau(metric="loss")
    _, reference = torch_plateau(
        {
            "mode": "min",
            "factor": 0.1,
            "patience": 10,
            "threshold": 1e-4,
            "threshold_mode": "rel",
            "cooldown": 0,
            "min_learning_rate": 0.0,
        },
        lr=1.0,
    )
    defaults = torch.optim.lr_scheduler.ReduceLROnPlateau.__init__.__defaults__
    assert defaults == ("min", 0.1, 10, 1e-4, "rel", 0, 0, 1e-8)
    assert (config.mode, config.factor, config.patience, config.threshold, config.threshold_mode) == (
        reference.mode,
        reference.factor,
        reference.patience,
        reference.threshold,
        reference.threshold_mode,
    )
    assert (config.cooldown, config.min_learning_rate) == (reference.cooldown, reference.min_lrs[0])


def test_a_python_object_is_checked_as_the_yaml_is() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"factor\n  Input should be less than 1"):
        ReduceOnPlateau(metric="loss", factor=1.5)


def test_the_docs_example_loads_builds_and_gives_each_tower_its_metric(tmp_path: Path) -> None:
    from tests.group_models import TowerModel

    from tml.optimizers import build_optimizer

    doc = Path(__file__).resolve().parents[2] / "docs" / "schedules.md"
    section = doc.read_text(encoding="utf-8").split("## Metric-driven decay", 1)[1]
    path = tmp_path / "towers.yaml"
    path.write_text(re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)[0], encoding="utf-8")
    config = load_config_from_yaml(OptimizerConfig, path, key="optimizer")
    _, scheduler = build_optimizer(TowerModel(["engagement", "like"]), config)
    assert {name: entry["metric"] for name, entry in scheduler.plateau_state().items()} == {
        "engagement": "engagement_loss",
        "like": "like_auc",
        "default": "loss",
    }
    assert scheduler.report({"loss": 0.41, "engagement_loss": 0.32, "like_auc": 0.71}) == []


def test_the_docs_section_shows_its_plot() -> None:
    from matplotlib.image import imread

    docs = Path(__file__).resolve().parents[2] / "docs"
    section = (docs / "schedules.md").read_text(encoding="utf-8").split("## Metric-driven decay", 1)[1]
    assert "](img/plateau.png)" in section
    height, width = imread(docs / "img" / "plateau.png").shape[:2]
    assert (width, height) == (800, 300)
