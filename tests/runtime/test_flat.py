"""Flat buffers: parity with torch's for-loop optimizers, gradient binding, checkpoints, refusals."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch

from tml.optimizers.runtime.flat import FlatOptimizer, FlattenError

# Tiny tensors: one intra-op thread is ~10× faster than two on a busy 2-core machine.
torch.set_num_threads(1)

ALGORITHMS: list[tuple[type[torch.optim.Optimizer], dict[str, Any]]] = [
    (torch.optim.Adam, {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-7}),
    (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.05}),
    (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
    (torch.optim.Adagrad, {"lr": 1e-2, "eps": 1e-10}),
]
IDS = [cls.__name__ for cls, _ in ALGORITHMS]


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 5),
        torch.nn.LayerNorm(5),
        torch.nn.Linear(5, 4),
        torch.nn.Linear(4, 1, bias=False),
    )
    # A float64 layer: it goes into a buffer of its own.
    model[2].double()
    return model


def forward(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    hidden = model[1](model[0](inputs))
    hidden = model[2](hidden.double()).float()
    return model[3](torch.tanh(hidden)).square().mean()


def groups_of(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Two param groups with their own learning rates (per-group hyperparameters)."""
    parameters = list(model.parameters())
    return [{"params": parameters[:3], "lr": 3e-2}, {"params": parameters[3:]}]


def batches(count: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(8, 6, generator=generator) for _ in range(count)]


