"""The resume contract of ``optimizer.load_state_dict``: the regressions of issue 13, and the policies.

Every test loads a state saved by ``build_optimizer``'s optimizer into another build, through
torch's own ``load_state_dict`` (as a training loop does after ``torch.load``) or
``load_optimizer_state(policy=...)``. The tests of defects 3-6 use only what main already had
(``build_optimizer``, ``OptimizerConfig``, ``ValueError``/``TypeError``), so each fails there.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
import torch

from tml.optimizers import OptimizerConfig, build_optimizer

# ---------------------------------------------------------------- helpers


class Towers(torch.nn.Module):
    """Two towers over one input: ``a`` (4 -> 3) and ``b`` (4 -> ``b_width``)."""

    def __init__(self, b_width: int = 5) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, 3)
        self.b = torch.nn.Linear(4, b_width)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.a(inputs).square().sum() + self.b(inputs).square().sum()


def trained(config: dict[str, Any], model: torch.nn.Module, steps: int = 2) -> tuple[Any, Any]:
    """``build_optimizer(model, config)`` after ``steps`` steps on fixed inputs."""
    optimizer, scheduler = build_optimizer(model, OptimizerConfig.model_validate(config))
    for step in range(steps):
        optimizer.zero_grad()
        model(torch.full((2, 4), 0.5 + step)).backward()
        optimizer.step()
        scheduler.step()
    return optimizer, scheduler


def through_torch_save(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
    return loaded


def seeded(seed: int, b_width: int = 5) -> Towers:
    torch.manual_seed(seed)
    return Towers(b_width)


HEAD_A = {"name": "head", "params": ["a.*"]}
HEAD_B = {"name": "head", "params": ["b.*"]}

LAYOUTS = {
    "plain": {"adam": {"lr": 0.1}},
    "flatten": {"adam": {"lr": 0.1, "flatten": True}},
    "combined with a flat child": {"adam": {"lr": 0.1, "flatten": True}, "extra_sgd": True},
}


def layout_config(layout: str, head: dict[str, Any]) -> dict[str, Any]:
    base = dict(LAYOUTS[layout])
    if base.pop("extra_sgd", False):  # the head on SGD: a CombinedOptimizer of SGD and a flat Adam
        return {**base, "param_groups": [{**head, "sgd": {"lr": 0.1, "momentum": 0.9}}]}
    return {**base, "param_groups": [head]}


# ---------------------------------------------------------------- defect 3: another model's state


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_group_of_other_shapes_is_refused_before_any_step(layout: str) -> None:
    # The checkpoint's group 'head' held a.* (Linear(4, 3)); this build's holds b.* (Linear(4, 5)).
    # On main the load succeeded and fused Adam then wrote out of bounds.
    saved, _ = trained(layout_config(layout, HEAD_A), seeded(0))
    optimizer, _ = trained(layout_config(layout, HEAD_B), seeded(0), steps=0)
    state = through_torch_save(saved.state_dict())
    with pytest.raises(
        ValueError, match=r"group 'head': parameter 0: 'a\.weight' in the checkpoint, 'b\.weight' here"
    ):
        optimizer.load_state_dict(state)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_swapped_towers_of_equal_shapes_are_refused(layout: str) -> None:
    # Equal shapes: on main nothing was reported and the towers swapped their Adam moments.
    saved, _ = trained(layout_config(layout, HEAD_A), seeded(0, b_width=3))
    optimizer, _ = trained(layout_config(layout, HEAD_B), seeded(0, b_width=3), steps=0)
    with pytest.raises(
        ValueError, match=r"group 'head': parameter 0: 'a\.weight' in the checkpoint, 'b\.weight' here"
    ):
        optimizer.load_state_dict(saved.state_dict())


def test_a_parameter_of_another_shape_under_the_same_name_is_refused() -> None:
    saved, _ = trained({"adam": {"lr": 0.1}}, seeded(0, b_width=5))
    optimizer, _ = trained({"adam": {"lr": 0.1}}, seeded(0, b_width=6), steps=0)
    with pytest.raises(
        ValueError,
        match=r"group 'default': parameter 'b\.weight': shape \[5, 4\] in the checkpoint, \[6, 4\] here",
    ):
        optimizer.load_state_dict(saved.state_dict())


# ---------------------------------------------------------------- defect 4: other hyperparameters

ADAM = {"adam": {"lr": 0.1, "weight_decay": 0.01, "implementation": "for_loop"}}

# (name, saved config, config here, expected message: the path, the checkpoint's value, this value)
CHANGED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "weight_decay",
        ADAM,
        {"adam": {**ADAM["adam"], "weight_decay": 0.5}},
        r"group 'default': hyperparameters\.weight_decay: 0\.01 in the checkpoint, 0\.5 here",
    ),
    (
        "betas",
        ADAM,
        {"adam": {**ADAM["adam"], "betas": [0.8, 0.9]}},
        r"hyperparameters\.betas\[0\]: 0\.9 in the checkpoint, 0\.8 here; "
        r"group 'default': hyperparameters\.betas\[1\]: 0\.999 in the checkpoint, 0\.9 here",
    ),
    (
        "amsgrad",
        ADAM,
        {"adam": {**ADAM["adam"], "amsgrad": True}},
        r"amsgrad: False in the checkpoint, True here",
    ),
    (
        "implementation",
        ADAM,
        {"adam": {**ADAM["adam"], "implementation": "fused"}},
        r"implementation: 'for_loop' in the checkpoint, 'fused' here",
    ),
    (
        "tensor_lr",
        ADAM,
        {"adam": {**ADAM["adam"], "tensor_lr": True}},
        r"tensor_lr: False in the checkpoint, True here",
    ),
    (
        "schedule",
        ADAM,
        {"adam": {**ADAM["adam"], "lr": 0.2}},
        r"schedule\.constant: 0\.1 in the checkpoint, 0\.2 here",
    ),
    (  # the same written schedule over a longer run: the resolved schedules (what trains) differ
        "total_steps",
        {
            **ADAM,
            "total_steps": 100,
            "learning_rate": {"cosine_decay": {"learning_rate": 0.1, "decay_steps": "50%"}},
        },
        {
            **ADAM,
            "total_steps": 200,
            "learning_rate": {"cosine_decay": {"learning_rate": 0.1, "decay_steps": "50%"}},
        },
        r"schedule\.cosine_decay\.decay_steps: 50 in the checkpoint, 100 here",
    ),
]


@pytest.mark.parametrize(
    ("saved_config", "config", "expected"), [c[1:] for c in CHANGED], ids=[c[0] for c in CHANGED]
)
def test_a_changed_hyperparameter_is_refused_under_strict(
    saved_config: dict[str, Any], config: dict[str, Any], expected: str
) -> None:
    # On main torch's load copied the checkpoint's values over the config's without a word.
    saved, _ = trained(saved_config, seeded(0))
    optimizer, _ = trained(config, seeded(0), steps=0)
    before = copy.deepcopy(optimizer.state_dict())
    with pytest.raises(ValueError, match=expected):
        optimizer.load_state_dict(through_torch_save(saved.state_dict()))
    assert optimizer.state_dict()["state"] == before["state"] == {}  # nothing was loaded


# Algorithm classes: refused under every policy (on main adam -> sgd loaded and failed at the first
# step with KeyError 'momentum'; sgd -> adam raised a bare KeyError 'step'; adamw -> adam kept
# decoupled_weight_decay=True).
CLASS_CHANGES = [
    ({"adam": {"lr": 0.1}}, {"sgd": {"lr": 0.1}}, r"algorithm: 'adam' in the checkpoint, 'sgd' here"),
    (
        {"sgd": {"lr": 0.1, "momentum": 0.9}},
        {"adam": {"lr": 0.1}},
        r"algorithm: 'sgd' in the checkpoint, 'adam' here",
    ),
    ({"adamw": {"lr": 0.1}}, {"adam": {"lr": 0.1}}, r"algorithm: 'adamw' in the checkpoint, 'adam' here"),
]


@pytest.mark.parametrize(
    ("saved_config", "config", "expected"), CLASS_CHANGES, ids=["adam-sgd", "sgd-adam", "adamw-adam"]
)
def test_another_algorithm_is_refused(
    saved_config: dict[str, Any], config: dict[str, Any], expected: str
) -> None:
    saved, _ = trained(saved_config, seeded(0))
    optimizer, _ = trained(config, seeded(0), steps=0)
    with pytest.raises(ValueError, match=expected):
        optimizer.load_state_dict(saved.state_dict())


@pytest.mark.parametrize(
    ("saved_config", "config", "expected"), CLASS_CHANGES, ids=["adam-sgd", "sgd-adam", "adamw-adam"]
)
def test_another_algorithm_is_refused_under_the_config_policy(
    saved_config: dict[str, Any], config: dict[str, Any], expected: str
) -> None:
    from tml.optimizers import ResumeError, load_optimizer_state

    saved, _ = trained(saved_config, seeded(0))
    optimizer, _ = trained(config, seeded(0), steps=0)
    with pytest.raises(ResumeError, match=r"refused under every resume policy.*" + expected):
        load_optimizer_state(optimizer, saved.state_dict(), policy="config")


# ---------------------------------------------------------------- the config policy


@pytest.mark.parametrize(
    ("saved_config", "config", "expected"), [c[1:] for c in CHANGED], ids=[c[0] for c in CHANGED]
)
def test_the_config_policy_applies_the_config_and_keeps_the_state(
    saved_config: dict[str, Any], config: dict[str, Any], expected: str
) -> None:
    from tml.optimizers import ResumeWarning, load_optimizer_state

    saved, saved_scheduler = trained(saved_config, seeded(0))
    state = through_torch_save(saved.state_dict())
    # The reference: this config's optimizer built over the saved parameters, its state set by hand.
    optimizer, scheduler = trained(config, seeded(0), steps=0)
    with pytest.warns(ResumeWarning, match=expected):
        load_optimizer_state(optimizer, state, policy="config")
    scheduler.load_state_dict(saved_scheduler.state_dict(), policy="config")
    fresh, _ = trained(config, seeded(0), steps=0)
    for mine, theirs in zip(optimizer.param_groups, fresh.param_groups, strict=True):
        for key, value in theirs.items():
            if key not in ("params", "lr"):
                assert mine[key] == value, key  # every hyperparameter is the config's
        assert type(mine["lr"]) is type(theirs["lr"])
    for index, values in state["state"].items():
        for key, value in values.items():
            assert torch.equal(optimizer.state_dict()["state"][index][key], value), key  # moments kept
    assert scheduler.last_epoch == saved_scheduler.last_epoch
    assert scheduler.get_last_lr() == [float(group["lr"]) for group in optimizer.param_groups]


def test_the_config_policy_is_the_configs_resume_field() -> None:
    from tml.optimizers import ResumeWarning

    saved, _ = trained(ADAM, seeded(0))
    optimizer, _ = trained(
        {"adam": {**ADAM["adam"], "weight_decay": 0.5}, "resume": "config"}, seeded(0), steps=0
    )
    with pytest.warns(ResumeWarning, match=r"weight_decay: 0\.01 in the checkpoint, 0\.5 here"):
        optimizer.load_state_dict(saved.state_dict())
    assert optimizer.param_groups[0]["weight_decay"] == 0.5


def test_the_same_config_resumes_bit_identically_in_either_load_order() -> None:
    config = {
        "adam": {"lr": 0.1},
        "learning_rate": {"linear_ramp_to_constant": {"learning_rate": 0.1, "num_ramp_steps": 3}},
    }
    model = seeded(0)
    optimizer, scheduler = trained(config, model, steps=2)
    optimizer_state, scheduler_state = copy.deepcopy(optimizer.state_dict()), scheduler.state_dict()
    saved_params = copy.deepcopy(model.state_dict())
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.full((2, 4), 3.0)).backward()
        optimizer.step()
        scheduler.step()
    for scheduler_first in (False, True):
        other = seeded(1)
        other.load_state_dict(saved_params)
        resumed, resumed_scheduler = trained(config, other, steps=0)
        if scheduler_first:
            resumed_scheduler.load_state_dict(scheduler_state)
        # torch's load keeps the given tensors (same dtype and device): load a copy each time
        resumed.load_state_dict(through_torch_save(optimizer_state))
        if not scheduler_first:
            resumed_scheduler.load_state_dict(scheduler_state)
        for _ in range(2):
            resumed.zero_grad()
            other(torch.full((2, 4), 3.0)).backward()
            resumed.step()
            resumed_scheduler.step()
        for name, value in model.state_dict().items():
            assert torch.equal(other.state_dict()[name], value), name
        assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()


def test_a_state_without_records_is_refused_under_strict() -> None:
    model = seeded(0)
    plain = torch.optim.Adam([{"params": list(model.parameters()), "name": "default"}], lr=0.1)
    optimizer, _ = trained({"adam": {"lr": 0.1}}, model, steps=0)
    from tml.optimizers import ResumeError

    with pytest.raises(ResumeError, match=r"records no parameter names, shapes or config"):
        optimizer.load_state_dict(plain.state_dict())


def test_a_flat_checkpoint_still_loads_into_a_plain_torch_optimizer() -> None:
    model = seeded(0)
    saved, _ = trained({"adam": {"lr": 0.1, "flatten": True}}, model)
    plain = torch.optim.Adam(model.parameters(), lr=0.1)
    plain.load_state_dict(saved.state_dict())  # the record is one more key of each group for torch
    assert torch.equal(plain.state_dict()["state"][0]["exp_avg"], saved.state_dict()["state"][0]["exp_avg"])


# ---------------------------------------------------------------- defect 5: NAdam, one-element buffer


def test_nadam_flatten_with_a_one_element_buffer_saves_and_resumes_bit_identically() -> None:
    # Linear(3, 1): its bias alone in 'default.no_weight_decay' is a flat buffer of one element; on
    # main state_dict() raised "narrow() cannot be applied to a 0-dim tensor" (NAdam's mu_product).
    config = {
        "nadam": {"lr": 0.01, "weight_decay": 0.1, "flatten": True},
        "exclude_from_weight_decay": ["bias"],
    }
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer, _ = build_optimizer(model, OptimizerConfig.model_validate(config))

    def step(net: torch.nn.Module, opt: torch.optim.Optimizer, value: float) -> None:
        opt.zero_grad()
        net(torch.full((2, 3), value)).square().sum().backward()
        opt.step()

    step(model, optimizer, 1.0)
    state, params = through_torch_save(optimizer.state_dict()), copy.deepcopy(model.state_dict())
    step(model, optimizer, 2.0)
    resumed_model = torch.nn.Linear(3, 1)
    resumed_model.load_state_dict(params)
    resumed, _ = build_optimizer(resumed_model, OptimizerConfig.model_validate(config))
    resumed.load_state_dict(state)
    step(resumed_model, resumed, 2.0)
    for name, value in model.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[name], value), name
    assert [group["name"] for group in optimizer.param_groups] == ["default", "default.no_weight_decay"]


# ---------------------------------------------------------------- defect 6: a group added later


@pytest.mark.parametrize(
    "config", [{"adam": {"lr": 0.1}}, {"adam": {"lr": 0.1, "flatten": True}}], ids=["plain", "flatten"]
)
def test_adding_a_param_group_after_the_build_is_refused(config: dict[str, Any]) -> None:
    model = seeded(0)
    model.a.requires_grad_(False)  # progressive unfreezing: a.* is added later (Lightning's BaseFinetuning)
    optimizer, _ = build_optimizer(model, OptimizerConfig.model_validate(config))
    model.a.requires_grad_(True)
    with pytest.raises(
        (TypeError, RuntimeError), match=r"does not take new param groups|laid out at construction"
    ):
        optimizer.add_param_group({"params": list(model.a.parameters()), "name": "a"})


def test_lrshim_refuses_to_step_over_a_group_added_to_a_torch_optimizer() -> None:
    from tml.optimizers import LRShim
    from tml.optimizers.schedules import LearningRate

    model = seeded(0)
    optimizer = torch.optim.SGD([{"params": list(model.b.parameters()), "name": "b"}], lr=1.0)
    scheduler = LRShim(optimizer, {"b": LearningRate(constant=0.1)})
    optimizer.add_param_group({"params": list(model.a.parameters()), "name": "a", "lr": 123.0})
    with pytest.raises(RuntimeError, match=r"the optimizer has 2 param groups, 1 when this LRShim was built"):
        scheduler.step()
