"""The optimizer registry: every key builds its exact torch class, with torch's defaults and ranges."""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

import pydantic
import pytest
import torch
from tests.group_models import parameters_equal, round_trip

import tml.optimizers
import tml.optimizers.config
import tml.optimizers.optimizer
from tml.optimizers import (
    CustomOptimizerConfig,
    OptimizerConfig,
    ResumeError,
    build_optimizer,
    compute_lr,
    get_optimizer_class,
    list_optimizers,
)
from tml.optimizers.algorithms import ALGORITHMS, IMPLEMENTATION_KWARGS, SPEED_FIELDS

EXPECTED_CLASSES = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "asgd": torch.optim.ASGD,
    "rprop": torch.optim.Rprop,
    "sparse_adam": torch.optim.SparseAdam,
    "adafactor": torch.optim.Adafactor,
    "muon": torch.optim.Muon,
}

# The documented exceptions to torch's defaults (docs/optimizers.md): the seed's Adam eps.
DEFAULT_EXCEPTIONS = {("adam", "eps"): 1e-7}

RAMP = {"linear_ramp_to_constant": {"learning_rate": 0.01, "num_ramp_steps": 3}}


class SparseModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 3, sparse=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


def model_and_batch(key: str) -> tuple[torch.nn.Module, Any]:
    """A model the algorithm can take (muon: matrices only; sparse_adam: sparse gradients)."""
    torch.manual_seed(0)
    if key == "sparse_adam":
        return SparseModel(), lambda step: torch.tensor([[step % 10, (3 * step) % 10]])
    if key == "muon":
        model = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 2, bias=False))
    else:
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    return model, lambda step: torch.randn(5, 3, generator=torch.Generator().manual_seed(step))


def train(model: torch.nn.Module, optimizer: Any, scheduler: Any, steps: range, batch: Any) -> None:
    for step in steps:
        optimizer.zero_grad()
        (model(batch(step)) ** 2).mean().backward()
        optimizer.step()
        scheduler.step()


def test_every_torch_optimizer_has_a_key_and_lbfgs_is_out() -> None:
    assert list_optimizers() == [*EXPECTED_CLASSES, "custom"]
    assert "lbfgs" not in list_optimizers()


@pytest.mark.parametrize("key", EXPECTED_CLASSES)
def test_each_key_builds_its_exact_torch_class(key: str) -> None:
    model, _ = model_and_batch(key)
    config = OptimizerConfig(**{key: {"lr": 0.05}})
    optimizer, scheduler = build_optimizer(model, config)
    assert type(optimizer) is EXPECTED_CLASSES[key]  # exact: AdamW subclasses Adam
    assert get_optimizer_class(config) is EXPECTED_CLASSES[key]
    assert [group["name"] for group in optimizer.param_groups] == ["default"]
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert scheduler.get_last_lr() == [0.05]


def test_adamw_is_not_built_as_adam_nor_adam_as_adamw() -> None:
    assert issubclass(torch.optim.AdamW, torch.optim.Adam)  # the trap the exact-type test guards
    model = torch.nn.Linear(2, 2)
    adam, _ = build_optimizer(model, OptimizerConfig(adam={"lr": 0.1}))
    adamw, _ = build_optimizer(model, OptimizerConfig(adamw={"lr": 0.1}))
    assert type(adam) is torch.optim.Adam and type(adamw) is torch.optim.AdamW


@pytest.mark.parametrize("key", EXPECTED_CLASSES)
def test_defaults_mirror_the_torch_signature(key: str) -> None:
    config_class = ALGORITHMS[key]
    torch_class = EXPECTED_CLASSES[key]
    assert config_class.optimizer_class is torch_class
    signature = inspect.signature(torch_class)
    torch_kwargs = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in ("params", "lr") and name not in IMPLEMENTATION_KWARGS
    }
    fields = {
        name: info.default
        for name, info in config_class.model_fields.items()
        if name != "lr" and name not in SPEED_FIELDS
    }
    assert set(fields) == set(torch_kwargs), f"{key}: fields differ from torch's keyword arguments"
    for name, torch_default in torch_kwargs.items():
        expected = DEFAULT_EXCEPTIONS.get((key, name), torch_default)
        assert fields[name] == expected, f"{key}.{name}: {fields[name]!r} != {expected!r}"