def assert_parameters_close(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Equal within rtol 1e-6 of each tensor's scale.

    torch's fused and for-loop kernels round differently (a few float32 ulps: ~3e-7 after 100 Adam
    steps on entries of size ~1); an entry near zero cannot meet a purely elementwise rtol, so the
    tolerance is relative to the tensor's largest entry.
    """
    for (name, actual), expected in zip(model.named_parameters(), reference.parameters(), strict=True):
        scale = float(expected.detach().abs().max())
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6 * scale, msg=name)


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    for inputs in batches(steps):
        optimizer.zero_grad()
        forward(model, inputs).backward()
        optimizer.step()


@pytest.mark.parametrize(("optimizer_class", "kwargs"), ALGORITHMS, ids=IDS)
@pytest.mark.parametrize("inner", [{"fused": True}, {"foreach": False}], ids=["fused", "for_loop"])
def test_100_steps_equal_torch_for_loop(
    optimizer_class: type[torch.optim.Optimizer], kwargs: dict[str, Any], inner: dict[str, Any]
) -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(groups_of(model), optimizer_class, model=model, **kwargs, **inner)
    plain = optimizer_class(groups_of(reference), **kwargs, foreach=False)
    train(model, flat, 100)
    train(reference, plain, 100)
    assert_parameters_close(model, reference)


def test_named_parameters_keep_their_names_in_the_state_dict() -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(model.named_parameters(), torch.optim.Adam, lr=1e-2, fused=True)
    plain = torch.optim.Adam(reference.named_parameters(), lr=1e-2, foreach=False)
    train(model, flat, 3)
    train(reference, plain, 3)
    assert_parameters_close(model, reference)
    names = [name for name, _ in model.named_parameters()]
    assert flat.param_groups[0]["param_names"] == names
    assert flat.state_dict()["param_groups"][0]["param_names"] == names


def test_one_buffer_per_group_dtype_and_device() -> None:
    model = make_model()
    optimizer = FlatOptimizer(groups_of(model), torch.optim.Adam, lr=0.1)
    parameters = list(model.parameters())
    # group 0: Linear(6,5) weight+bias, LayerNorm weight (float32); group 1: LayerNorm bias
    # (float32), Linear(5,4) (float64), Linear(4,1) weight (float32).
    layout = [(buffer.group_index, buffer.data.dtype, buffer.data.numel()) for buffer in optimizer.buffers]
    assert layout == [
        (0, torch.float32, 30 + 5 + 5),
        (1, torch.float32, 5 + 4),
        (1, torch.float64, 20 + 4),
    ]
    for buffer in optimizer.buffers:
        start = buffer.data.data_ptr()
        end = start + buffer.data.numel() * buffer.data.element_size()
        for param in buffer.params:
            assert start <= param.data_ptr() < end
            assert param.grad is not None
            assert buffer.grad.data_ptr() <= param.grad.data_ptr()
    assert sum(len(buffer.params) for buffer in optimizer.buffers) == len(parameters)


def test_model_keeps_its_parameters_and_state_dict() -> None:
    model = make_model()
    parameters_before = list(model.named_parameters())
    state_before = {name: value.clone() for name, value in model.state_dict().items()}
    FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    assert [(name, id(param)) for name, param in model.named_parameters()] == [
        (name, id(param)) for name, param in parameters_before
    ]
    assert all(isinstance(param, torch.nn.Parameter) for _, param in model.named_parameters())
    state_after = model.state_dict()
    assert list(state_after) == list(state_before)
    for name, value in state_before.items():
        assert torch.equal(state_after[name], value), name
    # Loading a state dict into the model writes into the buffers (in place).
    model.load_state_dict({name: torch.zeros_like(value) for name, value in state_before.items()})
    assert all(float(param.detach().abs().sum()) == 0 for param in model.parameters())


def test_backward_accumulates_into_the_gradient_buffer() -> None:
    model, reference = make_model(), make_model()
    optimizer = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    grad_buffers = [buffer.grad for buffer in optimizer.buffers]
    first, second = batches(2)
    for inputs in (first, second):  # two micro-batches: the second accumulates
        forward(model, inputs).backward()
        forward(reference, inputs).backward()
    for buffer, grad_buffer in zip(optimizer.buffers, grad_buffers, strict=True):
        assert buffer.grad is grad_buffer
        for param, view in zip(buffer.params, buffer.grad_views, strict=True):
            assert param.grad is view
    expected = [param.grad for param in reference.parameters()]
    flat_grads = {id(param): param.grad for buffer in optimizer.buffers for param in buffer.params}
    actual = [flat_grads[id(param)] for param in model.parameters()]
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def _optimizer_zero(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()


def _optimizer_zero_keep(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=False)


def _model_zero(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model.zero_grad()


def _model_zero_keep(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model.zero_grad(set_to_none=False)


def _manual_none(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for param in model.parameters():
        param.grad = None


def _submodule_zero(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    # Only part of one buffer is reset; the rest is zeroed by the optimizer.
    optimizer.zero_grad()
    model[0].zero_grad()


ZEROINGS: list[Callable[[torch.nn.Module, torch.optim.Optimizer], None]] = [
    _optimizer_zero,
    _optimizer_zero_keep,
    _model_zero,
    _model_zero_keep,
    _manual_none,
    _submodule_zero,
]


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("zero", ZEROINGS, ids=[zero.__name__.strip("_") for zero in ZEROINGS])
@pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "create_graph"])
def test_every_way_of_zeroing_keeps_gradients_bound(
    zero: Callable[[torch.nn.Module, torch.optim.Optimizer], None], create_graph: bool
) -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=1e-2, fused=True)
    plain = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    for inputs in batches(5):
        zero(model, flat)
        plain.zero_grad()
        for micro_batch in inputs.chunk(2):  # gradient accumulation over two micro-batches
            forward(model, micro_batch).backward(create_graph=create_graph)
            forward(reference, micro_batch).backward()
        flat.step()
        plain.step()
        for buffer in flat.buffers:
            for param, view in zip(buffer.params, buffer.grad_views, strict=True):
                assert param.grad is view
    assert_parameters_close(model, reference)


def test_a_replaced_gradient_is_copied_into_the_buffer() -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
    plain = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, foreach=False)
    for step in range(3):
        for param, other in zip(model.parameters(), reference.parameters(), strict=True):
            gradient = torch.full_like(param, float(step + 1))
            param.grad = gradient
            other.grad = gradient.clone()
        flat.step()
        plain.step()
    assert_parameters_close(model, reference)


def test_a_detached_gradient_still_held_elsewhere_is_found() -> None:
    """Gradients kept by other code, then ``model.zero_grad()``: every view is still alive (a
    count of the buffer's views would not notice), but the new gradients live outside the buffer."""
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=1e-2)
    plain = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    first, second = batches(2)
    for target, optimizer in ((model, flat), (reference, plain)):
        optimizer.zero_grad()
        forward(target, first).backward()
        kept = [param.grad for param in target.parameters()]  # e.g. for a gradient-surgery method
        target.zero_grad()
        forward(target, second).backward()
        optimizer.step()
        assert all(grad is not None for grad in kept)
    assert_parameters_close(model, reference)


def test_one_replaced_gradient_among_many_is_copied() -> None:
    """The fast check stops at the first parameter whose gradient is not its view."""
    params = [torch.nn.Parameter(torch.full((3,), float(index))) for index in range(50)]
    flat = FlatOptimizer(params, torch.optim.SGD, lr=1.0)
    for param in params:
        param.grad.fill_(1.0)
    params[37].grad = torch.full((3,), 5.0)
    flat.step()
    expected = [float(index) - (5.0 if index == 37 else 1.0) for index in range(50)]
    assert [float(param.detach()[0]) for param in params] == expected
    assert params[37].grad is flat.buffers[0].grad_views[37]


