"""``LRShim.report``: metric-driven decay per group, against torch's ``ReduceLROnPlateau``, through a
resume in the middle of a patience window, per task tower, and under ``torch.compile``.

Expected LRs are written out here: the schedule's closed form (``compute_lr``) times ``factor`` to
the number of reductions, the reductions read off the metric sequence by hand or by torch's own
scheduler.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import pytest
import torch
import torch._dynamo
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.group_models import (
    METRIC_VALUES,
    TowerModel,
    compile_counting_graphs,
    parameters_equal,
    plateau_settings,
    round_trip,
    torch_plateau,
    tower_batch,
)

from tml.optimizers import LRShim, OptimizerConfig, ResumeError, ResumeWarning, build_optimizer, compute_lr
from tml.optimizers.config import LearningRate, LinearRampToCosine, ReduceOnPlateau
from tml.optimizers.runtime.tensor_lr import use_tensor_lr

COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.1, num_ramp_steps=4, final_learning_rate=0.001, final_num_steps=40
    )
)


def one_group(
    schedule: LearningRate, plateau: ReduceOnPlateau, lr: float = 1.0
) -> tuple[torch.optim.Optimizer, LRShim]:
    optimizer = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "name": "g"}], lr=lr)
    return optimizer, LRShim(optimizer, {"g": schedule}, plateaus={"g": plateau})


# ---------------------------------------------------------------- parity with torch, one group


@settings(max_examples=150, deadline=None)
@given(
    plateau_settings(),
    st.lists(METRIC_VALUES, min_size=1, max_size=40),
    st.sampled_from([1.0, 0.05, 3e-4]),
)
def test_one_group_follows_torchs_reduce_lr_on_plateau(
    settings: dict[str, Any], values: list[float], lr: float
) -> None:
    # torch with eps=0 (its default 1e-8 skips reductions smaller than that: see the next test).
    torch_optimizer, reference = torch_plateau(settings, lr)
    optimizer, scheduler = one_group(LearningRate(constant=lr), ReduceOnPlateau.model_validate(settings))
    for value in values:
        reference.step(value)
        scheduler.step()  # a training step between evaluations: a constant schedule does not move
        scheduler.report({"loss": value})
        state = scheduler.plateau_state()["g"]
        assert (state["best"], state["bad_reports"], state["cooldown_left"]) == (
            reference.best,
            reference.num_bad_epochs,
            reference.cooldown_counter,
        )
        expected = torch_optimizer.param_groups[0]["lr"]
        # torch multiplies the previous LR each time; the closed form takes factor ** n once
        assert math.isclose(optimizer.param_groups[0]["lr"], expected, rel_tol=1e-12), (
            optimizer.param_groups[0]["lr"],
            expected,
        )
        assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]


def test_torchs_eps_stops_reducing_near_1e_8_and_the_closed_form_does_not() -> None:
    settings = {
        "mode": "min",
        "factor": 0.1,
        "patience": 0,
        "threshold": 0.0,
        "threshold_mode": "abs",
        "cooldown": 0,
        "min_learning_rate": 0.0,
    }
    torch_optimizer, reference = torch_plateau(settings, lr=1e-3, eps=1e-8)
    optimizer, scheduler = one_group(LearningRate(constant=1e-3), ReduceOnPlateau(metric="loss", **settings))
    for _ in range(8):  # the first report sets the baseline, each later one reduces
        reference.step(1.0)
        scheduler.report({"loss": 1.0})
    assert math.isclose(torch_optimizer.param_groups[0]["lr"], 1e-8, rel_tol=1e-9)  # 1e-8 -> 1e-9 skipped
    assert optimizer.param_groups[0]["lr"] == 1e-3 * 0.1**7


# ---------------------------------------------------------------- the closed form over a schedule


def test_reductions_multiply_the_schedule_from_their_step_on() -> None:
    plateau = ReduceOnPlateau(metric="loss", factor=0.5, patience=1, threshold=0.0, threshold_mode="abs")
    optimizer, scheduler = one_group(COSINE, plateau)
    # one report per step: improving up to step 3, then flat: bad at 4 and 5, reduce at 5; bad at 6,
    # reduce at 7; an improvement at 8; flat again: reduce at 10.
    losses = {1: 3.0, 2: 2.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 1.0, 8: 0.5, 9: 0.5, 10: 0.5}
    reductions_at = [5, 7, 10]
    for step in range(1, 16):
        scheduler.step()
        if step in losses:
            reduced = scheduler.report({"loss": losses[step]})
            assert reduced == (["g"] if step in reductions_at else [])
        count = sum(1 for at in reductions_at if at <= step)
        assert optimizer.param_groups[0]["lr"] == compute_lr(COSINE, step) * 0.5**count, step
    assert scheduler.plateau_state()["g"]["reductions"] == reductions_at


def test_the_floor_applies_to_the_reduced_lr_and_never_lifts_a_warmup() -> None:
    plateau = ReduceOnPlateau(
        metric="loss", factor=0.1, patience=0, threshold=0.0, threshold_mode="abs", min_learning_rate=0.02
    )
    optimizer, scheduler = one_group(COSINE, plateau)
    scheduler.report({"loss": 1.0})  # step 0: the baseline (the warmup's LR is 0)
    scheduler.report({"loss": 1.0})  # a reduction at step 0
    assert optimizer.param_groups[0]["lr"] == 0.0  # 0 reduced is 0, not the floor
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == max(0.025 * 0.1, min(0.025, 0.02))  # 0.02, the floor
    scheduler.step()
    scheduler.step()
    scheduler.step()  # step 4: the peak, 0.1
    assert optimizer.param_groups[0]["lr"] == max(0.1 * 0.1, 0.02)


def test_lr_multipliers_scale_before_the_floor() -> None:
    optimizer = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "name": name} for name in ("a", "b")], lr=1.0
    )
    plateau = ReduceOnPlateau(metric="loss", factor=0.5, patience=0, min_learning_rate=0.03)
    scheduler = LRShim(
        optimizer,
        {"a": LearningRate(constant=0.1), "b": LearningRate(constant=0.1)},
        lr_multipliers={"b": 0.5},
        plateaus={"a": plateau, "b": plateau},
    )
    for _ in range(3):
        scheduler.report({"loss": 1.0})
    # two reductions: a = max(0.1 / 4, 0.03), b = max(0.05 / 4, 0.03)
    assert [group["lr"] for group in optimizer.param_groups] == [0.03, 0.03]
    assert scheduler.get_last_lr() == [0.03, 0.03]


# ---------------------------------------------------------------- per group, each its own metric

TASKS = ["engagement", "like"]


def tower_config(**overrides: Any) -> OptimizerConfig:
    engagement = {
        "metric": "engagement_loss",
        "factor": 0.5,
        "patience": 1,
        "threshold": 0.0,
        "threshold_mode": "abs",
    }
    return OptimizerConfig.model_validate(
        {
            "adamw": {"lr": 0.01, "weight_decay": 0.0},
            "reduce_on_plateau": {"metric": "loss", "factor": 0.1, "patience": 2},
            "param_groups": [
                {"name": "engagement", "params": ["towers.engagement.*"], "reduce_on_plateau": engagement},
                {
                    "name": "like",
                    "params": ["towers.like.*"],
                    "reduce_on_plateau": {"metric": "like_loss", "patience": 0},
                },
                {
                    "name": "embeddings",
                    "params": ["embedding.*"],
                    "sgd": {"lr": 0.1},
                    "reduce_on_plateau": False,
                },
            ],
            **overrides,
        }
    )


def evaluation(step: int) -> dict[str, float]:
    """Metrics by step: engagement stalls from step 3, like keeps improving, the total loss too."""
    return {
        "engagement_loss": max(1.0 - 0.1 * step, 0.7),
        "like_loss": 1.0 - 0.05 * step,
        "loss": 2.0 - 0.1 * step,
        "auc": 0.5 + 0.01 * step,  # no group uses it: ignored
    }


def lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {group["name"]: float(group["lr"]) for group in optimizer.param_groups}


def test_each_tower_reacts_to_its_own_metric() -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config())
    history = []
    for step in range(8):
        optimizer.zero_grad()
        model(tower_batch(step)).square().mean().backward()
        optimizer.step()
        scheduler.step()
        scheduler.report(evaluation(step))
        history.append(lrs(optimizer))
    # engagement_loss: 1.0, 0.9, 0.8, 0.7, then 0.7 at steps 4.. : bad at 4 and 5, reduce at 5 (patience
    # 1); bad at 6, reduce at 7.
    assert [entry["engagement"] for entry in history] == [0.01] * 5 + [0.005] * 2 + [0.0025]
    assert scheduler.plateau_state()["engagement"]["reductions"] == [6, 8]  # positions after step()
    assert all(entry["like"] == 0.01 for entry in history)  # improves by more than 1e-4 each time
    assert all(entry["default"] == 0.01 for entry in history)  # the backbone, on the total loss
    assert all(entry["embeddings"] == 0.1 for entry in history)  # opted out
    assert set(scheduler.plateau_state()) == {"engagement", "like", "default"}


def test_a_report_without_a_groups_metric_names_the_group_and_changes_nothing() -> None:
    model = TowerModel(TASKS)
    _, scheduler = build_optimizer(model, tower_config())
    before = scheduler.plateau_state()
    metrics = evaluation(0)
    del metrics["like_loss"]
    with pytest.raises(
        KeyError,
        match=r"param group 'like' reduces its LR on the plateaus of 'like_loss', "
        r"which this report lacks \(it has: 'engagement_loss', 'loss', 'auc'\)",
    ):
        scheduler.report(metrics)
    assert scheduler.plateau_state() == before  # engagement's tracker did not move either


REPORT_ERRORS: list[tuple[Any, type[Exception], str]] = [
    (
        {"engagement_loss": "0.4", "like_loss": 1.0, "loss": 1.0},
        TypeError,
        r"metric 'engagement_loss': expected a number, got str '0\.4'",
    ),
    (
        {"engagement_loss": True, "like_loss": 1.0, "loss": 1.0},
        TypeError,
        r"metric 'engagement_loss': expected a number, got bool True",
    ),
    (
        {"engagement_loss": torch.ones(3), "like_loss": 1.0, "loss": 1.0},
        TypeError,
        r"metric 'engagement_loss': expected a number, got a tensor of shape \[3\] \(reduce it to one value",
    ),
    (
        [("loss", 0.4)],
        TypeError,
        r"report takes a mapping of metric name -> value, e\.g\. "
        r"scheduler\.report\(\{'engagement_loss': 0\.41\}\), got list",
    ),
    (0.4, TypeError, r"report takes a mapping .* got float"),
]


@pytest.mark.parametrize(("metrics", "kind", "message"), REPORT_ERRORS)
def test_refused_reports(metrics: Any, kind: type[Exception], message: str) -> None:
    _, scheduler = build_optimizer(TowerModel(TASKS), tower_config())
    before = scheduler.plateau_state()
    with pytest.raises(kind, match=message):
        scheduler.report(metrics)
    assert scheduler.plateau_state() == before


def test_numbers_of_every_kind_are_taken() -> None:
    import numpy as np

    _, scheduler = build_optimizer(TowerModel(TASKS), tower_config())
    scheduler.report({"engagement_loss": torch.tensor(0.5), "like_loss": np.float32(0.25), "loss": 1})
    state = scheduler.plateau_state()
    assert (state["engagement"]["best"], state["like"]["best"], state["default"]["best"]) == (0.5, 0.25, 1.0)


def test_a_report_without_a_plateau_changes_nothing_and_step_with_a_metric_is_refused() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    plain = LRShim(optimizer, {"default": COSINE})
    plain.step()
    before = plain.state_dict()
    assert plain.report({"loss": 0.4}) == []  # the same loop serves configs without reduce_on_plateau
    assert plain.state_dict() == before and "plateau" not in before
    assert optimizer.param_groups[0]["lr"] == compute_lr(COSINE, 1)
    with pytest.raises(TypeError, match=r"report takes a mapping of metric name -> value, got float"):
        plain.report(0.4)  # type: ignore[arg-type]
    _, scheduler = one_group(COSINE, ReduceOnPlateau(metric="loss"))
    with pytest.raises(TypeError, match=r"LRShim\.step\(\) takes no metric \(got float\).*scheduler\.report"):
        scheduler.step(0.41)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes no metric \(got Tensor\)"):
        scheduler.step(torch.tensor(0.41))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes no epoch"):
        scheduler.step(3)
    with pytest.raises(ValueError, match=r"plateaus names groups that lr_dict does not have: \['h'\]"):
        LRShim(optimizer, {"default": COSINE}, plateaus={"h": ReduceOnPlateau(metric="loss")})


# ---------------------------------------------------------------- resume


def run(config: OptimizerConfig, steps: range, model: TowerModel, optimizer: Any, scheduler: LRShim) -> None:
    for step in steps:
        optimizer.zero_grad()
        model(tower_batch(step)).square().mean().backward()
        optimizer.step()
        scheduler.step()
        scheduler.report(evaluation(step))


def test_a_resume_in_the_middle_of_a_patience_window_is_bit_identical() -> None:
    config = tower_config()
    torch.manual_seed(0)
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, config)
    run(config, range(5), model, optimizer, scheduler)
    # engagement: one bad report (step 4) of the 2 that reduce: inside its patience window
    assert scheduler.plateau_state()["engagement"]["bad_reports"] == 1
    saved = round_trip(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
    )
    run(config, range(5, 10), model, optimizer, scheduler)

    torch.manual_seed(1)
    resumed = TowerModel(TASKS)
    resumed_optimizer, resumed_scheduler = build_optimizer(resumed, config)
    resumed.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed_scheduler.load_state_dict(saved["scheduler"])
    run(config, range(5, 10), resumed, resumed_optimizer, resumed_scheduler)
    assert parameters_equal(resumed, model)
    assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert resumed_scheduler.plateau_state() == scheduler.plateau_state()
    # the reduction that the resumed tracker had to remember did happen (at step 5, position 6)
    assert scheduler.plateau_state()["engagement"]["reductions"][0] == 6


def test_a_lost_tracker_would_show() -> None:
    # The control of the resume test: the same resume with the trackers restarted reduces later.
    config = tower_config()
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, config)
    run(config, range(5), model, optimizer, scheduler)
    saved = round_trip(scheduler.state_dict())
    run(config, range(5, 10), model, optimizer, scheduler)
    forgetful = build_optimizer(TowerModel(TASKS), config)[1]
    saved["plateau"]["engagement"].update(bad_reports=0)
    forgetful.load_state_dict(saved)
    for step in range(5, 10):
        forgetful.step()
        forgetful.report(evaluation(step))
    assert (
        forgetful.plateau_state()["engagement"]["reductions"]
        != scheduler.plateau_state()["engagement"]["reductions"]
    )


def test_the_saved_state_is_plain_data_and_loads_through_json() -> None:
    import json

    _, scheduler = build_optimizer(TowerModel(TASKS), tower_config())
    scheduler.report({"engagement_loss": math.inf, "like_loss": -math.inf, "loss": math.nan})
    state = scheduler.state_dict()
    assert state["plateau"]["default"] == {
        "metric": "loss",
        "mode": "min",
        "best": math.inf,  # a NaN never improves
        "bad_reports": 1,
        "cooldown_left": 0,
        "reductions": [],
    }
    again = json.loads(json.dumps(state))
    other = build_optimizer(TowerModel(TASKS), tower_config())[1]
    other.load_state_dict(again)
    assert other.plateau_state() == scheduler.plateau_state()


def test_strict_refuses_another_plateau_setting_and_config_applies_it() -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config())
    run(tower_config(), range(8), model, optimizer, scheduler)
    saved = round_trip({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
    changed = tower_config(reduce_on_plateau={"metric": "loss", "factor": 0.5, "patience": 2})
    target_optimizer, target_scheduler = build_optimizer(TowerModel(TASKS), changed)
    factor_line = r"group 'default': reduce_on_plateau\.factor: 0\.1 in the checkpoint, 0\.5 here"
    with pytest.raises(ResumeError, match=factor_line):
        target_optimizer.load_state_dict(saved["optimizer"])
    with pytest.raises(
        ValueError, match=r"group 'default': .*'factor': 0\.1.* in the checkpoint, .*'factor': 0\.5"
    ):
        target_scheduler.load_state_dict(saved["scheduler"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResumeWarning)
        target_scheduler.load_state_dict(saved["scheduler"], policy="config")
    assert not caught  # the same metric and mode: the trackers and reductions are kept as saved
    assert target_scheduler.plateau_state() == scheduler.plateau_state()
    assert lrs(target_optimizer)["engagement"] == 0.0025  # engagement's setting is unchanged


def test_under_config_a_new_metric_restarts_its_tracker_and_a_removed_plateau_drops_its_reductions() -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config())
    run(tower_config(), range(8), model, optimizer, scheduler)
    saved = round_trip(scheduler.state_dict())
    changed = tower_config(
        param_groups=[
            {
                "name": "engagement",
                "params": ["towers.engagement.*"],
                "reduce_on_plateau": {"metric": "engagement_auc", "mode": "max"},
            },
            {"name": "like", "params": ["towers.like.*"], "reduce_on_plateau": False},
            {"name": "embeddings", "params": ["embedding.*"], "sgd": {"lr": 0.1}, "reduce_on_plateau": False},
        ]
    )
    _, target = build_optimizer(TowerModel(TASKS), changed)
    with pytest.warns(ResumeWarning) as caught:
        target.load_state_dict(saved, policy="config")
    text = str(caught[0].message)
    assert (
        "group 'engagement': the plateau tracker of 'engagement_loss' (min) restarts for "
        "'engagement_auc' (max); its reductions are kept" in text
    )
    state = target.plateau_state()
    assert state["engagement"]["reductions"] == [6, 8] and state["engagement"]["best"] == -math.inf
    assert "like" not in state
    # like had no reduction: nothing to report for it; its LR is its schedule's
    assert "'like'" not in text
    assert target.get_last_lr()[0] == 0.01 * 0.1**2  # engagement: two reductions, the new factor 0.1


def test_restart_from_restarts_the_plateaus_too() -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config())
    run(tower_config(), range(8), model, optimizer, scheduler)
    _, target = build_optimizer(TowerModel(TASKS), tower_config())
    target.restart_from(scheduler.state_dict(), step=0)
    assert all(
        entry["reductions"] == [] and entry["bad_reports"] == 0 for entry in target.plateau_state().values()
    )
    assert target.get_last_lr() == [0.01, 0.01, 0.1, 0.01]


MALFORMED: list[tuple[Any, str]] = [
    ({"best": "x"}, r"has best 'x', not a number"),
    ({"bad_reports": -1}, r"has bad_reports -1, not a count"),
    ({"reductions": [3, 1]}, r"has reductions \[3, 1\] that are not sorted steps within 0\.\.5"),
    ({"reductions": [9]}, r"has reductions \[9\] that are not sorted steps within 0\.\.5"),
    ({"mode": "least"}, r"has metric 'engagement_loss' and mode 'least'"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_a_malformed_plateau_state_is_refused_and_changes_nothing(
    change: dict[str, Any], message: str
) -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config())
    run(tower_config(), range(5), model, optimizer, scheduler)
    state = scheduler.state_dict()
    state["plateau"]["engagement"].update(change)
    _, target = build_optimizer(TowerModel(TASKS), tower_config())
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"the checkpoint's plateau state of group 'engagement' " + message):
        target.load_state_dict(state)
    assert target.state_dict() == before


def test_optimizer_steps_position_records_reductions_at_optimizer_steps() -> None:
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, tower_config(schedule_position="optimizer_steps"))
    for step in range(8):
        for _ in range(2):
            scheduler.step()  # harmless: the position is the optimizer's steps
        optimizer.zero_grad()
        model(tower_batch(step)).square().mean().backward()
        optimizer.step()
        scheduler.report(evaluation(step))
    assert scheduler.plateau_state()["engagement"]["reductions"] == [6, 8]


# ---------------------------------------------------------------- torch.compile: 0 recompiles


def test_reductions_under_a_compiled_step_with_tensor_lr_do_not_recompile() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, foreach=False)
    use_tensor_lr(optimizer)
    lr_tensor = optimizer.param_groups[0]["lr"]
    plateau = ReduceOnPlateau(metric="loss", factor=0.5, patience=2, threshold=0.0, threshold_mode="abs")
    scheduler = LRShim(optimizer, {"default": COSINE}, plateaus={"default": plateau})
    compiled_step, graphs = compile_counting_graphs(optimizer.step)
    generator = torch.Generator().manual_seed(1)
    seen = []
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(30):
            seen.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.zero_grad()
            model(torch.randn(8, 4, generator=generator)).square().mean().backward()
            compiled_step()
            scheduler.step()
            scheduler.report({"loss": 1.0})  # flat: a reduction every 3 reports after the first
    torch._dynamo.reset()
    assert len(graphs) == 1
    assert optimizer.param_groups[0]["lr"] is lr_tensor  # written in place
    reductions = [4, 7, 10, 13, 16, 19, 22, 25, 28]  # positions: report k at position k, k = 1, 2, ...
    assert scheduler.plateau_state()["default"]["reductions"] == reductions
    expected = [compute_lr(COSINE, step) * 0.5 ** sum(at <= step for at in reductions) for step in range(30)]
    assert seen == expected


def test_the_config_records_go_into_the_optimizers_fingerprint() -> None:
    rules = tower_config().model_dump(mode="json", exclude_none=True)["param_groups"]
    rules[2].pop("sgd")  # one torch optimizer, whose state_dict has the groups
    optimizer, _ = build_optimizer(TowerModel(TASKS), tower_config(param_groups=rules))
    records = {group["name"]: group["tml_resume"] for group in optimizer.state_dict()["param_groups"]}
    assert re.search(r'"reduce_on_plateau": \{[^}]*"metric": "engagement_loss"', records["engagement"])
    assert "reduce_on_plateau" not in records["embeddings"]


def test_a_dcp_checkpoint_keeps_the_plateau_and_reports_a_config_change_once(tmp_path: Any) -> None:
    from tml.optimizers.distributed import CheckpointError, load_checkpoint, save_checkpoint

    config = tower_config()
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, config)
    run(config, range(5), model, optimizer, scheduler)
    path = save_checkpoint(tmp_path, 5, model, optimizer, scheduler, config=config)
    run(config, range(5, 10), model, optimizer, scheduler)

    resumed = TowerModel(TASKS)
    resumed_optimizer, resumed_scheduler = build_optimizer(resumed, config)
    load_checkpoint(path, resumed, resumed_optimizer, resumed_scheduler, config=config)
    run(config, range(5, 10), resumed, resumed_optimizer, resumed_scheduler)
    assert parameters_equal(resumed, model)
    assert resumed_scheduler.plateau_state() == scheduler.plateau_state()

    changed = tower_config(reduce_on_plateau={"metric": "total_loss", "factor": 0.1, "patience": 2})
    target = TowerModel(TASKS)
    target_optimizer, target_scheduler = build_optimizer(target, changed)
    with pytest.raises(
        CheckpointError, match=r"reduce_on_plateau\.metric: 'loss' in the checkpoint, 'total_loss' here"
    ):
        load_checkpoint(path, target, target_optimizer, target_scheduler, config=changed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResumeWarning)
        load_checkpoint(path, target, target_optimizer, target_scheduler, config=changed, policy="config")
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, ResumeWarning)]
    assert len(messages) == 1, messages
    assert (
        "group 'default': the plateau tracker of 'loss' (min) restarts for 'total_loss' (min)" in messages[0]
    )
    assert (
        "group 'default': reduce_on_plateau.metric: 'loss' in the checkpoint, 'total_loss' here"
        in messages[0]
    )
