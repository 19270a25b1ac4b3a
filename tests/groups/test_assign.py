"""Param-group rules: ordered matching, wrappers, frozen parameters, weight decay, layer decay, errors."""

from __future__ import annotations

import fnmatch
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import torch
import torch.distributed as dist
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.group_models import BlockModel, block_batch, train

from tml.core.config import ConfigError, load_config_from_yaml
from tml.optimizers import OptimizerConfig, assign_param_groups, build_optimizer, compute_lr
from tml.optimizers.groups.names import named_parameters

CONSTANT = {"constant": 0.1}


def group_of(optimizer: torch.optim.Optimizer) -> dict[int, str]:
    """id(parameter) -> name of the group that holds it."""
    return {id(p): group["name"] for group in optimizer.param_groups for p in group["params"]}


def names_by_group(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, list[str]]:
    where = group_of(optimizer)
    result: dict[str, list[str]] = {}
    for name, parameter in model.named_parameters():
        if id(parameter) in where:
            result.setdefault(where[id(parameter)], []).append(name)
    return result


def config(**kwargs: Any) -> OptimizerConfig:
    return OptimizerConfig(**{"adamw": {"lr": 0.1}, **kwargs})


# ---------------------------------------------------------------------------------------------- order


def test_first_matching_rule_wins_and_the_rest_is_default() -> None:
    model = BlockModel(num_blocks=2)
    optimizer, _ = build_optimizer(
        model,
        config(
            param_groups=[
                {"name": "first_block", "params": ["blocks.0.*"]},
                {"name": "blocks", "params": ["blocks.*"]},  # blocks.0 already claimed
                {"name": "head", "params": ["re:^head\\."]},
            ]
        ),
    )
    groups = names_by_group(model, optimizer)
    assert [group["name"] for group in optimizer.param_groups] == ["first_block", "blocks", "head", "default"]
    assert groups["first_block"] == [
        name for name, _ in model.named_parameters() if name.startswith("blocks.0.")
    ]
    assert groups["blocks"] == [name for name, _ in model.named_parameters() if name.startswith("blocks.1.")]
    assert groups["head"] == ["head.weight", "head.bias"]
    assert groups["default"] == ["embed.weight", "embed.bias"]


def test_a_rule_whose_matches_are_all_claimed_is_an_error() -> None:
    # Issue 14: before, such a rule silently yielded no group (and validate still listed it).
    model = BlockModel(num_blocks=1)
    with pytest.raises(
        ValueError,
        match=r"param_groups\[1\] 'head': claims no parameter: every trainable parameter it matches "
        r"\(head.weight, head.bias\) is claimed by an earlier rule \(param_groups\[0\] 'all'\)",
    ):
        build_optimizer(
            model,
            config(param_groups=[{"name": "all", "params": ["*"]}, {"name": "head", "params": ["head.*"]}]),
        )


def test_glob_star_crosses_dots_and_must_match_the_whole_name() -> None:
    model = BlockModel(num_blocks=2)
    groups = assign_param_groups(model, config(param_groups=[{"name": "w", "params": ["*.weight"]}]))
    assert groups[0].param_names == [name for name, _ in model.named_parameters() if name.endswith(".weight")]
    # "linear" alone matches no whole name; as a regex it is found inside names.
    with pytest.raises(ValueError, match="none of its patterns"):
        assign_param_groups(model, config(param_groups=[{"name": "w", "params": ["linear"]}]))
    groups = assign_param_groups(model, config(param_groups=[{"name": "w", "params": ["re:linear"]}]))
    assert groups[0].param_names == [name for name, _ in model.named_parameters() if "linear" in name]


def expected_owner(name: str, rules: list[list[str]]) -> int:
    """The index of the first rule with a pattern matching ``name`` (len(rules) for the default)."""
    for index, patterns in enumerate(rules):
        for pattern in patterns:
            if pattern.startswith("re:"):
                if re.search(pattern[3:], name):
                    return index
            elif fnmatch.fnmatchcase(name, pattern):
                return index
    return len(rules)


