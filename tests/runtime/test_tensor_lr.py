"""``tensor_lr``: a compiled optimizer step compiles once and never recompiles as LRShim moves."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from tests.group_models import compile_counting_graphs

from tml.optimizers.runtime.flat import FlatOptimizer
from tml.optimizers.runtime.lr_shim import LRShim
from tml.optimizers.runtime.tensor_lr import use_tensor_lr
from tml.optimizers.schedules import LearningRate, LinearRampToCosine, compute_lr

torch.set_num_threads(1)

SCHEDULE = LearningRate(
    linear_ramp_to_cosine=LinearRampToCosine(
        learning_rate=0.1, num_ramp_steps=10, final_learning_rate=0.001, final_num_steps=80
    )
)


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))


def train_compiled(tensor_lr: bool) -> tuple[int, torch.nn.Module, list[float]]:
    """100 steps of a compiled Adam step under LRShim; returns the number of graphs compiled."""
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, foreach=False)
    if tensor_lr:
        use_tensor_lr(optimizer)
    scheduler = LRShim(optimizer, {"default": SCHEDULE})
    compiled_step, graphs = compile_counting_graphs(optimizer.step)
    generator = torch.Generator().manual_seed(1)
    lrs = []
    for _ in range(100):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.zero_grad()
        model(torch.randn(8, 4, generator=generator)).square().mean().backward()
        compiled_step()
        scheduler.step()
    torch._dynamo.reset()
    return len(graphs), model, lrs


def test_compiled_step_compiles_once_over_100_steps_of_a_changing_schedule() -> None:
    with torch._dynamo.config.patch(error_on_recompile=True):
        graph_count, model, lrs = train_compiled(tensor_lr=True)
    assert graph_count == 1
    # The schedule did move, and the compiled step followed it.
    assert lrs == [compute_lr(SCHEDULE, step) for step in range(100)]
    reference = make_model()
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.1, foreach=False)
    scheduler = LRShim(optimizer, {"default": SCHEDULE})
    generator = torch.Generator().manual_seed(1)
    for _ in range(100):
        optimizer.zero_grad()
        reference(torch.randn(8, 4, generator=generator)).square().mean().backward()
        optimizer.step()
        scheduler.step()
    # The compiled graph computes the step size (lr / bias correction) in float32 tensor math where
    # eager Adam uses Python floats: the two agree to ~1e-5, not to the last ulp.
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.detach().abs().max()))


def test_the_counter_sees_recompiles_with_a_float_lr() -> None:
    # The control: without tensor_lr, a changing float lr makes dynamo compile again.
    graph_count, _, _ = train_compiled(tensor_lr=False)
    assert graph_count > 1


def test_lrs_become_0_dim_tensors_and_lrshim_fills_them_in_place() -> None:
    model = make_model()
    optimizer = torch.optim.Adam(
        [{"params": [model[0].weight], "lr": 0.5}, {"params": [model[0].bias, *model[2].parameters()]}],
        lr=0.1,
        fused=True,
    )
    use_tensor_lr(optimizer)
    tensors = [group["lr"] for group in optimizer.param_groups]
    assert [(lr.dim(), lr.dtype, float(lr)) for lr in tensors] == [
        (0, torch.float64, 0.5),
        (0, torch.float64, 0.1),
    ]
    scheduler = LRShim(optimizer, {"a": SCHEDULE, "b": SCHEDULE})
    for step in range(1, 5):
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        assert [group["lr"] for group in optimizer.param_groups] == tensors  # same objects
        assert all(float(lr) == compute_lr(SCHEDULE, step) for lr in tensors)


def test_tensor_lr_reaches_a_flat_optimizer() -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=0.1, fused=True)
    plain = torch.optim.Adam(reference.parameters(), lr=0.1, foreach=False)
    use_tensor_lr(flat)
    schedulers = [LRShim(flat, {"default": SCHEDULE}), LRShim(plain, {"default": SCHEDULE})]
    for _ in range(20):
        for target, optimizer in ((model, flat), (reference, plain)):
            optimizer.zero_grad()
            target(torch.ones(2, 4)).sum().backward()
            optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * float(want.detach().abs().max()))


def test_foreach_without_capturable_is_refused() -> None:
    optimizer = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.1, foreach=True)
    with pytest.raises(ValueError, match="param group 0 uses foreach=True without capturable"):
        use_tensor_lr(optimizer)
