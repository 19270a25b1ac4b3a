"""The real configs from the field (Heavy Ranker, TwHIN) and the multi-task example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import torch
import yaml
from tests.conftest import SHARED_DATA as DATA
from tests.group_models import TowerModel, tower_batch, train

from tml.core.config import load_config_from_yaml
from tml.optimizers import CombinedOptimizer, LearningRate, OptimizerConfig, build_optimizer, compute_lr

HEAVY_RANKER = DATA / "heavy_ranker_optimizer.yaml"
TWHIN = DATA / "twhin_local.yaml"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_task_towers.yaml"

needs_data = pytest.mark.skipif(
    not HEAVY_RANKER.is_file(), reason="the shared configs are not on this machine"
)


def heavy_ranker_document() -> dict[str, Any]:
    return yaml.safe_load(HEAVY_RANKER.read_text())


@needs_data
def test_heavy_ranker_config_loads_as_it_stands() -> None:
    document = heavy_ranker_document()
    config = OptimizerConfig(**document["optimizer"])
    adam = document["optimizer"]["adam"]
    assert config.adam is not None
    assert config.adam.betas == (adam["beta_1"], adam["beta_2"]) and config.adam.eps == adam["epsilon"]
    towers = document["optimizer"]["multi_task_learning_rates"]["tower_learning_rates"]
    assert len(towers) == 10
    assert [spec.name for spec in config.group_specs()] == [*towers, "backbone"]


@needs_data
def test_heavy_ranker_trains_ten_towers_each_on_its_own_schedule() -> None:
    document = heavy_ranker_document()["optimizer"]
    tasks = list(document["multi_task_learning_rates"]["tower_learning_rates"])
    schedules = {
        task: LearningRate(**schedule)
        for task, schedule in document["multi_task_learning_rates"]["tower_learning_rates"].items()
    }
    schedules["backbone"] = LearningRate(**document["multi_task_learning_rates"]["backbone_learning_rate"])
    torch.manual_seed(0)
    model = TowerModel(tasks)
    optimizer, scheduler = build_optimizer(model, OptimizerConfig(**document))
    assert type(optimizer) is torch.optim.Adam  # recap: Adam everywhere, one group per tower
    assert [group["name"] for group in optimizer.param_groups] == [*tasks, "backbone"]

    # recap's rule, computed here: a tower's parameters contain ".<task with . -> __>."
    expected_members: dict[str, set[int]] = {name: set() for name in [*tasks, "backbone"]}
    for name, parameter in model.named_parameters():
        owners = [task for task in tasks if "." + task.replace(".", "__") + "." in name]
        expected_members[owners[0] if owners else "backbone"].add(id(parameter))
    for group in optimizer.param_groups:
        assert {id(p) for p in group["params"]} == expected_members[group["name"]]
        assert group["betas"] == (0.95, 0.999) and group["eps"] == 1e-7

    def check(step: int) -> None:
        for group in optimizer.param_groups:
            assert group["lr"] == compute_lr(schedules[group["name"]], step), (group["name"], step)

    check(0)
    train(model, optimizer, scheduler, range(30), tower_batch, on_step=lambda step: check(step + 1))
    distinct = {group["lr"] for group in optimizer.param_groups}
    assert len(distinct) > 5  # the towers really are on different schedules


def test_recap_single_task_and_numeric_backbone_forms() -> None:
    single = OptimizerConfig(adam={"beta_1": 0.9}, single_task_learning_rate={"constant": 0.01})
    model = TowerModel(["a"])
    optimizer, _ = build_optimizer(model, single)
    assert [group["name"] for group in optimizer.param_groups] == ["single_task"]
    assert optimizer.param_groups[0]["lr"] == 0.01

    numeric = OptimizerConfig(
        adam={"lr": 0.003}, multi_task_learning_rates={"tower_learning_rates": {"a": {"constant": 0.1}}}
    )
    optimizer, _ = build_optimizer(model, numeric)
    assert {group["name"]: group["lr"] for group in optimizer.param_groups} == {"a": 0.1, "backbone": 0.003}


RECAP_ERRORS: list[tuple[dict[str, Any], str]] = [
    (
        {"adam": {}, "multi_task_learning_rates": {"tower_learning_rates": {"a": {"constant": 0.1}}}},
        "the backbone needs a schedule: set backbone_learning_rate",
    ),
    ({"adam": {}, "multi_task_learning_rates": {"tower_learning_rates": {}}}, "needs at least one tower"),
    (
        {
            "adam": {"lr": 0.1},
            "multi_task_learning_rates": {"tower_learning_rates": {"backbone": {"constant": 0.1}}},
        },
        "a task cannot be named 'backbone'",
    ),
    (
        {
            "adam": {"lr": 0.1},
            "multi_task_learning_rates": {
                "tower_learning_rates": {"a.b": {"constant": 0.1}, "a__b": {"constant": 0.1}}
            },
        },
        "tasks 'a.b' and 'a__b' have the same module name 'a__b'",
    ),
    ({"adam": {"beta_1": 0.9, "betas": [0.9, 0.99], "lr": 0.1}}, "give betas or beta_1"),
    ({"adam": {"epsilon": 1e-6, "eps": 1e-7, "lr": 0.1}}, "give eps or epsilon"),
    ({"adam": {"beta_2": 1.0, "lr": 0.1}}, "less than 1"),
    (
        {"adam": {}, "learning_rate": {"constant": 0.1}, "single_task_learning_rate": {"constant": 0.1}},
        "at most one of learning_rate, multi_task_learning_rates, single_task_learning_rate",
    ),
]


@pytest.mark.parametrize(("bad", "message"), RECAP_ERRORS)
def test_bad_recap_configs_fail_at_load(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        OptimizerConfig(**bad)


def test_a_parameter_claimed_by_two_towers_is_an_error_as_in_recap() -> None:
    model = torch.nn.Module()
    model.towers = torch.nn.ModuleDict({"a": torch.nn.ModuleDict({"b": torch.nn.Linear(2, 2)})})
    config = OptimizerConfig(
        adam={"lr": 0.1},
        multi_task_learning_rates={"tower_learning_rates": {"a": {"constant": 0.1}, "b": {"constant": 0.2}}},
    )
    with pytest.raises(ValueError, match=r"'towers.a.b.weight' is matched by both .*'a'.* and .*'b'"):
        build_optimizer(model, config)


def test_a_tower_that_matches_no_parameter_is_an_error() -> None:
    config = OptimizerConfig(
        adam={"lr": 0.1},
        multi_task_learning_rates={"tower_learning_rates": {"recap.typo": {"constant": 0.1}}},
    )
    with pytest.raises(ValueError, match=r"tower_learning_rates\['recap.typo'\]: none of its patterns"):
        build_optimizer(TowerModel(["recap.engagement"]), config)


@pytest.mark.skipif(not TWHIN.is_file(), reason="the shared configs are not on this machine")
def test_twhin_optimizer_blocks_load_and_build_unchanged() -> None:
    model_section = yaml.safe_load(TWHIN.read_text())["model"]
    blocks = [model_section["translation_optimizer"]] + [
        table["optimizer"] for table in model_section["embeddings"]["tables"]
    ]
    assert len(blocks) == 3
    for block in blocks:
        config = OptimizerConfig(**block)
        optimizer, scheduler = build_optimizer(torch.nn.Embedding(4, 2), config)
        assert type(optimizer) is torch.optim.SGD
        assert optimizer.param_groups[0]["lr"] == block["learning_rate"]["constant"] == block["sgd"]["lr"]
        assert scheduler.group_names == ["default"]
    loaded = load_config_from_yaml(OptimizerConfig, TWHIN, key="model.translation_optimizer")
    assert loaded.schedule().constant == 0.05


def test_multi_task_example_trains_each_tower_on_its_own_schedule() -> None:
    config = load_config_from_yaml(OptimizerConfig, EXAMPLE, key="optimizer")
    tasks = ["is_favorited", "is_replied", "is_retweeted"]
    torch.manual_seed(0)
    model = TowerModel(tasks)
    optimizer, scheduler = build_optimizer(model, config)
    assert isinstance(optimizer, CombinedOptimizer)
    assert [group["name"] for group in optimizer.param_groups] == [*tasks, "backbone", "embeddings"]
    assert [type(child) for child in optimizer.optimizers] == [torch.optim.Adam, torch.optim.SGD]

    document = yaml.safe_load(EXAMPLE.read_text())["optimizer"]
    rules = {rule["name"]: rule for rule in document["param_groups"]}
    default = LearningRate(**document["learning_rate"])

    def expected_lr(name: str, step: int) -> float:
        rule = rules[name]
        if "learning_rate" in rule:
            return compute_lr(LearningRate(**rule["learning_rate"]), step)
        return rule.get("lr_multiplier", 1.0) * compute_lr(default, step)

    members = {
        "embeddings": {id(model.embedding.weight)},
        "backbone": {id(p) for p in model.backbone.parameters()},
        **{task: {id(p) for p in model.towers[task].parameters()} for task in tasks},
    }

    def check(step: int) -> None:
        for group in optimizer.param_groups:
            assert {id(p) for p in group["params"]} == members[group["name"]]
            assert group["lr"] == expected_lr(group["name"], step), (group["name"], step)

    check(0)
    before = model.embedding.weight.detach().clone()
    train(model, optimizer, scheduler, range(25), tower_batch, on_step=lambda step: check(step + 1))
    assert not torch.equal(before, model.embedding.weight)
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert groups["backbone"]["weight_decay"] == 1e-5 and groups["is_replied"]["weight_decay"] == 0.0