PATTERN_POOL = [
    "blocks.*",
    "*.bias",
    "*norm*",
    "head.*",
    "re:\\.0\\.",
    "embed.*",
    "re:weight$",
    "blocks.1.*",
    "*",
]


@settings(max_examples=40, deadline=None)
@given(
    rules=st.lists(st.lists(st.sampled_from(PATTERN_POOL), min_size=1, max_size=3), min_size=1, max_size=4),
    frozen=st.sets(st.integers(0, 15)),
)
def test_every_trainable_parameter_is_claimed_once_by_its_first_matching_rule(
    rules: list[list[str]], frozen: set[int]
) -> None:
    model = BlockModel(num_blocks=2)
    for index, (_, parameter) in enumerate(model.named_parameters()):
        parameter.requires_grad_(index not in frozen)
    if not any(p.requires_grad for p in model.parameters()):
        return
    cfg = config(
        param_groups=[{"name": f"rule{index}", "params": patterns} for index, patterns in enumerate(rules)]
    )
    owners = {
        name: expected_owner(name, rules)
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }
    shadowed = [
        index
        for index, patterns in enumerate(rules)
        if any(expected_owner(name, [patterns]) == 0 for name in owners) and index not in owners.values()
    ]
    if shadowed:  # a rule that matches trainable parameters but claims none is an error
        with pytest.raises(
            ValueError, match=rf"param_groups\[{shadowed[0]}\] 'rule{shadowed[0]}': claims no parameter"
        ):
            assign_param_groups(model, cfg)
        return
    groups = assign_param_groups(model, cfg)
    where: dict[str, str] = {}
    for group in groups:
        for name in group.param_names:
            assert name not in where, f"{name} claimed twice"
            where[name] = group.name
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert name not in where
            continue
        owner = expected_owner(name, rules)
        assert where[name] == (f"rule{owner}" if owner < len(rules) else "default")
    assert all(group.params for group in groups)  # no empty group


def test_frozen_parameters_are_left_out_and_a_rule_of_frozen_ones_is_no_error() -> None:
    model = BlockModel(num_blocks=2)
    for parameter in model.blocks[0].parameters():
        parameter.requires_grad_(False)
    optimizer, _ = build_optimizer(
        model, config(param_groups=[{"name": "frozen_block", "params": ["blocks.0.*"]}])
    )
    assert [group["name"] for group in optimizer.param_groups] == ["default"]
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in model.parameters() if p.requires_grad}


def test_a_model_without_trainable_parameters_is_refused() -> None:
    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="Linear has no trainable parameter"):
        build_optimizer(model, config())


# ------------------------------------------------------------------------------------------- wrappers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gloo_process_group() -> Iterator[None]:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


class HasModuleAttribute(torch.nn.Module):
    """A user's submodule called ``module``: DDP unwrapping must not strip it."""

    def __init__(self) -> None:
        super().__init__()
        self.module = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.module(x))


def test_ddp_module_prefix_is_transparent_at_the_root_only(gloo_process_group: None) -> None:
    inner = HasModuleAttribute()
    model = torch.nn.parallel.DistributedDataParallel(inner)
    assert next(name for name, _ in model.named_parameters()) == "module.module.weight"
    assert [name for name, _ in named_parameters(model)] == [
        "module.weight",
        "module.bias",
        "head.weight",
        "head.bias",
    ]
    optimizer, scheduler = build_optimizer(
        model,
        config(param_groups=[{"name": "inner", "params": ["module.*"], "learning_rate": {"constant": 0.5}}]),
    )
    assert names_by_group(inner, optimizer) == {
        "inner": ["module.weight", "module.bias"],
        "default": ["head.weight", "head.bias"],
    }
    before = inner.module.weight.detach().clone()
    train(model, optimizer, scheduler, range(2), block_batch)
    assert not torch.equal(before, inner.module.weight)


