"""The speed fields of the algorithm configs (``implementation``, ``flatten``, ``tensor_lr``) through
``build_optimizer``: results, checkpoints, compile, and the load- and build-time refusals."""

from __future__ import annotations

import inspect
from typing import Any

import pydantic
import pytest
import torch
import torch._dynamo
from tests.group_models import compile_counting_graphs

from tml.optimizers import ResumeError, ResumeWarning, build_optimizer, load_optimizer_state
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.runtime.combined import CombinedOptimizer
from tml.optimizers.runtime.flat import FlatOptimizer, FlattenError
from tml.optimizers.runtime.implementation import IMPLEMENTATIONS
from tml.optimizers.schedules import compute_lr

torch.set_num_threads(1)

SCHEDULE = {
    "linear_ramp_to_cosine": {
        "learning_rate": 0.01,
        "num_ramp_steps": 10,
        "final_learning_rate": 0.001,
        "final_num_steps": 80,
    }
}

# (algorithm key, its config, the torch class and keywords of the by-hand for-loop reference)
ALGORITHMS: list[tuple[str, dict[str, Any], type[torch.optim.Optimizer], dict[str, Any]]] = [
    ("adam", {"eps": 1e-7}, torch.optim.Adam, {"eps": 1e-7}),
    ("adamw", {"weight_decay": 0.05}, torch.optim.AdamW, {"weight_decay": 0.05}),
    ("sgd", {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}),
    ("adagrad", {}, torch.optim.Adagrad, {"eps": 1e-10}),
    ("rmsprop", {}, torch.optim.RMSprop, {}),  # no fused kernel
]


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Linear(6, 5)
        self.second = torch.nn.Linear(5, 300)
        self.head = torch.nn.Linear(300, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.second(torch.tanh(self.first(x)))))


def batch(step: int) -> torch.Tensor:
    return torch.randn(8, 6, generator=torch.Generator().manual_seed(step))


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, steps: range) -> None:
    for step in steps:
        optimizer.zero_grad()
        model(batch(step)).square().mean().backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def config(key: str, algorithm: dict[str, Any], **speed: Any) -> OptimizerConfig:
    return OptimizerConfig(**{key: {**algorithm, **speed}}, learning_rate=SCHEDULE)


def for_loop_reference(torch_class: type[torch.optim.Optimizer], kwargs: dict[str, Any]) -> Model:
    """100 steps by hand: torch's for-loop, the LR set from compute_lr before each step."""
    model = Model()
    optimizer = torch_class(model.parameters(), lr=0.0, foreach=False, **kwargs)
    from tml.optimizers.config import LearningRate

    schedule = LearningRate(**SCHEDULE)
    for step in range(100):
        optimizer.param_groups[0]["lr"] = compute_lr(schedule, step)
        optimizer.zero_grad()
        model(batch(step)).square().mean().backward()
        optimizer.step()
    return model