@pytest.mark.parametrize("key", EXPECTED_CLASSES)
def test_configured_hyperparameters_reach_the_torch_optimizer(key: str) -> None:
    model, _ = model_and_batch(key)
    config = OptimizerConfig(**{key: {"lr": 0.05}})
    optimizer, _ = build_optimizer(model, config)
    group = optimizer.param_groups[0]
    for name, value in config.algorithm().model_dump().items():
        if name != "lr" and name not in SPEED_FIELDS:
            assert group[name] == (tuple(value) if isinstance(value, list) else value), name


# (key, hyperparameters torch's constructor rejects, the field our config must name)
TORCH_REJECTS = [
    ("adam", {"betas": (1.0, 0.999)}, "betas"),
    ("adam", {"eps": -1e-8}, "eps"),
    ("adam", {"weight_decay": -0.1}, "weight_decay"),
    ("adamw", {"betas": (0.9, -0.1)}, "betas"),
    ("sgd", {"momentum": -0.5}, "momentum"),
    ("sgd", {"nesterov": True}, "nesterov"),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    ("adagrad", {"lr_decay": -1.0}, "lr_decay"),
    ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    ("rmsprop", {"alpha": -0.1}, "alpha"),
    ("rmsprop", {"momentum": -0.1}, "momentum"),
    ("adadelta", {"rho": 1.5}, "rho"),
    ("adamax", {"betas": (0.9, 1.0)}, "betas"),
    ("nadam", {"momentum_decay": -0.1}, "momentum_decay"),
    ("radam", {"eps": -1.0}, "eps"),
    ("asgd", {"weight_decay": -1.0}, "weight_decay"),
    ("rprop", {"etas": (1.5, 1.2)}, "etas"),
    ("rprop", {"etas": (0.5, 0.9)}, "etas"),
    ("sparse_adam", {"eps": 0.0}, "eps"),
    ("adafactor", {"beta2_decay": 0.5}, "beta2_decay"),
    ("adafactor", {"d": 0.5}, "d"),
    ("adafactor", {"eps": (-1.0, 1e-3)}, "eps"),
    ("muon", {"momentum": -0.1}, "momentum"),
    ("muon", {"weight_decay": -0.1}, "weight_decay"),
    ("muon", {"adjust_lr_fn": "nope"}, "adjust_lr_fn"),
]


@pytest.mark.parametrize(("key", "bad", "field"), TORCH_REJECTS)
def test_torch_ranges_are_checked_at_load(key: str, bad: dict[str, Any], field: str) -> None:
    model, _ = model_and_batch(key)
    with pytest.raises((ValueError, RuntimeError)):
        EXPECTED_CLASSES[key](model.parameters(), lr=0.01, **bad)  # torch refuses it too
    with pytest.raises(pydantic.ValidationError) as raised:
        OptimizerConfig(**{key: {"lr": 0.01, **bad}})
    assert any(error["loc"][:2] == (key, field) for error in raised.value.errors()), raised.value


# Stricter than torch (documented): values torch accepts but that make no sense.
STRICTER_THAN_TORCH = [
    ("adagrad", {"eps": 0.0}, "eps"),  # NaN on the first step (core defect 7)
    ("asgd", {"lambd": -1.0}, "lambd"),
    ("rprop", {"step_sizes": (1.0, 0.5)}, "step_sizes"),
    ("muon", {"ns_steps": 100}, "ns_steps"),  # torch refuses it only at the first step
    ("adam", {"eps": float("nan")}, "eps"),
    ("sgd", {"momentum": True}, "momentum"),  # booleans are not numbers, everywhere
    ("adadelta", {"rho": True}, "rho"),
    ("adafactor", {"d": True}, "d"),
    ("muon", {"ns_steps": True}, "ns_steps"),
]


