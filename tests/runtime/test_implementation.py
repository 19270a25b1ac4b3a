"""``implementation``: every choice steps the same parameters as torch's for-loop reference."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tml.optimizers.runtime.implementation import (
    FOREACH_MAX_MEAN_NUMEL,
    IMPLEMENTATIONS,
    has_fused_kernel,
    implementation_kwargs,
)

torch.set_num_threads(1)

ALGORITHMS: list[tuple[type[torch.optim.Optimizer], dict[str, Any]]] = [
    (torch.optim.Adam, {"lr": 1e-2, "eps": 1e-7}),
    (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.05}),
    (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
    (torch.optim.Adagrad, {"lr": 1e-2}),
    (torch.optim.RMSprop, {"lr": 1e-3}),  # no fused kernel: fused falls back
]


def make_params(dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (5,), (300,), (3, 4, 2)]
    return [torch.randn(shape, generator=generator, dtype=dtype).requires_grad_() for shape in shapes]


def run(
    optimizer_class: type[torch.optim.Optimizer], kwargs: dict[str, Any], selection: dict[str, Any]
) -> list[torch.Tensor]:
    """100 steps on a fixed sequence of gradients (independent of the parameters' values)."""
    params = make_params()
    optimizer = optimizer_class(params, **kwargs, **selection)
    generator = torch.Generator().manual_seed(1)
    for _ in range(100):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step()
    return [param.detach() for param in params]


@pytest.mark.parametrize(("optimizer_class", "kwargs"), ALGORITHMS, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_choice_equals_the_for_loop_reference(
    optimizer_class: type[torch.optim.Optimizer], kwargs: dict[str, Any], implementation: Any
) -> None:
    reference = run(optimizer_class, kwargs, {"foreach": False})
    selection = implementation_kwargs(optimizer_class, make_params(), implementation)
    actual = run(optimizer_class, kwargs, selection)
    for got, want in zip(actual, reference, strict=True):
        # rtol 1e-6 of the tensor's scale: fused kernels round differently by a few float32 ulps.
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * float(want.abs().max()))


CPU = torch.device("cpu")
SMALL = [torch.zeros(256) for _ in range(4)]
LARGE = [torch.zeros(FOREACH_MAX_MEAN_NUMEL + 1) for _ in range(2)]

# (optimizer, params, choice, expected keywords)
CHOICES: list[tuple[type[torch.optim.Optimizer], list[torch.Tensor], Any, dict[str, Any]]] = [
    (torch.optim.Adam, SMALL, "auto", {"fused": True}),  # fused fastest on every layout measured
    (torch.optim.AdamW, LARGE, "auto", {"fused": True}),
    (torch.optim.SGD, SMALL, "auto", {"fused": True}),
    (torch.optim.Adagrad, LARGE, "auto", {"fused": True}),
    (torch.optim.RMSprop, SMALL, "auto", {"foreach": True}),  # no fused: foreach for small tensors
    (torch.optim.RMSprop, LARGE, "auto", {"foreach": False}),  # and the for-loop for large ones
    (torch.optim.Adam, [torch.zeros(3, dtype=torch.float64)], "auto", {"fused": True}),
    (torch.optim.Adam, SMALL, "fused", {"fused": True}),
    (torch.optim.Adam, SMALL, "foreach", {"foreach": True}),
    (torch.optim.Adam, SMALL, "for_loop", {"foreach": False}),
    (torch.optim.Adamax, SMALL, "fused", {"foreach": True}),  # fallback: no fused Adamax
    (torch.optim.LBFGS, SMALL, "auto", {}),  # one implementation only
    (torch.optim.LBFGS, SMALL, "for_loop", {}),
]


@pytest.mark.parametrize(("optimizer_class", "params", "choice", "expected"), CHOICES)
def test_choice_table(
    optimizer_class: type[torch.optim.Optimizer],
    params: list[torch.Tensor],
    choice: Any,
    expected: dict[str, Any],
) -> None:
    assert implementation_kwargs(optimizer_class, params, choice) == expected


def test_fused_support_follows_torch() -> None:
    assert has_fused_kernel(torch.optim.Adam, CPU, torch.bfloat16)
    assert not has_fused_kernel(torch.optim.Adam, CPU, torch.int64)
    assert not has_fused_kernel(torch.optim.NAdam, CPU, torch.float32)
    assert not has_fused_kernel(torch.optim.Adam, torch.device("meta"), torch.float32)


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(
        ValueError, match="implementation must be one of auto, fused, foreach, for_loop, got 'fast'"
    ):
        implementation_kwargs(torch.optim.Adam, SMALL, "fast")  # type: ignore[arg-type]
