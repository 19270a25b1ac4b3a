"""``plan_optimizer``: every decision made before anything is built, and the builders follow it."""

from __future__ import annotations

import torch

from tml.optimizers import OptimizerConfig, build_optimizer, compute_lr
from tml.optimizers.plan import plan_optimizer
from tml.optimizers.runtime.flat import FlatOptimizer

CONFIG = {
    "adam": {"lr": 0.01, "weight_decay": 0.1},
    "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.01, "num_ramp_steps": 10}},
    "param_groups": [
        {"name": "head", "params": ["2.*"], "sgd": {"lr": 0.5, "momentum": 0.9}, "lr_multiplier": 2.0},
        {"name": "first", "params": ["0.weight"], "hyperparameters": {"weight_decay": 0.0}},
    ],
}


def model() -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def test_the_plan_lists_the_groups_classes_and_keywords_in_rule_order() -> None:
    net = model()
    plan = plan_optimizer(net, OptimizerConfig.model_validate(CONFIG))
    assert [group.name for group in plan.groups] == ["head", "first", "default"]
    sgd, adam = plan.optimizers  # in the order of their first group
    assert (sgd.torch_class, [group.name for group in sgd.groups]) == (torch.optim.SGD, ["head"])
    assert (adam.torch_class, [group.name for group in adam.groups]) == (
        torch.optim.Adam,
        ["first", "default"],
    )
    head, first, default = (*sgd.param_groups, *adam.param_groups)
    assert head["params"] == [net[2].weight, net[2].bias]
    assert head["lr"] == 2.0 * 0.5 and head["momentum"] == 0.9
    assert first["params"] == [net[0].weight] and first["weight_decay"] == 0.0
    assert default["params"] == [net[0].bias] and default["weight_decay"] == 0.1
    assert first["lr"] == default["lr"] == 0.0  # the ramp's value at step 0
    assert adam.lr > 0  # a warmup's 0 is not given to the constructor (SparseAdam refuses it)
    assert plan.schedules()["head"].constant == 0.5
    assert plan.lr_multipliers() == {"head": 2.0, "first": 1.0, "default": 1.0}


def test_making_a_plan_changes_nothing_and_the_build_follows_it() -> None:
    net = model()
    config = OptimizerConfig.model_validate({"adam": {"lr": 0.01, "flatten": True}})
    before = [(parameter.data_ptr(), parameter.grad) for parameter in net.parameters()]
    plan = plan_optimizer(net, config)
    assert [(parameter.data_ptr(), parameter.grad) for parameter in net.parameters()] == before
    (planned,) = plan.optimizers
    assert planned.flatten and planned.param_groups[0]["fused"] is True
    optimizer, scheduler = build_optimizer(net, config)
    assert isinstance(optimizer, FlatOptimizer)
    pointers = [parameter.data_ptr() for parameter in net.parameters()]
    assert pointers != [pointer for pointer, _ in before]  # now views into one flat buffer
    assert pointers == sorted(pointers)
    assert optimizer.param_groups[0]["lr"] == compute_lr(config.schedule(), 0)
    assert scheduler.lr_dict == plan.schedules()