def test_global_step_hooks_fire_once_per_step() -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=1e-2, fused=True)
    calls: list[tuple[str, type]] = []
    handles = [
        register_optimizer_step_pre_hook(lambda optimizer, *_: calls.append(("pre", type(optimizer)))),
        register_optimizer_step_post_hook(lambda optimizer, *_: calls.append(("post", type(optimizer)))),
    ]
    try:
        forward(model, batches(1)[0]).backward()
        flat.step()
    finally:
        for handle in handles:
            handle.remove()
    assert calls == [("pre", FlatOptimizer), ("post", FlatOptimizer)]


def test_a_buffer_without_any_gradient_is_skipped_like_torch() -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(groups_of(model), torch.optim.AdamW, lr=1e-2, weight_decay=0.1)
    plain = torch.optim.AdamW(groups_of(reference), lr=1e-2, weight_decay=0.1, foreach=False)
    train(model, flat, 2)
    train(reference, plain, 2)
    first_group = list(model.parameters())[:3]
    for target, optimizer in ((model, flat), (reference, plain)):
        target.zero_grad()
        forward(target, batches(1)[0]).backward()
        for param in list(target.parameters())[:3]:
            param.grad = None  # group 0 gets no gradient this step: torch skips it
        optimizer.step()
    assert_parameters_close(model, reference)
    assert all(param.grad is None for param in first_group)
    train(model, flat, 2)
    train(reference, plain, 2)
    assert_parameters_close(model, reference)


def test_a_parameter_without_gradient_in_a_stepped_buffer_gets_zero() -> None:
    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    forward(model, batches(1)[0]).backward()
    stale = model[0].bias
    stale.grad = None
    before = stale.detach().clone()
    flat.step()
    assert stale.grad is not None
    assert float(stale.grad.abs().sum()) == 0
    assert torch.equal(stale.detach(), before)


def roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
    return loaded


@pytest.mark.parametrize(("optimizer_class", "kwargs"), ALGORITHMS, ids=IDS)
def test_checkpoint_moves_between_flat_and_plain(
    optimizer_class: type[torch.optim.Optimizer], kwargs: dict[str, Any]
) -> None:
    # Reference: 30 uninterrupted steps of the plain for-loop optimizer.
    reference = make_model()
    plain = optimizer_class(groups_of(reference), **kwargs, foreach=False)
    train(reference, plain, 30)

    # flat (10 steps) -> plain (10 steps) -> flat (10 steps), through torch.save/load.
    model = make_model()
    flat = FlatOptimizer(groups_of(model), optimizer_class, **kwargs, fused=True)
    train(model, flat, 10)
    saved = roundtrip({"model": model.state_dict(), "optimizer": flat.state_dict()})
    assert set(saved["optimizer"]["state"]) == set(range(len(list(model.parameters()))))

    middle = make_model(seed=5)
    middle.load_state_dict(saved["model"])
    middle_optimizer = optimizer_class(groups_of(middle), **kwargs, foreach=False)
    middle_optimizer.load_state_dict(saved["optimizer"])
    for inputs in batches(20)[10:]:
        middle_optimizer.zero_grad()
        forward(middle, inputs).backward()
        middle_optimizer.step()
    saved = roundtrip({"model": middle.state_dict(), "optimizer": middle_optimizer.state_dict()})

    resumed = make_model(seed=6)
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = FlatOptimizer(groups_of(resumed), optimizer_class, **kwargs, fused=True)
    resumed_optimizer.load_state_dict(saved["optimizer"])
    for inputs in batches(30)[20:]:
        resumed_optimizer.zero_grad()
        forward(resumed, inputs).backward()
        resumed_optimizer.step()
    assert_parameters_close(resumed, reference)


def test_state_dict_has_one_step_tensor_per_parameter() -> None:
    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=0.1)
    train(model, flat, 2)
    steps = [state["step"] for state in flat.state_dict()["state"].values()]
    assert len({id(step) for step in steps}) == len(steps)
    assert all(float(step) == 2 for step in steps)


def test_loading_different_step_counts_is_refused() -> None:
    model = make_model()
    plain = torch.optim.Adam(model.parameters(), lr=0.1)
    train(model, plain, 2)
    state = plain.state_dict()
    state["state"][0]["step"] = torch.tensor(7.0)
    flat = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=0.1)
    with pytest.raises(ValueError, match="'step' differs between parameters"):
        flat.load_state_dict(state)


def test_hyperparameters_written_to_the_outer_groups_reach_the_step() -> None:
    model, reference = make_model(), make_model()
    flat = FlatOptimizer(groups_of(model), torch.optim.SGD, lr=0.1)
    plain = torch.optim.SGD(groups_of(reference), lr=0.1, foreach=False)
    for step, inputs in enumerate(batches(4)):
        for optimizer in (flat, plain):
            for group in optimizer.param_groups:
                group["lr"] = 0.01 * (step + 1)
        for target, optimizer in ((model, flat), (reference, plain)):
            optimizer.zero_grad()
            forward(target, inputs).backward()
            optimizer.step()
    assert_parameters_close(model, reference)


