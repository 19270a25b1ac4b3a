"""Tensor learning rates (``tensor_lr: true``): a compiled optimizer step that never recompiles.

``torch.compile(optimizer.step)`` guards on every Python float it reads: with a float ``lr`` each
new value of the schedule invalidates the graph (pytorch#107076, #130467, torchtune#2263). With a
0-dim tensor, the value is data, not code: ``LRShim`` writes it in place (``fill_``) and the
compiled step reads it, so the step compiles once.
"""

from __future__ import annotations

from typing import Any

import torch

from tml.optimizers.algorithms.facts import foreach_takes_tensor_lr


def use_tensor_lr(optimizer: torch.optim.Optimizer, dtype: torch.dtype = torch.float64) -> None:
    """Make every param group's ``lr`` a 0-dim CPU tensor holding the same value.

    Call it before building the ``LRShim``: the scheduler then updates the tensors in place. A
    group whose ``lr`` is already a 0-dim tensor is left as it is.

    Args:
      optimizer: any torch optimizer (every group's ``lr`` is converted).
      dtype: the tensor's dtype; ``float64`` (default) holds a Python float exactly, so the steps
        equal those with a float ``lr``.

    Raises:
      ValueError: a group uses ``foreach=True`` without ``capturable`` (torch refuses a tensor
        ``lr`` there: choose ``fused`` or ``for_loop``), or already has a tensor ``lr`` that is not
        0-dim.

    Examples:
      >>> optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.5)
      >>> use_tensor_lr(optimizer)
      >>> optimizer.param_groups[0]["lr"]
      tensor(0.5000, dtype=torch.float64)
    """
    for index, group in enumerate(optimizer.param_groups):
        make_lr_tensor(group, f"param group {index}", dtype, optimizer_class=type(optimizer))


def make_lr_tensor(
    group: dict[str, Any],
    label: str,
    dtype: torch.dtype = torch.float64,
    *,
    optimizer_class: type[torch.optim.Optimizer] | None = None,
) -> None:
    """Make one param group's ``lr`` a 0-dim CPU tensor (see :func:`use_tensor_lr`).

    Args:
      group: the param group dict, changed in place.
      label: how error messages name the group (``param group 0``).
      dtype: the tensor's dtype.
      optimizer_class: the group's torch optimizer; ``foreach`` is refused where the facts table
        (``tml.optimizers.algorithms.facts``) says torch refuses a tensor lr (for any class when not
        given).

    Raises:
      ValueError: as :func:`use_tensor_lr`.
    """
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        if lr.dim() != 0:
            raise ValueError(
                f"tensor_lr: {label} has a tensor lr of shape {tuple(lr.shape)}; it must be 0-dim"
            )
        return
    refuses = not foreach_takes_tensor_lr(optimizer_class)
    if refuses and group.get("foreach") and not group.get("capturable", False):
        raise ValueError(
            f"tensor_lr: {label} uses foreach=True without capturable, where torch "
            "refuses a tensor lr; use implementation fused or for_loop"
        )
    group["lr"] = torch.tensor(float(lr), dtype=dtype)


__all__ = ["make_lr_tensor", "use_tensor_lr"]
