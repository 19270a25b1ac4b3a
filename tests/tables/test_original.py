"""The original's formats through the table path: TwHIN's per-table optimizers as table rules, the
original's TwHIN pattern (apply_optimizer_in_backward with .dict()), and the Heavy Ranker's recap
format with its small embedding tables trained by SGD under the embedding schedule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.original_configs import ExperimentConfig
from tests.tables.table_models import (
    BAGS,
    TableModel,
    all_fused,
    fixed_batch,
    gloo_world,
    head_slice,
    local_rows,
    random_batch,
    shard,
)

from tml.core.config import load_config_from_yaml
from tml.optimizers import OptimizerConfig, apply_table_rules, build_optimizer
from tml.optimizers.config import get_optimizer_algorithm_config
from tml.optimizers.optimizer import get_optimizer_class
from tml.optimizers.tables.original import table_rules_from_optimizers

DATA = Path(__file__).resolve().parents[1] / "data"
TWHIN_TABLES = {"user": 1000, "item": 500}
TWHIN_ROWS = {"user": 7, "item": 2}


def with_rules(dense: OptimizerConfig, rules: list[Any]) -> OptimizerConfig:
    """The translation optimizer with the tables' rules."""
    data = dense.model_dump(exclude_none=True)
    data["embedding_tables"] = [rule.model_dump(exclude_none=True) for rule in rules]
    return OptimizerConfig.model_validate(data)