def assert_close_to(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    for (name, got), want in zip(model.named_parameters(), reference.parameters(), strict=True):
        # rtol 1e-6 of the tensor's scale: fused kernels round differently by a few float32 ulps.
        torch.testing.assert_close(
            got.detach(), want.detach(), rtol=1e-6, atol=1e-6 * float(want.abs().max()), msg=name
        )


@pytest.mark.parametrize(
    ("key", "algorithm", "torch_class", "kwargs"), ALGORITHMS, ids=[a[0] for a in ALGORITHMS]
)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_implementation_from_the_config_equals_the_for_loop_reference(
    key: str, algorithm: dict[str, Any], torch_class: Any, kwargs: dict[str, Any], implementation: str
) -> None:
    reference = for_loop_reference(torch_class, kwargs)
    model = Model()
    optimizer, scheduler = build_optimizer(model, config(key, algorithm, implementation=implementation))
    train(model, optimizer, scheduler, range(100))
    assert_close_to(model, reference)
    assert not torch.equal(model.head.weight, Model().head.weight)  # it did train


def mean_tensor_size(model: torch.nn.Module) -> float:
    sizes = [p.numel() for p in model.parameters()]
    return sum(sizes) / len(sizes)


@pytest.mark.parametrize(
    ("key", "implementation", "expected"),
    [
        ("adam", "auto", {"fused": True, "foreach": False}),  # torch has a fused Adam on CPU
        ("adam", "foreach", {"fused": False, "foreach": True}),
        ("adam", "for_loop", {"fused": False, "foreach": False}),
        ("rmsprop", "fused", {"foreach": True}),  # no fused RMSprop: falls back to foreach
        ("rmsprop", "for_loop", {"foreach": False}),
        # auto without a fused kernel, on CPU: foreach iff the mean tensor size is <= 2048
        ("rmsprop", "auto", {"foreach": mean_tensor_size(Model()) <= 2048}),
    ],
)
def test_the_group_dicts_carry_the_chosen_kernel(
    key: str, implementation: str, expected: dict[str, Any]
) -> None:
    optimizer, _ = build_optimizer(
        Model(), OptimizerConfig(**{key: {"lr": 0.1, "implementation": implementation}})
    )
    group = optimizer.param_groups[0]
    assert {name: group[name] for name in expected} == expected


def test_tensor_lr_makes_the_lr_a_0_dim_float64_tensor_holding_the_schedule_value() -> None:
    model = Model()
    cfg = config("sgd", {}, tensor_lr=True)
    optimizer, scheduler = build_optimizer(model, cfg)
    lr = optimizer.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.dim() == 0 and lr.dtype == torch.float64
    for step in range(1, 15):
        scheduler.step()
        assert optimizer.param_groups[0]["lr"] is lr  # updated in place
        assert float(lr) == compute_lr(cfg.schedule(), step)


def test_with_tensor_lr_an_automatic_foreach_becomes_the_for_loop_for_adam(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where auto would pick foreach for Adam (no fused kernel for the device, e.g. a tensor
    # subclass), torch would refuse the tensor lr at the first step: the for-loop is taken instead.
    import tml.optimizers.plan as plan_module

    monkeypatch.setattr(plan_module, "implementation_kwargs", lambda *args: {"foreach": True})
    with_tensor, _ = build_optimizer(Model(), OptimizerConfig(adam={"lr": 0.1, "tensor_lr": True}))
    without, _ = build_optimizer(Model(), OptimizerConfig(adam={"lr": 0.1}))
    assert with_tensor.param_groups[0]["foreach"] is False
    assert without.param_groups[0]["foreach"] is True


@pytest.mark.parametrize(
    ("key", "algorithm", "torch_class", "kwargs"), ALGORITHMS, ids=[a[0] for a in ALGORITHMS]
)
def test_flatten_from_the_config_equals_the_non_flat_optimizer(
    key: str, algorithm: dict[str, Any], torch_class: Any, kwargs: dict[str, Any]
) -> None:
    plain_model, flat_model = Model(), Model()
    plain, plain_scheduler = build_optimizer(plain_model, config(key, algorithm))
    flat, flat_scheduler = build_optimizer(flat_model, config(key, algorithm, flatten=True))
    assert isinstance(flat, FlatOptimizer) and not isinstance(plain, FlatOptimizer)
    assert len(flat.buffers) == 1
    train(plain_model, plain, plain_scheduler, range(100))
    train(flat_model, flat, flat_scheduler, range(100))
    assert_close_to(flat_model, plain_model)
    # The model's parameters are views into the buffer, still the model's own objects.
    assert all(
        p.data.untyped_storage().data_ptr() == flat.buffers[0].data.untyped_storage().data_ptr()
        for p in flat_model.parameters()
    )


def round_trip(state: Any) -> Any:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_flat_checkpoint_loads_into_the_non_flat_optimizer_of_the_same_config_and_back() -> None:
    flat_config = config("adam", {}, flatten=True)
    plain_config = config("adam", {})
    # Uninterrupted: 90 steps, non-flat.
    reference = Model()
    optimizer, scheduler = build_optimizer(reference, plain_config)
    train(reference, optimizer, scheduler, range(90))
    # Flat for 30 steps -> plain for 30 -> flat for 30, through checkpoints.
    model = Model()
    optimizer, scheduler = build_optimizer(model, flat_config)
    train(model, optimizer, scheduler, range(0, 30))
    for step_range, next_config in ((range(30, 60), plain_config), (range(60, 90), flat_config)):
        saved = round_trip(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            }
        )
        model = Model()
        model.load_state_dict(saved["model"])
        optimizer, scheduler = build_optimizer(model, next_config)
        # flatten is in each group's fingerprint: under strict a change is refused, under config
        # it is applied (the state is per parameter either way) and reported.
        with pytest.raises(ResumeError, match=r"group 'default': flatten: (True|False) in the checkpoint"):
            optimizer.load_state_dict(saved["optimizer"])
        with pytest.warns(ResumeWarning, match=r"group 'default': flatten: (True|False) in the checkpoint"):
            load_optimizer_state(optimizer, saved["optimizer"], policy="config")
        scheduler.load_state_dict(saved["scheduler"])
        assert isinstance(optimizer, FlatOptimizer) == (next_config is flat_config)
        train(model, optimizer, scheduler, step_range)
    assert_close_to(model, reference)


def test_flatten_per_group_builds_a_combined_optimizer_that_steps_like_the_non_flat_one() -> None:
    def groups_config(flatten: bool) -> OptimizerConfig:
        # Small LRs: a chaotic run would amplify the kernels' last-ulp rounding differences.
        return OptimizerConfig(
            adam={"lr": 0.001},
            param_groups=[
                {
                    "name": "head",
                    "params": ["head.*"],
                    "sgd": {"lr": 0.01, "momentum": 0.9, "flatten": flatten},
                },
                {"name": "second", "params": ["second.*"], "adam": {"lr": 0.002, "flatten": flatten}},
            ],
        )

    plain_model, flat_model = Model(), Model()
    plain, plain_scheduler = build_optimizer(plain_model, groups_config(False))
    flat, flat_scheduler = build_optimizer(flat_model, groups_config(True))
    assert isinstance(flat, CombinedOptimizer)
    # The flat Adam group cannot share a torch optimizer with the non-flat default Adam group.
    assert sorted(type(child).__name__ for child in flat.optimizers) == [
        "Adam",
        "FlatOptimizer",
        "FlatOptimizer",
    ]
    assert [group["name"] for group in flat.param_groups] == ["head", "second", "default"]
    train(plain_model, plain, plain_scheduler, range(100))
    train(flat_model, flat, flat_scheduler, range(100))
    assert_close_to(flat_model, plain_model)


class SparseModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 3, sparse=True)
        self.head = torch.nn.Linear(3, 1)


def test_flatten_of_sparse_gradients_is_refused_at_build_time_naming_the_group() -> None:
    cfg = OptimizerConfig(
        adam={"lr": 0.1},
        param_groups=[{"name": "tables", "params": ["embedding.*"], "sgd": {"lr": 0.1, "flatten": True}}],
    )
    with pytest.raises(
        FlattenError, match=r"param group\(s\) 'tables': flatten: embedding.weight: .*sparse=True"
    ):
        build_optimizer(SparseModel(), cfg)


def test_flatten_of_a_tensor_subclass_is_refused_at_build_time() -> None:
    class Subclass(torch.Tensor):
        pass

    model = torch.nn.Linear(2, 1)
    model.weight = torch.nn.Parameter(torch.zeros(1, 2).as_subclass(Subclass))
    with pytest.raises(FlattenError, match="tensor subclass"):
        build_optimizer(model, OptimizerConfig(adam={"lr": 0.1, "flatten": True}))


# (config, the path and message the load error must show)
LOAD_ERRORS: list[tuple[dict[str, Any], str]] = [
    (
        {"adafactor": {"lr": 0.1, "flatten": True}},
        r"adafactor\.flatten\n.*adafactor \(Adafactor\) cannot step flat",
    ),
    ({"muon": {"lr": 0.1, "flatten": True}}, r"muon\.flatten\n.*muon \(Muon\) cannot step flat"),
    ({"sparse_adam": {"lr": 0.1, "flatten": True}}, r"sparse_adam\.flatten\n.*SparseAdam"),
    (
        {"custom": {"class_path": "torch.optim:Adafactor", "lr": 0.1, "flatten": True}},
        r"custom\.flatten\n.*Adafactor",
    ),
    (
        {
            "adam": {"lr": 0.1},
            "param_groups": [{"name": "m", "params": ["w"], "muon": {"lr": 0.1, "flatten": True}}],
        },
        r"param_groups\.0\.muon\.flatten\n.*cannot step flat buffers",
    ),
    (
        {"adam": {"lr": 0.1, "tensor_lr": True, "implementation": "foreach"}},
        r"adam\.tensor_lr\n.*tensor_lr cannot be combined with implementation foreach for Adam",
    ),
    (
        {"adamw": {"lr": 0.1, "tensor_lr": True, "flatten": True, "implementation": "foreach"}},
        r"adamw\.tensor_lr\n.*foreach for AdamW",
    ),
    (
        {"adam": {"lr": 0.1, "implementation": "fast"}},
        r"adam\.implementation\n.*'auto', 'fused', 'foreach' or 'for_loop'",
    ),
]


@pytest.mark.parametrize(("data", "message"), LOAD_ERRORS)
def test_speed_fields_are_checked_when_the_config_is_loaded(data: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        OptimizerConfig.model_validate(data)


@pytest.mark.parametrize(
    "data",
    [
        {"custom": {"class_path": "torch.optim:Adam", "lr": 0.1, "flatten": True}},  # elementwise
        {"sgd": {"lr": 0.1, "tensor_lr": True, "implementation": "foreach"}},  # torch takes it
        {"adam": {"lr": 0.1, "tensor_lr": True, "flatten": True}},
    ],
)
def test_combinations_torch_can_do_load_and_build(data: dict[str, Any]) -> None:
    model = Model()
    optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(data))
    train(model, optimizer, scheduler, range(3))


def test_compiled_step_with_tensor_lr_from_a_config_compiles_once_over_100_steps() -> None:
    schedule_config = config("adam", {}, tensor_lr=True, implementation="for_loop")
    model = Model()
    optimizer, scheduler = build_optimizer(model, schedule_config)
    compiled_step, graphs = compile_counting_graphs(optimizer.step)
    lrs = []
    try:
        with torch._dynamo.config.patch(error_on_recompile=True):
            for step in range(100):
                lrs.append(float(optimizer.param_groups[0]["lr"]))
                optimizer.zero_grad()
                model(batch(step)).square().mean().backward()
                compiled_step()
                scheduler.step()
    finally:
        torch._dynamo.reset()
    assert len(graphs) == 1
    expected = [compute_lr(schedule_config.schedule(), step) for step in range(100)]
    assert lrs == expected and len(set(lrs)) > 50  # the schedule moved at (almost) every step


@pytest.mark.parametrize(
    "key",
    ["adam", "adamw", "sgd", "adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam", "asgd", "rprop"],
)
def test_many_groups_build_the_same_optimizer_as_torch_constructs_it(key: str) -> None:
    # build_optimizer fills the groups' parameters after construction (torch's per-group
    # disjointness check is quadratic): the result equals torch's own construction.
    model = Model()
    cfg = OptimizerConfig.model_validate(
        {
            key: {"lr": 0.01},
            "exclude_from_weight_decay": ["bias"] if key not in ("rprop",) else [],
            "param_groups": [{"name": "head", "params": ["head.*"], "lr_multiplier": 0.5}],
        }
    )
    optimizer, _ = build_optimizer(model, cfg)
    assert len(optimizer.param_groups) > 1
    first = optimizer.param_groups[0]
    accepted = inspect.signature(type(optimizer)).parameters
    by_torch = type(optimizer)(
        [dict(group) for group in optimizer.param_groups],
        **{name: value for name, value in first.items() if name in accepted and name != "params"},
    )
    assert optimizer.defaults == by_torch.defaults
    for ours, theirs in zip(optimizer.param_groups, by_torch.param_groups, strict=True):
        assert ours.keys() == theirs.keys()
        assert all(
            ours[name] is theirs[name] or ours[name] == theirs[name] for name in ours if name != "params"
        )
        assert [id(p) for p in ours["params"]] == [id(p) for p in theirs["params"]]
    train(model, optimizer, None, range(2))


NAMES = [
    "towers.a.0.weight",
    "towers.a.0.bias",
    "towers.ab.weight",
    "towers.b1.weight",
    "towers.b22.bias",
    "tower.x",
    "towersXa",
    "embedding.weight",
    "emb.weight",
    "a",
    "ab",
    "abbb",
    "b",
]


@pytest.mark.parametrize(
    "pattern",
    [
        "towers.a.*",
        "towers.a*",
        "*.bias",
        "towers.?1.*",
        "emb*",
        "a",
        "re:^towers\\.a",
        "re:^towers.a",  # an unescaped dot matches any character
        "re:^towers\\.b\\d+\\.",
        "re:^ab+",
        "re:^ab*",
        "re:^ab?",
        "re:^a{2}",
        "re:^tower|^emb",
        "re:^(towers)\\.a",
        "re:^[te]",
        "re:weight$",
        "re:^",
    ],
)
def test_prefix_narrowed_matching_equals_testing_every_name(pattern: str) -> None:
    from tml.optimizers.groups.patterns import NameIndex, compile_pattern, matching_positions

    expected = [position for position, name in enumerate(NAMES) if compile_pattern(pattern)(name)]
    assert matching_positions([pattern], NAMES, NameIndex(NAMES)) == expected
