"""Mixed algorithms: one ``CombinedOptimizer`` that behaves as a ``torch.optim.Optimizer``."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
import torch
from tests.group_models import TowerModel, parameters_equal, round_trip, tower_batch, train
from torch.optim.optimizer import register_optimizer_step_post_hook

from tml.optimizers import CombinedOptimizer, LRShim, OptimizerConfig, build_optimizer, compute_lr

TASKS = ["engagement.is_liked", "engagement.is_replied"]
RAMP = {"linear_ramp_to_constant": {"learning_rate": 0.01, "num_ramp_steps": 4}}
COSINE = {
    "linear_ramp_to_cosine": {
        "learning_rate": 0.02,
        "final_learning_rate": 0.001,
        "num_ramp_steps": 2,
        "final_num_steps": 9,
    }
}


def mixed_config(**kwargs: Any) -> OptimizerConfig:
    return OptimizerConfig(
        adamw={"weight_decay": 0.01},
        learning_rate=RAMP,
        param_groups=[
            {
                "name": "liked",
                "params": ["towers.engagement__is_liked.*"],
                "adam": {"betas": [0.8, 0.9]},
                "learning_rate": COSINE,
            },
            {"name": "embeddings", "params": ["embedding.*"], "sgd": {"lr": 0.1, "momentum": 0.9}},
        ],
        **kwargs,
    )


def build(seed: int = 0) -> tuple[TowerModel, CombinedOptimizer, LRShim]:
    torch.manual_seed(seed)
    model = TowerModel(TASKS)
    optimizer, scheduler = build_optimizer(model, mixed_config())
    assert isinstance(optimizer, CombinedOptimizer)
    return model, optimizer, scheduler


def test_mixed_algorithms_give_one_optimizer_with_groups_in_rule_order() -> None:
    model, optimizer, _ = build()
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert [group["name"] for group in optimizer.param_groups] == ["liked", "embeddings", "default"]
    assert [type(child) for child in optimizer.optimizers] == [
        torch.optim.Adam,
        torch.optim.SGD,
        torch.optim.AdamW,
    ]
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert groups["liked"]["betas"] == (0.8, 0.9) and groups["embeddings"]["momentum"] == 0.9
    assert {id(p) for p in groups["embeddings"]["params"]} == {id(model.embedding.weight)}


def test_it_steps_exactly_like_the_hand_built_torch_optimizers() -> None:
    model, optimizer, scheduler = build()
    torch.manual_seed(0)
    reference = TowerModel(TASKS)
    liked = [p for name, p in reference.named_parameters() if name.startswith("towers.engagement__is_liked.")]
    rest = [
        p
        for name, p in reference.named_parameters()
        if not name.startswith(("towers.engagement__is_liked.", "embedding."))
    ]
    by_hand = [
        # implementation: auto picks torch's fused kernel for these classes on CPU float32.
        torch.optim.Adam(liked, lr=0.0, betas=(0.8, 0.9), eps=1e-7, fused=True),
        torch.optim.SGD([reference.embedding.weight], lr=0.1, momentum=0.9, fused=True),
        torch.optim.AdamW(rest, lr=0.0, weight_decay=0.01, fused=True),
    ]
    cosine = mixed_config().param_groups[0].learning_rate
    ramp = mixed_config().schedule()
    assert cosine is not None
    for step in range(8):
        by_hand[0].param_groups[0]["lr"] = compute_lr(cosine, step)
        by_hand[2].param_groups[0]["lr"] = compute_lr(ramp, step)
        for child in by_hand:
            child.zero_grad()
        (reference(tower_batch(step)) ** 2).mean().backward()
        for child in by_hand:
            child.step()
    train(model, optimizer, scheduler, range(8), tower_batch)
    assert parameters_equal(model, reference)


def test_state_dict_is_keyed_by_group_name_and_resume_is_bit_identical() -> None:
    reference, optimizer, scheduler = build()
    train(reference, optimizer, scheduler, range(10), tower_batch)

    first, optimizer, scheduler = build()
    train(first, optimizer, scheduler, range(5), tower_batch)
    saved = optimizer.state_dict()
    assert list(saved["groups"]) == ["liked", "embeddings", "default"]
    assert set(saved["groups"]["embeddings"]["state"]) == {0}  # the one parameter of the group
    assert "momentum_buffer" in saved["groups"]["embeddings"]["state"][0]
    checkpoint = round_trip(
        {"model": first.state_dict(), "optimizer": saved, "scheduler": scheduler.state_dict()}
    )

    resumed, optimizer, scheduler = build(seed=1)  # other initial weights: all come from the checkpoint
    resumed.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    train(resumed, optimizer, scheduler, range(5, 10), tower_batch)
    assert parameters_equal(resumed, reference)


def test_the_scheduler_writes_into_the_live_groups_after_an_optimizer_load() -> None:
    model, optimizer, scheduler = build()
    train(model, optimizer, scheduler, range(3), tower_batch)
    state = optimizer.state_dict()
    old_dicts = [child.param_groups[0] for child in optimizer.optimizers]
    optimizer.load_state_dict(state)  # torch replaces the children's group dicts
    new_dicts = [child.param_groups[0] for child in optimizer.optimizers]
    assert all(old is not new for old, new in zip(old_dicts, new_dicts, strict=True))
    scheduler.step()
    cosine = mixed_config().param_groups[0].learning_rate
    assert cosine is not None
    assert optimizer.optimizers[0].param_groups[0]["lr"] == compute_lr(cosine, 4)
    assert optimizer.optimizers[2].param_groups[0]["lr"] == compute_lr(mixed_config().schedule(), 4)
    assert optimizer.param_groups[0] is optimizer.optimizers[0].param_groups[0]


def test_a_plain_optimizer_is_followed_after_load_too() -> None:
    model = torch.nn.Linear(2, 2)
    cfg = OptimizerConfig(adam={}, learning_rate=RAMP)
    optimizer, scheduler = build_optimizer(model, cfg)
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == compute_lr(cfg.schedule(), 1)


def test_add_param_group_is_refused_clearly() -> None:
    _, optimizer, _ = build()
    with pytest.raises(TypeError, match="groups come from the config"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})


def test_checkpoints_of_other_groups_are_refused() -> None:
    _, optimizer, _ = build()
    state = optimizer.state_dict()
    renamed = {
        **state,
        "groups": {("towers" if name == "liked" else name): value for name, value in state["groups"].items()},
    }
    with pytest.raises(
        ValueError, match=r"the checkpoint has the groups \['towers', 'embeddings', 'default'\]"
    ):
        optimizer.load_state_dict(renamed)
    with pytest.raises(ValueError, match="not a CombinedOptimizer state"):
        optimizer.load_state_dict(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]).state_dict())


def test_zero_grad_closure_and_torch_schedulers_work() -> None:
    model, optimizer, _ = build()
    (model(tower_batch(0)) ** 2).mean().backward()
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())

    def closure() -> float:
        optimizer.zero_grad()
        loss = (model(tower_batch(1)) ** 2).mean()
        loss.backward()
        return float(loss.detach())

    assert isinstance(optimizer.step(closure), float)
    lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)  # accepts it as an Optimizer
    assert [group["lr"] for group in optimizer.param_groups] == [0.5 * lr for lr in lambda_lr.base_lrs]
    assert len(optimizer.state) == sum(1 for p in model.parameters())


def test_a_deep_copy_has_the_same_groups_on_its_own_parameters() -> None:
    _, optimizer, _ = build()
    clone = copy.deepcopy(optimizer)
    assert [group["name"] for group in clone.param_groups] == ["liked", "embeddings", "default"]
    assert clone.param_groups[0]["params"][0] is not optimizer.param_groups[0]["params"][0]
    assert repr(clone) == "CombinedOptimizer(Adam(liked), SGD(embeddings), AdamW(default))"


def test_a_copy_steps_its_own_parameters_and_leaves_the_original() -> None:
    # An LRShim is attached (torch's scheduler wraps the optimizer's step): the copies must not keep
    # that wrapper, which steps the original.
    model, optimizer, _ = build()
    for clone in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert [group["name"] for group in clone.param_groups] == ["liked", "embeddings", "default"]
        assert [type(child) for child in clone.optimizers] == [type(child) for child in optimizer.optimizers]
        assert [group["lr"] for group in clone.param_groups] == [
            group["lr"] for group in optimizer.param_groups
        ]
        before = [p.detach().clone() for p in model.parameters()]
        clone_params = [p for group in clone.param_groups for p in group["params"]]
        embeddings = clone.param_groups[1]["params"][0]
        embeddings_before = embeddings.detach().clone()
        for parameter in clone_params:
            parameter.grad = torch.ones_like(parameter)
        clone.step()
        assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
        assert torch.equal(embeddings, embeddings_before - 0.1)  # SGD at lr 0.1, gradient 1
        assert len(clone.state) == len(clone_params)  # every child took its step
    assert not optimizer.state  # the original was never stepped


def test_step_runs_the_hooks_of_the_combined_optimizer_and_the_global_ones() -> None:
    model, optimizer, _ = build()
    calls: list[str] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append(f"pre {type(opt).__name__}"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append(f"post {type(opt).__name__}"))
    for child in optimizer.optimizers:
        child.register_step_post_hook(lambda opt, args, kwargs: calls.append(f"child {type(opt).__name__}"))
    global_handle = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: calls.append(f"global {type(opt).__name__}")
    )
    try:
        (model(tower_batch(0)) ** 2).mean().backward()
        optimizer.step()
    finally:
        global_handle.remove()
    assert calls == [
        "pre CombinedOptimizer",
        "child Adam",
        "global Adam",
        "child SGD",
        "global SGD",
        "child AdamW",
        "global AdamW",
        "post CombinedOptimizer",
        "global CombinedOptimizer",
    ]


def test_a_checkpoint_with_other_group_sizes_is_refused() -> None:
    _, optimizer, _ = build()
    state = optimizer.state_dict()
    assert state["format"] == "tml.combined/1"
    assert {name: sorted(entry) for name, entry in state["groups"].items()} == {
        name: ["num_params", "param_group", "state"] for name in ["liked", "embeddings", "default"]
    }
    state["groups"]["embeddings"]["num_params"] = 2
    with pytest.raises(ValueError, match=r"group 'embeddings' has 2 parameters in the checkpoint, 1 here"):
        optimizer.load_state_dict(state)
