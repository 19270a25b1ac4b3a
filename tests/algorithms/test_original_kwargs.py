"""The original's construction patterns: ``optimizer_class(params, **algorithm_config.dict())``.

``.dict()`` / ``.json()`` of an algorithm config give the keyword arguments the original passed to
the torch class (``lr`` and its config's fields), plus those set explicitly; never a speed field or
a schedule. ``get_optimizer_algorithm_config(config).lr`` is a number where the config gives one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tests.original_configs import DATA, ExperimentConfig

from tml.core.config import load_config_from_yaml
from tml.optimizers import LRShim, build_optimizer
from tml.optimizers.algorithms import ALGORITHMS
from tml.optimizers.config import (
    AdagradConfig,
    AdamConfig,
    CustomOptimizerConfig,
    LearningRate,
    OptimizerConfig,
    SgdConfig,
    get_optimizer_algorithm_config,
)
from tml.optimizers.optimizer import get_optimizer_class

SPEED = {"implementation": "for_loop", "flatten": True, "tensor_lr": True}

# (config, the keyword arguments of the original's .dict())
ORIGINAL_KWARGS: list[tuple[Any, dict[str, Any]]] = [
    (SgdConfig(lr=0.1), {"lr": 0.1, "momentum": 0.0}),
    (SgdConfig(lr=0.1, momentum=0.9, **SPEED), {"lr": 0.1, "momentum": 0.9}),
    # set explicitly, and taken by torch.optim.SGD: passed; left at torch's default: not
    (SgdConfig(lr=0.1, momentum=0.9, nesterov=True), {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (AdamConfig(lr=0.001), {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    (AdamConfig(lr=0.001, beta_1=0.95, epsilon=1e-6), {"lr": 0.001, "betas": (0.95, 0.999), "eps": 1e-6}),
    (
        AdamConfig(lr=0.001, amsgrad=True, **SPEED),
        {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "amsgrad": True},
    ),
    (AdagradConfig(lr=0.01), {"lr": 0.01, "eps": 1e-10}),
    (AdagradConfig(lr=0.01, weight_decay=0.1), {"lr": 0.01, "eps": 1e-10, "weight_decay": 0.1}),
    # a schedule as lr: its value at step 0 (a ramp starts at 0, a piecewise constant at its first value)
    (
        SgdConfig(lr={"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 10}}),
        {"lr": 0.0, "momentum": 0.0},
    ),
    (
        SgdConfig(
            lr={"piecewise_constant": {"learning_rate_boundaries": [5], "learning_rate_values": [0.3, 0.1]}}
        ),
        {"lr": 0.3, "momentum": 0.0},
    ),
    (SgdConfig(), {"momentum": 0.0}),  # no lr given: none passed (the schedule is the optimizer config's)
    (
        CustomOptimizerConfig(class_path="torch.optim:Adam", lr=0.1, kwargs={"amsgrad": True}),
        {"lr": 0.1, "amsgrad": True},
    ),
]


@pytest.mark.parametrize(("config", "expected"), ORIGINAL_KWARGS)
def test_dict_and_json_give_the_original_constructor_kwargs(config: Any, expected: dict[str, Any]) -> None:
    assert config.dict() == expected
    assert json.loads(config.json()) == json.loads(json.dumps(expected))
    assert set(config.model_dump()) == set(type(config).model_fields)  # model_dump stays complete
    optimizer = config.torch_class()([torch.nn.Parameter(torch.zeros(2))], **config.dict())
    for name, value in expected.items():
        assert optimizer.param_groups[0][name] == value


def test_dict_takes_pydantic_1_arguments() -> None:
    config = SgdConfig(lr=0.1, momentum=0.9, nesterov=True)
    assert config.dict(include={"lr"}) == {"lr": 0.1}
    assert config.dict(exclude={"lr"}) == {"momentum": 0.9, "nesterov": True}
    assert SgdConfig(lr=0.1).dict(exclude_defaults=True) == {"lr": 0.1}
    assert SgdConfig(lr=0.1).dict(exclude_unset=True) == {"lr": 0.1}
    assert json.loads(config.json(indent=2)) == {"lr": 0.1, "momentum": 0.9, "nesterov": True}


@pytest.mark.parametrize("key", sorted(ALGORITHMS))
def test_every_algorithm_builds_its_torch_class_from_dict(key: str) -> None:
    config = (
        CustomOptimizerConfig(class_path="torch.optim:RMSprop", lr=0.01)
        if key == "custom"
        else ALGORITHMS[key](lr=0.01)
    )
    kwargs = config.dict()
    assert kwargs["lr"] == 0.01 and not set(kwargs) & set(SPEED)
    optimizer = config.torch_class()([torch.nn.Parameter(torch.zeros(3, 2))], **kwargs)
    # Every hyperparameter of the config reaches the group, also those dict() leaves to torch's default.
    for name, value in config.optimizer_kwargs().items():
        group_value = optimizer.param_groups[0][name]
        assert (tuple(group_value) if isinstance(group_value, list) else group_value) == value, name


@given(momentum=st.floats(0.0, 0.99), weight_decay=st.floats(0.0, 0.1), lr=st.floats(1e-4, 1.0))
def test_the_original_pattern_steps_as_build_optimizer_does(
    momentum: float, weight_decay: float, lr: float
) -> None:
    config = OptimizerConfig(sgd=SgdConfig(lr=lr, momentum=momentum, weight_decay=weight_decay))
    torch.manual_seed(0)
    ours_model = torch.nn.Linear(3, 2)
    theirs_model = torch.nn.Linear(3, 2)
    theirs_model.load_state_dict(ours_model.state_dict())
    ours, _ = build_optimizer(ours_model, config)
    theirs = get_optimizer_class(config)(
        theirs_model.parameters(), **get_optimizer_algorithm_config(config).dict()
    )
    inputs = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    for optimizer, model in ((ours, ours_model), (theirs, theirs_model)):
        for _ in range(3):
            optimizer.zero_grad()
            model(inputs).square().sum().backward()
            optimizer.step()
    for mine, original in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        torch.testing.assert_close(mine, original)


def test_the_embedding_tables_and_translation_optimizer_of_an_original_style_file() -> None:
    experiment = load_config_from_yaml(ExperimentConfig, DATA / "original_experiment.yaml")
    translation = experiment.model.translation_optimizer
    algorithm = get_optimizer_algorithm_config(translation)
    assert algorithm.lr == 0.05 and isinstance(algorithm.lr, float)  # sgd.lr and learning_rate both set
    assert LearningRate(constant=algorithm.lr) == translation.schedule()
    parameter = torch.nn.Parameter(torch.zeros(4, 4))
    optimizer = get_optimizer_class(translation)([parameter], **algorithm.dict())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.05
    scheduler = LRShim(optimizer, {"translation": LearningRate(constant=algorithm.lr)})
    assert scheduler.get_last_lr() == [0.05]
    built = {}
    for table in experiment.model.embeddings.tables:
        kwargs = get_optimizer_algorithm_config(table.optimizer).dict()
        built[table.name] = (get_optimizer_class(table.optimizer)([parameter], **kwargs), kwargs)
    assert built["user"][1] == {"lr": 0.02, "momentum": 0.0}
    assert isinstance(built["item"][0], torch.optim.Adagrad)
    assert built["item"][1] == {"lr": 0.1, "eps": 1e-8}  # learning_rate: null: adagrad's own lr


def test_lr_is_a_float_where_the_config_gives_one() -> None:
    both = OptimizerConfig(sgd=SgdConfig(lr=0.05), learning_rate=LearningRate(constant=0.05))
    assert get_optimizer_algorithm_config(both).lr == 0.05
    assert get_optimizer_algorithm_config(both) is both.sgd
    # lr left out: the constant of learning_rate (main gave None, and LearningRate(constant=None) fails)
    only_schedule = OptimizerConfig(adam=AdamConfig(), learning_rate=LearningRate(constant=0.002))
    lr = get_optimizer_algorithm_config(only_schedule).lr
    assert isinstance(lr, float) and lr == 0.002
    assert LearningRate(constant=lr).constant == 0.002
    assert only_schedule.adam is not None and only_schedule.adam.lr is None  # the config is unchanged
    ramp = LearningRate(linear_ramp_to_constant={"learning_rate": 0.1, "num_ramp_steps": 4})
    ramped = get_optimizer_algorithm_config(OptimizerConfig(adam=AdamConfig(), learning_rate=ramp))
    assert ramped.lr == ramp and ramped.dict()["lr"] == 0.0  # not a number: the schedule, 0 at step 0


def test_torchrec_apply_optimizer_in_backward_takes_dict() -> None:
    pytest.importorskip("torchrec", reason="torchrec is not installed (optional; see docs/integrations.md)")
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

    config = OptimizerConfig(sgd=SgdConfig(lr=0.02, implementation="fused"))
    table = torch.nn.Embedding(10, 4)
    before = table.weight.detach().clone()
    apply_optimizer_in_backward(
        optimizer_class=get_optimizer_class(config),
        params=table.parameters(),
        optimizer_kwargs=get_optimizer_algorithm_config(config).dict(),
    )
    table(torch.tensor([1])).sum().backward()  # the optimizer steps in backward: row 1 moves by -lr
    torch.testing.assert_close(table.weight[1].detach(), before[1] - 0.02)
    torch.testing.assert_close(table.weight[0].detach(), before[0])