def test_torch_compile_prefix_is_transparent_at_the_root_and_mid_name() -> None:
    model = BlockModel(num_blocks=2)
    model.blocks[1] = torch.compile(model.blocks[1], backend="eager")  # type: ignore[call-overload]
    compiled = torch.compile(model, backend="eager")
    raw = [name for name, _ in compiled.named_parameters()]
    assert raw[0] == "_orig_mod.embed.weight" and "_orig_mod.blocks.1._orig_mod.linear.weight" in raw
    expected = [name for name, _ in BlockModel(num_blocks=2).named_parameters()]
    assert [name for name, _ in named_parameters(compiled)] == expected
    optimizer, scheduler = build_optimizer(
        compiled, config(param_groups=[{"name": "second", "params": ["blocks.1.*"]}])
    )
    assert [name for name, _ in named_parameters(compiled) if name.startswith("blocks.1.")] == [
        name for name in expected if name.startswith("blocks.1.")
    ]
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {
        id(p) for p in model.blocks[1].parameters()
    }
    train(compiled, optimizer, scheduler, range(1), block_batch)


def test_checkpoint_and_fsdp_wrapper_names_are_transparent() -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    class FakeFsdp(torch.nn.Module):  # FSDP1 registers the wrapped module under this name
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self._fsdp_wrapped_module = module

    model = BlockModel(num_blocks=2)
    model.blocks[0] = checkpoint_wrapper(model.blocks[0])
    model.blocks[1] = FakeFsdp(model.blocks[1])
    assert "blocks.0._checkpoint_wrapped_module.linear.weight" in dict(model.named_parameters())
    assert [name for name, _ in named_parameters(model)] == [
        name for name, _ in BlockModel(2).named_parameters()
    ]


# ------------------------------------------------------------------------------------- weight decay


