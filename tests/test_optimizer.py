"""build_optimizer: the seed's contract and the original's defects, each with a test.

LRShim's own contract (defect 2 among it: any torch optimizer, or a container of several) is tested
in ``tests/runtime/test_lr_shim.py``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.group_models import small_model, train_step

from tml.core.config import load_config_from_yaml
from tml.optimizers import (
    AdagradConfig,
    AdamConfig,
    LearningRate,
    LinearRampToConstant,
    LinearRampToCosine,
    LRShim,
    OptimizerConfig,
    PiecewiseConstant,
    SGDConfig,
    SgdConfig,
    build_optimizer,
    get_optimizer_class,
)

RAMP_COSINE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.05, final_learning_rate=0.001, num_ramp_steps=5, final_num_steps=30
    )
)


# ---------------------------------------------------------------- building the right optimizer


@pytest.mark.parametrize(
    ("config", "torch_class", "expected"),
    [
        (
            OptimizerConfig(adam=AdamConfig(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
            torch.optim.Adam,
            {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
        ),
        (OptimizerConfig(sgd=SgdConfig(lr=0.1, momentum=0.9)), torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        (OptimizerConfig(adagrad=AdagradConfig(lr=0.2)), torch.optim.Adagrad, {"lr": 0.2, "eps": 1e-10}),
    ],
)
def test_builds_the_configured_class(
    config: OptimizerConfig, torch_class: type[torch.optim.Optimizer], expected: dict[str, Any]
) -> None:
    optimizer, scheduler = build_optimizer(small_model(), config)
    assert type(optimizer) is torch_class
    assert get_optimizer_class(config) is torch_class
    group = optimizer.param_groups[0]
    for key, value in expected.items():
        assert group[key] == value, key
    assert isinstance(scheduler, LRShim)
    assert len(optimizer.param_groups) == 1 and group["name"] == "default"


@pytest.mark.parametrize(
    ("text", "torch_class", "expected"),
    [
        (
            "adam: {lr: 0.003, betas: [0.5, 0.9], eps: 1.0e-5}\n",
            torch.optim.Adam,
            {"betas": (0.5, 0.9), "eps": 1e-5},
        ),
        ("sgd: {lr: 0.3, momentum: 0.5}\n", torch.optim.SGD, {"lr": 0.3, "momentum": 0.5}),
        ("adagrad: {lr: 0.4, eps: 1.0e-8}\n", torch.optim.Adagrad, {"lr": 0.4, "eps": 1e-8}),
    ],
)
def test_builds_from_yaml(
    tmp_path: Path, text: str, torch_class: type[torch.optim.Optimizer], expected: dict[str, Any]
) -> None:
    path = tmp_path / "optimizer.yaml"
    path.write_text(text)
    optimizer, _ = build_optimizer(small_model(), load_config_from_yaml(OptimizerConfig, path))
    assert type(optimizer) is torch_class
    for key, value in expected.items():
        assert optimizer.param_groups[0][key] == value


def test_seed_example_trains() -> None:
    # The seed document's example, with its imports added.
    model = small_model()
    optimizer_config = OptimizerConfig(sgd=SGDConfig(lr=LearningRate(constant=0.01)))
    optimizer, scheduler = build_optimizer(model, optimizer_config)
    inputs = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    targets = inputs.sum(dim=1, keepdim=True) / 4
    losses = []
    for _epoch in range(20):
        for start in range(0, 64, 16):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(
                model(inputs[start : start + 16]), targets[start : start + 16]
            )
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    assert sum(losses[-4:]) < 0.5 * sum(losses[:4])


def test_frozen_parameters_are_left_out() -> None:
    model = small_model()
    model[0].weight.requires_grad_(False)
    optimizer, _ = build_optimizer(model, OptimizerConfig(sgd=SgdConfig(lr=0.1)))
    params = optimizer.param_groups[0]["params"]
    assert all(p is not model[0].weight for p in params) and len(params) == 3


def test_model_without_trainable_parameters() -> None:
    model = small_model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        build_optimizer(model, OptimizerConfig(sgd=SgdConfig(lr=0.1)))


# ---------------------------------------------------------------- the original's defects


@pytest.mark.parametrize("key", ["adam", "adagrad"])
def test_defect_1_non_sgd_optimizers_build(key: str) -> None:
    config = OptimizerConfig.model_validate({key: {"lr": 0.01}})
    optimizer, _ = build_optimizer(small_model(), config)
    train_step(small_model(), optimizer, 0)
    assert type(optimizer).__name__.lower() == key


def test_defect_3_no_verbose_and_no_warnings() -> None:
    model = small_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer, scheduler = build_optimizer(model, OptimizerConfig(adam=AdamConfig(lr=0.01)))
        for step in range(5):
            train_step(model, optimizer, step)
            scheduler.step()
        assert scheduler.get_last_lr() == [0.01]


def test_defect_5_piecewise_rejected_at_load() -> None:
    with pytest.raises(ValueError, match="needs len"):
        PiecewiseConstant(learning_rate_boundaries=[1, 2], learning_rate_values=[0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        PiecewiseConstant(learning_rate_boundaries=[2, 1], learning_rate_values=[0.1, 0.2, 0.3])


def test_defect_6_cosine_without_decay_rejected_at_load() -> None:
    with pytest.raises(ValueError, match="final_num_steps must be greater than num_ramp_steps"):
        LinearRampToCosine(learning_rate=0.1, final_learning_rate=0.0, num_ramp_steps=10, final_num_steps=10)


def test_defect_7_adagrad_zero_gradient_stays_finite() -> None:
    # A parameter entry whose gradient is exactly zero: with eps=0 (the original default), 0/0 = NaN.
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer, _ = build_optimizer(
        torch.nn.ParameterList([weight]), OptimizerConfig(adagrad=AdagradConfig(lr=0.1))
    )
    weight.grad = torch.tensor([1.0, 0.0, -1.0])
    optimizer.step()
    assert torch.isfinite(weight).all()
    assert weight[1].item() == 1.0
    # torch itself produces the NaN with eps=0: the defect is real, and our default avoids it.
    raw = torch.nn.Parameter(torch.ones(3))
    raw.grad = torch.tensor([1.0, 0.0, -1.0])
    torch.optim.Adagrad([raw], lr=0.1, eps=0.0).step()
    assert math.isnan(raw[1].item())
    with pytest.raises(ValueError, match="greater than 0"):
        AdagradConfig(lr=0.1, eps=0.0)


@pytest.mark.parametrize("value", [-1e-3, math.inf, math.nan])
def test_defect_8_bad_learning_rates_rejected(value: float) -> None:
    with pytest.raises(ValueError):
        LearningRate(constant=value)
    with pytest.raises(ValueError):
        LinearRampToConstant(learning_rate=value, num_ramp_steps=3)
    assert LearningRate(constant=0.0).constant == 0.0