class _SubclassTensor(torch.Tensor):
    """Stands in for a DTensor: any tensor subclass owns its storage layout."""


def _sparse_embedding() -> tuple[torch.nn.Module, list[torch.Tensor]]:
    model = torch.nn.Sequential(torch.nn.Embedding(10, 3, sparse=True), torch.nn.Linear(3, 1))
    return model, list(model.parameters())


def _flatten_sparse_embedding() -> None:
    model, parameters = _sparse_embedding()
    FlatOptimizer(parameters, torch.optim.SGD, model=model, lr=1)


REFUSALS: list[tuple[str, Callable[[], None], str]] = [
    (
        "sparse embedding",
        _flatten_sparse_embedding,
        r"flatten: 0.weight: module '0' is Embedding\(sparse=True\): its gradient is a sparse tensor",
    ),
    (
        "tensor subclass (DTensor)",
        lambda: FlatOptimizer(
            [torch.nn.Parameter(torch.zeros(3).as_subclass(_SubclassTensor))], torch.optim.SGD, lr=1
        ),
        r"is a _SubclassTensor \(a tensor subclass such as a DTensor or an FSDP parameter\)",
    ),
    (
        "closure optimizer",
        lambda: FlatOptimizer([torch.nn.Parameter(torch.zeros(3))], torch.optim.LBFGS, lr=1),
        r"LBFGS cannot step flat buffers: only elementwise optimizers",
    ),
    (
        "sparse optimizer",
        lambda: FlatOptimizer([torch.nn.Parameter(torch.zeros(3))], torch.optim.SparseAdam, lr=1),
        r"SparseAdam cannot step flat buffers",
    ),
    (
        "shape-dependent optimizer",
        lambda: FlatOptimizer([torch.nn.Parameter(torch.zeros(3, 3))], torch.optim.Adafactor, lr=1),
        r"Adafactor cannot step flat buffers",
    ),
    (
        "integer parameter",
        lambda: FlatOptimizer([torch.zeros(3, dtype=torch.int64)], torch.optim.SGD, lr=1),
        r"parameter 0 has dtype torch.int64; flat buffers need floats",
    ),
    (
        "empty",
        lambda: FlatOptimizer([], torch.optim.SGD, lr=1),
        r"empty parameter list",
    ),
]


@pytest.mark.parametrize(("build", "message"), [row[1:] for row in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refused_at_build_time_with_the_reason(build: Callable[[], None], message: str) -> None:
    with pytest.raises(FlattenError if "empty" not in message else ValueError, match=message):
        build()


def test_refusal_leaves_the_model_untouched() -> None:
    model, parameters = _sparse_embedding()
    pointers = [param.data_ptr() for param in parameters]
    with pytest.raises(FlattenError):
        FlatOptimizer(parameters, torch.optim.Adam, model=model, lr=1)
    assert [param.data_ptr() for param in parameters] == pointers


def test_closure_is_refused() -> None:
    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    with pytest.raises(TypeError, match="closures are not supported with flatten"):
        flat.step(lambda: forward(model, batches(1)[0]))


def test_a_sparse_gradient_without_the_model_is_refused_at_step() -> None:
    model, parameters = _sparse_embedding()
    flat = FlatOptimizer(parameters, torch.optim.SGD, lr=0.1)
    # (Into a bound dense .grad autograd adds a sparse gradient densely, in place: that works.
    # After model.zero_grad() the new .grad is the sparse tensor itself.)
    model.zero_grad()
    model[1](model[0](torch.tensor([1, 2]))).sum().backward()
    with pytest.raises(RuntimeError, match=r"received a torch\.sparse_coo gradient"):
        flat.step()


def test_add_param_group_is_refused() -> None:
    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    with pytest.raises(RuntimeError, match="laid out at construction"):
        flat.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})


def test_deepcopy_of_the_model_does_not_break_the_original() -> None:
    model = make_model()
    flat = FlatOptimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    clone = copy.deepcopy(model)
    train(model, flat, 2)
    assert not torch.equal(next(clone.parameters()), next(model.parameters()))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")
def test_a_real_dtensor_is_refused() -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        parameter = torch.nn.Parameter(distribute_tensor(torch.zeros(4, 2), mesh, [Shard(0)]))
        with pytest.raises(FlattenError, match=r"parameter 0 is a DTensor \(a tensor subclass"):
            FlatOptimizer([parameter], torch.optim.Adam, lr=0.1)
    finally:
        dist.destroy_process_group()