class LlamaRMSNorm(torch.nn.Module):
    """A norm class of the user's (not a torch type): recognized by its class name."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class NormModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.batch_norm = torch.nn.BatchNorm1d(4)
        self.layer_norm = torch.nn.LayerNorm(4)
        self.group_norm = torch.nn.GroupNorm(2, 4)
        self.rms = torch.nn.RMSNorm(4)
        self.custom_norm = LlamaRMSNorm(4)
        self.scalar = torch.nn.Parameter(torch.tensor(1.0))
        self.out = torch.nn.Linear(4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.custom_norm(self.rms(self.group_norm(self.layer_norm(self.batch_norm(self.linear(x))))))
        return self.out(h) * self.scalar


@pytest.mark.parametrize(
    ("exclude", "expected"),
    [
        (["bias"], ["linear.bias", "batch_norm.bias", "layer_norm.bias", "group_norm.bias"]),
        (
            ["norm"],
            [
                "batch_norm.weight",
                "batch_norm.bias",
                "layer_norm.weight",
                "layer_norm.bias",
                "group_norm.weight",
                "group_norm.bias",
                "rms.weight",
                "custom_norm.scale",
            ],
        ),
        (["1d"], None),  # every parameter with ndim <= 1
        (["out.*", "re:^scal"], ["scalar", "out.weight"]),
    ],
)
def test_weight_decay_exclusion_by_name_type_ndim_and_pattern(
    exclude: list[str], expected: list[str] | None
) -> None:
    model = NormModel()
    if expected is None:
        expected = [name for name, parameter in model.named_parameters() if parameter.ndim <= 1]
    schedule = {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 4}}
    cfg = OptimizerConfig(
        adamw={"weight_decay": 0.05}, learning_rate=schedule, exclude_from_weight_decay=exclude
    )
    optimizer, scheduler = build_optimizer(model, cfg)
    groups = names_by_group(model, optimizer)
    assert sorted(groups["default.no_weight_decay"]) == sorted(expected)
    assert sorted(groups["default"]) == sorted(
        name for name, _ in model.named_parameters() if name not in expected
    )
    decay = {group["name"]: group["weight_decay"] for group in optimizer.param_groups}
    assert decay == {"default": 0.05, "default.no_weight_decay": 0.0}
    for step in range(1, 6):
        train(model, optimizer, scheduler, range(step - 1, step), lambda s: torch.randn(6, 4))
        lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
        assert lrs["default"] == lrs["default.no_weight_decay"] == compute_lr(cfg.schedule(), step)


def test_a_group_can_opt_out_of_the_inherited_exclusion() -> None:
    model = BlockModel(num_blocks=1)
    cfg = config(
        exclude_from_weight_decay=["bias"],
        param_groups=[{"name": "head", "params": ["head.*"], "exclude_from_weight_decay": []}],
    )
    names = [group.name for group in assign_param_groups(model, cfg)]
    assert names == ["head", "default", "default.no_weight_decay"]


# -------------------------------------------------------------------------------------- layer decay


def test_layer_decay_multipliers_follow_timms_numbering() -> None:
    rate = 0.5
    model = BlockModel(num_blocks=3)
    schedule = {"linear_ramp_to_constant": {"learning_rate": 0.8, "num_ramp_steps": 4}}
    cfg = OptimizerConfig(
        adamw={"weight_decay": 0.0},
        learning_rate=schedule,
        layer_decay={"rate": rate, "layer_pattern": r"^blocks\.(\d+)\."},
    )
    optimizer, scheduler = build_optimizer(model, cfg)
    # Independently: embed is before the first block (layer 0), block i is layer i + 1, the head
    # is after the last block: layer num_layers + 1 = 4. Multiplier rate ** (4 - layer).
    expected_layer = {}
    for name, _ in model.named_parameters():
        if name.startswith("embed."):
            expected_layer[name] = 0
        elif name.startswith("blocks."):
            expected_layer[name] = int(name.split(".")[1]) + 1
        else:
            expected_layer[name] = 4
    where = group_of(optimizer)
    lr_of = {group["name"]: group for group in optimizer.param_groups}
    for step in range(0, 6):
        base = compute_lr(cfg.schedule(), step)
        for name, parameter in model.named_parameters():
            group = lr_of[where[id(parameter)]]
            assert group["name"] == f"default.layer_{expected_layer[name]}"
            assert group["lr"] == pytest.approx(base * rate ** (4 - expected_layer[name]), rel=1e-15, abs=0.0)
        train(model, optimizer, scheduler, range(step, step + 1), block_batch)


def test_layer_decay_with_group_multiplier_and_exclusion() -> None:
    model = BlockModel(num_blocks=2)
    cfg = config(
        adamw={"lr": 1.0},
        exclude_from_weight_decay=["bias"],
        layer_decay={"rate": 0.5, "layer_pattern": r"blocks\.(\d+)\."},
        param_groups=[{"name": "head", "params": ["head.*"], "lr_multiplier": 3.0}],
    )
    groups = {group.name: group for group in assign_param_groups(model, cfg)}
    assert groups["head.layer_3"].lr_multiplier == 3.0
    assert groups["head.layer_3.no_weight_decay"].param_names == ["head.bias"]
    assert groups["default.layer_1"].lr_multiplier == 0.25
    assert groups["default.layer_0.no_weight_decay"].param_names == ["embed.bias"]


def test_a_parameter_between_blocks_that_the_pattern_misses_is_an_error() -> None:
    model = BlockModel(num_blocks=2)
    with pytest.raises(ValueError, match=r"'blocks.0.norm.weight' sits between blocks"):
        assign_param_groups(
            model, config(layer_decay={"rate": 0.5, "layer_pattern": r"blocks\.(\d+)\.linear"})
        )


# ------------------------------------------------------------------------------- per-group schedules


def test_each_group_gets_its_own_schedule_at_every_step() -> None:
    model = BlockModel(num_blocks=2)
    schedules = {
        "block0": {
            "piecewise_constant": {
                "learning_rate_boundaries": [3, 6],
                "learning_rate_values": [0.3, 0.2, 0.1],
            }
        },
        "block1": {"linear_ramp_to_constant": {"learning_rate": 0.05, "num_ramp_steps": 5}},
        "head": {
            "linear_ramp_to_cosine": {
                "learning_rate": 0.2,
                "final_learning_rate": 0.01,
                "num_ramp_steps": 2,
                "final_num_steps": 8,
            }
        },
    }
    cfg = OptimizerConfig(
        adam={"lr": 0.007},  # the default group: constant 0.007
        param_groups=[
            {"name": "block0", "params": ["blocks.0.*"], "learning_rate": schedules["block0"]},
            {
                "name": "block1",
                "params": ["blocks.1.*"],
                "learning_rate": schedules["block1"],
                "lr_multiplier": 2.0,
            },
            {"name": "head", "params": ["head.*"], "learning_rate": schedules["head"]},
        ],
    )
    parsed = {
        name: OptimizerConfig(sgd={}, learning_rate=value).schedule() for name, value in schedules.items()
    }
    optimizer, scheduler = build_optimizer(model, cfg)
    owner_of = {
        id(p): name for name in ("block0", "block1", "head") for p in getattr_path(model, name).parameters()
    }

    def check(step: int) -> None:
        for group in optimizer.param_groups:
            owners = {owner_of.get(id(p), "default") for p in group["params"]}
            assert owners == {group["name"]}
            if group["name"] == "default":
                expected = 0.007
            else:
                multiplier = 2.0 if group["name"] == "block1" else 1.0
                expected = multiplier * compute_lr(parsed[group["name"]], step)
            assert group["lr"] == expected, (step, group["name"])

    check(0)
    train(model, optimizer, scheduler, range(10), block_batch, on_step=lambda step: check(step + 1))


def getattr_path(model: BlockModel, name: str) -> torch.nn.Module:
    return {"block0": model.blocks[0], "block1": model.blocks[1], "head": model.head}[name]


def test_hyperparameter_override_and_own_algorithm_of_the_same_class() -> None:
    model = BlockModel(num_blocks=1)
    cfg = OptimizerConfig(
        adamw={"lr": 0.1, "weight_decay": 0.02},
        param_groups=[
            {
                "name": "head",
                "params": ["head.*"],
                "hyperparameters": {"weight_decay": 0.0, "betas": [0.5, 0.6]},
            },
            {"name": "embed", "params": ["embed.*"], "adamw": {"amsgrad": True}},
        ],
    )
    optimizer, _ = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.AdamW  # one algorithm class: one torch optimizer
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert groups["head"]["weight_decay"] == 0.0 and groups["head"]["betas"] == (0.5, 0.6)
    assert groups["embed"]["amsgrad"] is True and groups["embed"]["weight_decay"] == 0.01  # adamw's default
    assert groups["embed"]["lr"] == 0.1  # no lr of its own: the default schedule
    assert groups["default"]["weight_decay"] == 0.02


# ------------------------------------------------------------------------------------- error tables

ONE = [{"name": "a", "params": ["a.*"]}]

# (config, path of the error, expected message)
BAD_GROUP_CONFIGS: list[tuple[dict[str, Any], tuple[Any, ...], str]] = [
    (
        {"param_groups": [{"name": "default", "params": ["x"]}]},
        ("param_groups", 0, "name"),
        "'default' is the group of",
    ),
    ({"param_groups": [{"name": " ", "params": ["x"]}]}, ("param_groups", 0, "name"), "must not be empty"),
    (
        {"param_groups": [*ONE, {"name": "a", "params": ["b"]}]},
        ("param_groups", 1, "name"),
        "already taken by param_groups\\[0\\]",
    ),
    ({"param_groups": [{"name": "a", "params": []}]}, ("param_groups", 0, "params"), "at least 1 item"),
    (
        {"param_groups": [{"name": "a", "params": [""]}]},
        ("param_groups", 0, "params"),
        "pattern 0: a pattern must not be empty",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x", "re:("]}]},
        ("param_groups", 0, "params"),
        "pattern 1: 're:\\(' is not a valid regex",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["re:"]}]},
        ("param_groups", 0, "params"),
        "the regex of 're:' is empty",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "paramz": 1}]},
        ("param_groups", 0, "paramz"),
        "Extra inputs",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "hyperparameters": {"wd": 0.0}}]},
        ("param_groups", 0, "hyperparameters", "wd"),
        "adamw has no hyperparameter 'wd'; valid: betas, eps, weight_decay, amsgrad, maximize",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "hyperparameters": {"weight_decay": -1.0}}]},
        ("param_groups", 0, "hyperparameters", "weight_decay"),
        "greater than or equal to 0",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "hyperparameters": {"lr": 0.1}}]},
        ("param_groups", 0, "hyperparameters", "lr"),
        "lr cannot be overridden through hyperparameters",
    ),
    (
        {
            "param_groups": [
                {"name": "a", "params": ["x"], "sgd": {"lr": 0.1}, "hyperparameters": {"momentum": 0.9}}
            ]
        },
        ("param_groups", 0, "hyperparameters"),
        "this group has its own \\(sgd\\): give them in sgd",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "sgd": {"lr": 0.1}, "adam": {"lr": 0.1}}]},
        ("param_groups", 0),
        "at most one of adam, adamw, sgd",
    ),
    (
        {
            "param_groups": [
                {"name": "a", "params": ["x"], "sgd": {"lr": CONSTANT}, "learning_rate": CONSTANT}
            ]
        },
        ("param_groups", 0, "sgd", "lr"),
        "lr is a schedule and the group's learning_rate is set too",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "sgd": {"lr": 0.1, "momentum": -1}}]},
        ("param_groups", 0, "sgd", "momentum"),
        "greater than or equal to 0",
    ),
    (
        {"param_groups": [{"name": "a", "params": ["x"], "lr_multiplier": -2.0}]},
        ("param_groups", 0, "lr_multiplier"),
        "greater than or equal to 0",
    ),
    (
        {
            "exclude_from_weight_decay": ["bias"],
            "param_groups": [{"name": "emb", "params": ["x"], "sparse_adam": {"lr": 0.1}}],
        },
        ("param_groups", 0, "name"),
        "group 'emb' uses sparse_adam, which has no weight_decay.*"
        "set exclude_from_weight_decay: \\[\\] in this group",
    ),
    (
        {
            "param_groups": [
                {"name": "r", "params": ["x"], "rprop": {"lr": 0.1}, "exclude_from_weight_decay": ["1d"]}
            ]
        },
        ("param_groups", 0, "exclude_from_weight_decay"),
        "group 'r' uses rprop, which has no weight_decay",
    ),
    (
        {"exclude_from_weight_decay": ["re:["]},
        ("exclude_from_weight_decay",),
        "pattern 0: 're:\\[' is not a valid regex",
    ),
    (
        {"layer_decay": {"rate": 0.0, "layer_pattern": "b\\.(\\d+)"}},
        ("layer_decay", "rate"),
        "greater than 0",
    ),
    (
        {"layer_decay": {"rate": 1.5, "layer_pattern": "b\\.(\\d+)"}},
        ("layer_decay", "rate"),
        "less than or equal to 1",
    ),
    (
        {"layer_decay": {"rate": 0.5, "layer_pattern": "blocks\\.\\d+"}},
        ("layer_decay", "layer_pattern"),
        "exactly one capturing group.*got 0",
    ),
    ({"layer_decay": {"rate": 0.5, "layer_pattern": "(a)(b)"}}, ("layer_decay", "layer_pattern"), "got 2"),
    ({"schedule_position": "epochs"}, ("schedule_position",), "'scheduler_steps' or 'optimizer_steps'"),
    (
        {"multi_task_learning_rates": {"tower_learning_rates": {"t": CONSTANT}}, "param_groups": ONE},
        ("param_groups",),
        "cannot be combined with multi_task_learning_rates",
    ),
]


@pytest.mark.parametrize(("bad", "loc", "message"), BAD_GROUP_CONFIGS)
def test_bad_group_configs_fail_at_load_naming_the_path(
    bad: dict[str, Any], loc: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        OptimizerConfig(**{"adamw": {"lr": 0.1}, **bad})
    errors = raised.value.errors()
    assert any(error["loc"] == loc and re.search(message, error["msg"]) for error in errors), errors


def test_rprop_default_group_cannot_exclude_from_weight_decay() -> None:
    with pytest.raises(
        pydantic.ValidationError, match="group 'default' uses rprop, which has no weight_decay"
    ):
        OptimizerConfig(rprop={"lr": 0.1}, exclude_from_weight_decay=["bias"])


# (rules, expected message) — model-dependent errors, raised by build_optimizer
BAD_FOR_THE_MODEL: list[tuple[dict[str, Any], str]] = [
    (
        {"param_groups": [{"name": "towers", "params": ["towr.*", "re:^tower"]}]},
        r"param_groups\[0\] 'towers': none of its patterns \['towr.\*', 're:\^tower'\] matches a parameter "
        r"name of BlockModel; its parameters include: .*embed.weight",
    ),
    (
        {"param_groups": [*ONE]},
        r"param_groups\[0\] 'a': none of its patterns",
    ),
    (
        {"layer_decay": {"rate": 0.5, "layer_pattern": r"layers\.(\d+)\."}},
        r"layer_pattern 'layers.*matches no parameter name",
    ),
    (
        {"layer_decay": {"rate": 0.5, "layer_pattern": r"blocks\.\d+\.(\w+)"}},
        r"must capture a block index.*captured .linear.",
    ),
    (
        {"param_groups": [{"name": "m", "params": ["blocks.*"], "muon": {"lr": 0.1}}]},
        r"param_groups\[0\] 'm': muon takes 2-D",
    ),
    (
        {
            "param_groups": [{"name": "x.no_weight_decay", "params": ["head.bias"]}],
            "exclude_from_weight_decay": ["bias"],
        },
        "",
    ),
    (
        {
            "param_groups": [{"name": "default.no_weight_decay", "params": ["head.weight"]}],
            "exclude_from_weight_decay": ["bias"],
        },
        r"two param groups are named 'default.no_weight_decay'",
    ),
]


@pytest.mark.parametrize(("rules", "message"), BAD_FOR_THE_MODEL)
def test_rules_that_do_not_fit_the_model_fail_at_build(rules: dict[str, Any], message: str) -> None:
    model = BlockModel(num_blocks=2)
    cfg = config(**rules)
    if not message:  # a name like a generated one, but no collision: fine
        build_optimizer(model, cfg)
        return
    with pytest.raises(ValueError, match=message):
        build_optimizer(model, cfg)


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "optimizer.yaml"
    path.write_text(
        "optimizer:\n"
        "  adamw: {lr: 0.001}\n"
        "  param_groups:\n"
        "    - name: towers\n"
        "      params: ['towers.*']\n"
        "      hyperparameters:\n"
        "        weight_decay: -0.5\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config_from_yaml(OptimizerConfig, path, key="optimizer")
    text = str(raised.value)
    assert f"{path}:7:" in text
    assert "optimizer.param_groups.0.hyperparameters.weight_decay" in text
    assert "-0.5" in text


def test_unused_keys_written_as_null_load() -> None:
    cfg = OptimizerConfig(
        sgd={"lr": 0.1},
        adam=None,
        learning_rate=None,
        param_groups=None,
        exclude_from_weight_decay=None,
        layer_decay=None,
        multi_task_learning_rates=None,
        single_task_learning_rate=None,
    )
    assert cfg.param_groups == [] and cfg.exclude_from_weight_decay == []
    assert [spec.name for spec in cfg.group_specs()] == ["default"]


@settings(max_examples=15, deadline=None)
@given(num_blocks=st.integers(1, 5), rate=st.floats(0.05, 1.0), head=st.booleans())
def test_layer_decay_property_over_block_counts(num_blocks: int, rate: float, head: bool) -> None:
    model = BlockModel(num_blocks=num_blocks)
    if not head:
        del model.head  # no parameter after the last block: the top layer is the last block
    cfg = config(adamw={"lr": 1.0}, layer_decay={"rate": rate, "layer_pattern": r"^blocks\.(\d+)\."})
    groups = assign_param_groups(model, cfg)
    multiplier_of = {name: group.lr_multiplier for group in groups for name in group.param_names}
    top = num_blocks + 1  # num_layers + 1, whether or not a head exists
    for name, _ in model.named_parameters():
        layer = (
            0
            if name.startswith("embed.")
            else int(name.split(".")[1]) + 1
            if name.startswith("blocks.")
            else top
        )
        assert multiplier_of[name] == pytest.approx(rate ** (top - layer), rel=1e-12)