@pytest.mark.parametrize(("key", "bad", "field"), STRICTER_THAN_TORCH)
def test_documented_stricter_checks(key: str, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        OptimizerConfig(**{key: {"lr": 0.01, **bad}})
    assert any(error["loc"][:2] == (key, field) for error in raised.value.errors()), raised.value


def test_lr_keeps_the_core_rule_for_every_algorithm() -> None:
    for key in EXPECTED_CLASSES:
        with pytest.raises(pydantic.ValidationError, match="lr is required unless learning_rate is set"):
            OptimizerConfig(**{key: {}})
        OptimizerConfig(**{key: {}}, learning_rate={"constant": 0.1})  # a schedule suffices


def test_sparse_adam_takes_a_warmup_from_zero() -> None:
    # torch.optim.SparseAdam(lr=0) raises; the schedule's first LR is 0 here.
    with pytest.raises(ValueError):
        torch.optim.SparseAdam(SparseModel().parameters(), lr=0.0)
    model, batch = model_and_batch("sparse_adam")
    optimizer, scheduler = build_optimizer(model, OptimizerConfig(sparse_adam={}, learning_rate=RAMP))
    assert optimizer.param_groups[0]["lr"] == 0.0
    train(model, optimizer, scheduler, range(2), batch)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(
        compute_lr(OptimizerConfig(sgd={}, learning_rate=RAMP).schedule(), 2)
    )


def test_muon_refuses_parameters_that_are_not_matrices() -> None:
    model = torch.nn.Linear(3, 2)  # the bias is 1-D
    with pytest.raises(ValueError, match=r"muon takes 2-D parameters only.*bias \(2,\)"):
        build_optimizer(model, OptimizerConfig(muon={"lr": 0.01}))


@pytest.mark.parametrize("key", EXPECTED_CLASSES)
def test_state_dict_round_trip_and_resume_is_bit_identical(key: str) -> None:
    config = OptimizerConfig(**{key: {}}, learning_rate=RAMP)

    reference, batch = model_and_batch(key)
    optimizer, scheduler = build_optimizer(reference, config)
    train(reference, optimizer, scheduler, range(6), batch)
    reference_lrs = [group["lr"] for group in optimizer.param_groups]

    first, _ = model_and_batch(key)
    optimizer, scheduler = build_optimizer(first, config)
    train(first, optimizer, scheduler, range(3), batch)
    checkpoint = round_trip(
        {
            "model": first.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
    )

    resumed, _ = model_and_batch(key)
    optimizer, scheduler = build_optimizer(resumed, config)
    resumed.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    assert optimizer.state_dict()["param_groups"] == checkpoint["optimizer"]["param_groups"]
    train(resumed, optimizer, scheduler, range(3, 6), batch)

    assert parameters_equal(resumed, reference)
    assert [group["lr"] for group in optimizer.param_groups] == reference_lrs
    assert reference_lrs == [compute_lr(config.schedule(), 6)]


def test_a_checkpoint_with_other_group_names_is_refused() -> None:
    model = torch.nn.Linear(2, 2)
    optimizer, _ = build_optimizer(model, OptimizerConfig(adam={"lr": 0.1}))
    state = copy.deepcopy(optimizer.state_dict())
    state["param_groups"][0]["name"] = "towers"
    with pytest.raises(ResumeError, match=r"param groups \['towers'\] in the checkpoint, \['default'\] here"):
        optimizer.load_state_dict(state)


class TakesAnything(torch.optim.SGD):
    def __init__(self, params: Any, lr: float = 0.1, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=kwargs.pop("momentum", 0.0))


def test_custom_builds_the_named_class_with_checked_kwargs() -> None:
    config = OptimizerConfig(
        custom={"class_path": "torch.optim:Adam", "lr": 0.1, "kwargs": {"betas": [0.8, 0.9]}}
    )
    optimizer, _ = build_optimizer(torch.nn.Linear(2, 2), config)
    assert type(optimizer) is torch.optim.Adam
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9)
    assert get_optimizer_class(config) is torch.optim.Adam


CUSTOM_ERRORS = [
    (
        {"class_path": "torch.optim.Adam"},
        ("custom", "class_path"),
        r"must have the form 'package.module:Class'",
    ),
    (
        {"class_path": "no_such_package_xyz:Opt"},
        ("custom", "class_path"),
        r"cannot import module 'no_such_package_xyz'",
    ),
    ({"class_path": "torch.optim:Nope"}, ("custom", "class_path"), r"'torch.optim' has no attribute 'Nope'"),
    ({"class_path": "torch.nn:Linear"}, ("custom", "class_path"), r"is not a torch.optim.Optimizer subclass"),
    (
        {"class_path": "torch.optim:Adam", "kwargs": {"betaz": 1}},
        ("custom", "kwargs", "betaz"),
        r"takes no keyword argument 'betaz'; valid: betas, eps, weight_decay",
    ),
    (
        {"class_path": "torch.optim:Adam", "kwargs": {"lr": 1}},
        ("custom", "kwargs", "lr"),
        r"give lr as custom.lr",
    ),
]


@pytest.mark.parametrize(("custom", "loc", "message"), CUSTOM_ERRORS)
def test_custom_errors_at_load(custom: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        OptimizerConfig(custom={"lr": 0.1, **custom})
    errors = raised.value.errors()
    assert errors[0]["loc"] == loc
    assert re.search(message, errors[0]["msg"]), errors[0]["msg"]


def test_custom_class_with_var_kwargs_accepts_any_name() -> None:
    config = CustomOptimizerConfig(
        class_path=f"{__name__}:TakesAnything", lr=0.2, kwargs={"momentum": 0.5, "x": 1}
    )
    assert config.torch_class() is TakesAnything


def test_seed_import_contract_is_kept() -> None:
    names = [
        "AdamConfig",
        "SgdConfig",
        "SGDConfig",
        "AdagradConfig",
        "OptimizerConfig",
        "get_optimizer_algorithm_config",
        "LearningRate",
        "PiecewiseConstant",
        "LinearRampToConstant",
        "LinearRampToCosine",
        "OptimizerAlgorithmConfig",
    ]
    for name in names:
        assert getattr(tml.optimizers.config, name) is getattr(tml.optimizers, name)
    for name in ["get_optimizer_class", "build_optimizer", "LRShim", "compute_lr"]:
        assert getattr(tml.optimizers.optimizer, name) is getattr(tml.optimizers, name)
    from tml.optimizers.algorithms import AdamConfig

    assert AdamConfig is tml.optimizers.AdamConfig
    assert tml.optimizers.SGDConfig is tml.optimizers.SgdConfig


def test_get_optimizer_class_refuses_a_mixed_config() -> None:
    config = OptimizerConfig(
        adam={"lr": 0.1}, param_groups=[{"name": "embeddings", "params": ["*embedding*"], "sgd": {"lr": 0.1}}]
    )
    with pytest.raises(ValueError, match=r"different optimizer classes \(embeddings: SGD, default: Adam\)"):
        get_optimizer_class(config)
    same = OptimizerConfig(
        adam={"lr": 0.1}, param_groups=[{"name": "a", "params": ["a.*"], "adam": {"amsgrad": True}}]
    )
    assert get_optimizer_class(same) is torch.optim.Adam


def test_custom_groups_of_one_class_share_one_optimizer_with_per_group_kwargs() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    config = OptimizerConfig(
        custom={"class_path": "torch.optim:Adam", "lr": 0.1, "kwargs": {"weight_decay": 0.1}},
        exclude_from_weight_decay=["bias"],
        param_groups=[{"name": "first", "params": ["0.*"], "hyperparameters": {"betas": [0.5, 0.6]}}],
    )
    optimizer, _ = build_optimizer(model, config)
    assert type(optimizer) is torch.optim.Adam
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert list(groups) == ["first", "first.no_weight_decay", "default", "default.no_weight_decay"]
    assert groups["first"]["betas"] == (0.5, 0.6) and groups["first"]["weight_decay"] == 0.1
    assert groups["first.no_weight_decay"]["weight_decay"] == 0.0
    assert groups["default"]["betas"] == (0.9, 0.999)
    assert get_optimizer_class(config) is torch.optim.Adam


def test_pretty_printed_config_loads_back_to_the_same_groups() -> None:
    import yaml

    config = OptimizerConfig(
        adam={"beta_1": 0.8},
        learning_rate={"constant": 0.1},
        exclude_from_weight_decay=["bias"],
        layer_decay={"rate": 0.5, "layer_pattern": r"(\d+)\."},
        param_groups=[{"name": "first", "params": ["0.*"], "sgd": {"lr": 0.2}, "lr_multiplier": 2.0}],
        schedule_position="optimizer_steps",
    )
    again = OptimizerConfig(**yaml.safe_load(config.pretty_print()))
    assert again == config


def test_every_registered_algorithm_is_a_key_of_the_optimizer_and_of_a_group() -> None:
    from tml.optimizers import ParamGroupConfig

    assert OptimizerConfig.field_groups("one_of")["optimizer"] == tuple(ALGORITHMS)
    assert ParamGroupConfig.field_groups("at_most_one_of")["optimizer"] == tuple(ALGORITHMS)
    for key, config_class in ALGORITHMS.items():
        assert config_class.key == key
        assert OptimizerConfig.model_fields[key].annotation == (config_class | None)
        assert all(info.description for info in config_class.model_fields.values()), key


def test_every_config_field_has_a_description() -> None:
    from tml.optimizers import LayerDecayConfig, MultiTaskLearningRates, ParamGroupConfig

    for config_class in [
        OptimizerConfig,
        ParamGroupConfig,
        LayerDecayConfig,
        MultiTaskLearningRates,
        *ALGORITHMS.values(),
    ]:
        missing = [name for name, info in config_class.model_fields.items() if not info.description]
        assert not missing, f"{config_class.__name__}: {missing}"