def step_once(model: Any, rows: dict[str, int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One step on :func:`fixed_batch`; each table's looked-up row before and its gradient."""
    before = {name: local_rows(model, name)[row] for name, row in rows.items()}
    head = model.module.head.weight.detach().clone()[0]
    grads = {name: BAGS * head[head_slice(name, TWHIN_TABLES)] for name in rows}
    model(fixed_batch(rows)).sum().backward()
    return before, grads


def test_twhins_per_table_optimizers_become_one_rule_per_table() -> None:
    experiment = load_config_from_yaml(ExperimentConfig, DATA / "original_experiment.yaml")
    rules = table_rules_from_optimizers(experiment.model.embeddings.tables)
    assert [(rule.name, rule.tables, rule.algorithm().key) for rule in rules] == [
        ("user", ["user"], "exact_sgd"),
        ("item", ["item"], "exact_adagrad"),
    ]
    config = with_rules(experiment.model.translation_optimizer, rules)
    with gloo_world():
        torch.manual_seed(0)
        model = TableModel(tables=TWHIN_TABLES)
        apply_table_rules(model, config)
        sharded = shard(model, all_fused(TWHIN_TABLES))
        optimizer, scheduler = build_optimizer(sharded, config)
        assert [group["name"] for group in optimizer.param_groups] == ["default", "user", "item"]
        optimizer.zero_grad()
        before, grads = step_once(sharded, TWHIN_ROWS)
        optimizer.step()
        after = {name: local_rows(sharded, name)[row] for name, row in TWHIN_ROWS.items()}
        # user: sgd lr 0.02 (its learning_rate); item: adagrad lr 0.1, eps 1e-8, one step from a zero
        # accumulator: w -= lr * g / (|g| + eps)
        torch.testing.assert_close(after["user"], before["user"] - 0.02 * grads["user"], rtol=1e-5, atol=1e-7)
        expected_item = before["item"] - 0.1 * grads["item"] / (grads["item"].abs() + 1e-8)
        torch.testing.assert_close(after["item"], expected_item, rtol=1e-5, atol=1e-7)
        assert scheduler.lrs_by_group() == {"default": 0.05, "user": 0.02, "item": 0.1}


def test_the_real_twhin_config_becomes_table_rules(shared_config: Callable[[str], Path]) -> None:
    experiment = load_config_from_yaml(ExperimentConfig, shared_config("twhin_local.yaml"))
    rules = table_rules_from_optimizers(experiment.model.embeddings.tables)
    assert [(rule.name, rule.algorithm().key, rule.schedule().constant) for rule in rules] == [
        ("user", "exact_sgd", 0.01),
        ("tweet", "exact_sgd", 0.005),
    ]


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        (
            {"sgd": {"lr": 0.1, "momentum": 0.9}},
            r"tables\[0\] 'user'\.optimizer\.sgd\.momentum: the fused kernel runs sgd only with momentum "
            r"0\.0, got 0\.9",
        ),
        ({"adam": {"lr": 0.1, "weight_decay": 0.01}}, r"adam\.weight_decay: .* only with weight_decay 0\.0"),
        ({"rmsprop": {"lr": 0.1}}, r"tables\[0\] 'user'\.optimizer\.rmsprop: FBGEMM's fused kernels run sgd"),
        ({"sgd": {"lr": 0.1}, "param_groups": [{"name": "a", "params": ["*"]}]}, r"not param groups"),
    ],
)
def test_what_the_kernels_cannot_run_is_refused_by_table(optimizer: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table_rules_from_optimizers([("user", OptimizerConfig.model_validate(optimizer))])


def test_the_original_twhin_pattern_still_works() -> None:
    """Per table: apply_optimizer_in_backward(optimizer class, params, .dict()) before sharding, as
    the original did; torchrec builds the kernels from the dict: exact SGD at the table's lr."""
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

    experiment = load_config_from_yaml(ExperimentConfig, DATA / "original_experiment.yaml")
    with gloo_world():
        torch.manual_seed(0)
        model = TableModel(tables=TWHIN_TABLES)
        for table in experiment.model.embeddings.tables:
            apply_optimizer_in_backward(
                get_optimizer_class(table.optimizer),
                model.ebc.embedding_bags[table.name].parameters(),
                get_optimizer_algorithm_config(table.optimizer).dict(),
            )
        sharded = shard(model, all_fused(TWHIN_TABLES))
        before, grads = step_once(sharded, TWHIN_ROWS)
        after = local_rows(sharded, "user")[TWHIN_ROWS["user"]]
        torch.testing.assert_close(after, before["user"] - 0.02 * grads["user"], rtol=1e-5, atol=1e-7)


HEAVY_RANKER_TOWERS = ["recap.engagement.is_favorited", "recap.engagement.is_replied"]


class Ranker(torch.nn.Module):
    """recap's layout: a backbone, one tower per task (module named after it), small embedding tables."""

    def __init__(self) -> None:
        super().__init__()
        self.model = TableModel(tables={"author": 8, "topic": 6})
        self.towers = torch.nn.ModuleDict(
            {task.replace(".", "__"): torch.nn.Linear(1, 1) for task in HEAVY_RANKER_TOWERS}
        )

    def forward(self, features: Any) -> torch.Tensor:
        shared = self.model(features)
        return sum(tower(shared) for tower in self.towers.values())


def test_the_heavy_rankers_small_embeddings_train_with_sgd_under_the_embedding_schedule() -> None:
    """recap's towers and backbone, plus a rule for the small tables: the default planner shards them
    data_parallel, and they are trained by SGD under the rule's schedule in 'embedding_bags.dense'."""
    towers = {task: {"constant": 0.001 * (index + 1)} for index, task in enumerate(HEAVY_RANKER_TOWERS)}
    embedding_schedule = {
        "piecewise_constant": {"learning_rate_boundaries": [1], "learning_rate_values": [0.5, 0.05]}
    }
    config = OptimizerConfig.model_validate(
        {
            "adam": {"betas": [0.95, 0.999], "eps": 1.0e-7},
            "multi_task_learning_rates": {
                "tower_learning_rates": towers,
                "backbone_learning_rate": {"constant": 1e-4},
            },
            "embedding_tables": [
                {
                    "name": "embedding_bags",
                    "tables": ["*"],
                    "exact_sgd": {},
                    "learning_rate": embedding_schedule,
                }
            ],
        }
    )
    with gloo_world():
        torch.manual_seed(0)
        ranker = Ranker()
        apply_table_rules(ranker, config)
        sharded = shard(ranker)
        optimizer, scheduler = build_optimizer(sharded, config)
        assert [group["name"] for group in optimizer.param_groups] == [
            *HEAVY_RANKER_TOWERS,
            "backbone",
            "embedding_bags.dense",
        ]
        (tables,) = [group for group in optimizer.param_groups if group["name"] == "embedding_bags.dense"]
        generator = torch.Generator().manual_seed(0)
        for lr in [0.5, 0.05, 0.05]:  # the embedding schedule at steps 0, 1, 2
            optimizer.zero_grad()
            sharded(random_batch(generator, tables={"author": 8, "topic": 6})).pow(2).sum().backward()
            before = [param.detach().clone() for param in tables["params"]]
            grads = [param.grad.detach().clone() for param in tables["params"]]
            optimizer.step()
            for param, old, grad in zip(tables["params"], before, grads, strict=True):
                assert grad.abs().sum() > 0
                torch.testing.assert_close(param.detach(), old - lr * grad, rtol=0, atol=1e-7)
            scheduler.step()
