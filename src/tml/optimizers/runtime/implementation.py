"""Which torch kernel steps a param group: ``implementation: auto | fused | foreach | for_loop``.

torch optimizers have up to three implementations of the same update: a Python loop over the
tensors (``foreach=False``; torch's default on CPU), ``foreach`` (multi-tensor ops) and ``fused``
(one kernel per dtype and device). They give the same parameters (within float rounding) and very
different speeds. Measured on a 2-core CPU with torch 2.13 (``docs/speed.md``, reproduced by
``python -m benchmarks.implementations``):

* ``fused`` was the fastest for Adam, AdamW, SGD with momentum and Adagrad on every layout (2000
  tensors × 256, 200 × 4096, 32 × 262,144), 2–13× faster than the for-loop.
* For the optimizers without a fused kernel (RMSprop, Adamax, NAdam), ``foreach`` on CPU beat the
  for-loop on tensors of 256 elements (0.6–0.8× its time), was mixed at 4096 (0.5–1.75×) and lost
  on tensors of 262,144 (1.9–2.4×): the threshold sits between the clear win and the mixed result.

So ``auto`` is: ``fused`` when torch has a fused kernel for the optimizer, the device and the
dtype; otherwise, on CPU, ``foreach`` when the group's mean tensor size is at most
:data:`FOREACH_MAX_MEAN_NUMEL` elements and the for-loop above; on an accelerator, ``foreach``
(torch's own default there).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._foreach_utils import (
    _get_foreach_kernels_supported_devices,
    _get_fused_kernels_supported_devices,
)

from tml.optimizers.fields import IMPLEMENTATIONS, Implementation

FOREACH_MAX_MEAN_NUMEL = 2048
"""On CPU without a fused kernel, ``auto`` takes ``foreach`` up to this mean tensor size (elements)."""


_ACCEPTS: dict[tuple[type, str], bool] = {}


def accepts_keyword(optimizer_class: type[torch.optim.Optimizer], keyword: str) -> bool:
    """Whether the constructor of ``optimizer_class`` takes ``keyword`` (``fused``, ``foreach``)."""
    known = _ACCEPTS.get((optimizer_class, keyword))
    if known is None:
        known = _ACCEPTS[(optimizer_class, keyword)] = _signature_has(optimizer_class, keyword)
    return known


def _signature_has(optimizer_class: type[torch.optim.Optimizer], keyword: str) -> bool:
    try:
        parameters = inspect.signature(optimizer_class.__init__).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters


def has_fused_kernel(
    optimizer_class: type[torch.optim.Optimizer], device: torch.device, dtype: torch.dtype
) -> bool:
    """Whether torch has a fused kernel of ``optimizer_class`` for this device and dtype."""
    return (
        accepts_keyword(optimizer_class, "fused")
        and device.type in _get_fused_kernels_supported_devices()
        and dtype.is_floating_point
    )


def has_foreach_kernel(optimizer_class: type[torch.optim.Optimizer], device: torch.device) -> bool:
    """Whether ``optimizer_class`` has a foreach implementation for this device."""
    return accepts_keyword(optimizer_class, "foreach") and device.type in [
        *_get_foreach_kernels_supported_devices(),
        "cpu",
    ]


def implementation_kwargs(
    optimizer_class: type[torch.optim.Optimizer],
    params: Iterable[torch.Tensor],
    implementation: Implementation = "auto",
) -> dict[str, Any]:
    """The torch constructor keywords that select ``implementation`` for one param group.

    Args:
      optimizer_class: the torch optimizer class of the group.
      params: the group's parameters (their devices, dtypes and sizes decide ``auto``).
      implementation: ``auto`` (the fastest measured choice that torch supports), ``fused``,
        ``foreach`` or ``for_loop``. An explicit choice torch has no kernel for falls back:
        ``fused`` to ``foreach`` (or the for-loop where foreach is missing too), ``foreach`` to
        the for-loop.

    Returns:
      ``{"fused": True}``, ``{"foreach": True}``, ``{"foreach": False}``, or ``{}`` for an optimizer
      that has no such keywords (one implementation only, e.g. LBFGS).

    Raises:
      ValueError: ``implementation`` is not one of :data:`IMPLEMENTATIONS`.

    Examples:
      >>> cpu_params = [torch.zeros(256) for _ in range(3)]
      >>> implementation_kwargs(torch.optim.Adam, cpu_params)
      {'fused': True}
      >>> implementation_kwargs(torch.optim.RMSprop, cpu_params, "fused")
      {'foreach': True}
      >>> implementation_kwargs(torch.optim.Adam, cpu_params, "for_loop")
      {'foreach': False}
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, got {implementation!r}"
        )
    tensors = list(params)
    kinds = {(tensor.device, tensor.dtype) for tensor in tensors}
    plain = {type(tensor) for tensor in tensors} <= {torch.Tensor, torch.nn.Parameter}
    fused = bool(tensors) and plain and all(has_fused_kernel(optimizer_class, *kind) for kind in kinds)
    foreach = bool(tensors) and all(has_foreach_kernel(optimizer_class, device) for device, _ in kinds)
    if implementation == "for_loop":
        return {"foreach": False} if accepts_keyword(optimizer_class, "foreach") else {}
    if implementation == "fused" and fused:
        return {"fused": True}
    if implementation in ("fused", "foreach"):
        return {"foreach": foreach} if accepts_keyword(optimizer_class, "foreach") else {}
    # auto
    if fused:
        return {"fused": True}
    if not accepts_keyword(optimizer_class, "foreach"):
        return {}
    if not foreach:
        return {"foreach": False}
    if any(device.type == "cpu" for device, _ in kinds):
        mean_numel = sum(tensor.numel() for tensor in tensors) / len(tensors)
        return {"foreach": mean_numel <= FOREACH_MAX_MEAN_NUMEL}
    return {"foreach": True}


__all__ = [
    "FOREACH_MAX_MEAN_NUMEL",
    "IMPLEMENTATIONS",
    "Implementation",
    "accepts_keyword",
    "has_foreach_kernel",
    "has_fused_kernel",
    "implementation_kwargs",
]
