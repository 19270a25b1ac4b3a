"""What tml relies on about each torch optimizer class: one table, asked by every module that needs it.

A fact is looked up for the class itself or, for a class the table does not list (a ``custom``
subclass of ``torch.optim.Adam``), for its nearest base class that it lists; a class with no such
base has none of the facts (except, conservatively, that its ``foreach`` step takes a tensor lr:
torch's own refusals are listed).

Examples:
  >>> is_elementwise(torch.optim.AdamW), is_elementwise(torch.optim.Adafactor)
  (True, False)
  >>> foreach_takes_tensor_lr(torch.optim.Adam), foreach_takes_tensor_lr(torch.optim.SGD)
  (False, True)
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class TorchFacts:
    """The facts about one torch optimizer class."""

    torch_class: type[torch.optim.Optimizer]
    elementwise: bool = False
    """The update of an entry depends only on that entry and on scalars shared by the whole group, so
    stepping one flat buffer gives the same result as stepping each tensor (``flatten``)."""
    foreach_takes_tensor_lr: bool = True
    """The ``foreach`` step accepts a 0-dim tensor ``lr`` without ``capturable`` (``tensor_lr``)."""
    sparse_gradients: bool = False
    """The step takes sparse gradients only (a zero gradient given to create its state is sparse)."""
    groups_filled_after_init: bool = False
    """The constructor only reads the groups' options, so the builder may give it groups with empty
    parameter lists and fill them afterwards (torch's ``add_param_group`` checks each new group
    against every earlier parameter: quadratic in the groups)."""


def _elementwise(torch_class: type[torch.optim.Optimizer], **facts: bool) -> TorchFacts:
    # torch's own elementwise classes: a flat buffer steps them, and their constructors read no
    # parameter (Adagrad's fills its state, but its step creates the state of a parameter added later).
    return TorchFacts(torch_class, elementwise=True, groups_filled_after_init=True, **facts)


TABLE: tuple[TorchFacts, ...] = (
    _elementwise(torch.optim.Adam, foreach_takes_tensor_lr=False),
    _elementwise(torch.optim.AdamW, foreach_takes_tensor_lr=False),
    _elementwise(torch.optim.SGD),
    _elementwise(torch.optim.Adagrad),
    _elementwise(torch.optim.RMSprop),
    _elementwise(torch.optim.Adadelta),
    _elementwise(torch.optim.Adamax),
    _elementwise(torch.optim.NAdam),
    _elementwise(torch.optim.RAdam),
    _elementwise(torch.optim.ASGD),
    _elementwise(torch.optim.Rprop),
    TorchFacts(torch.optim.SparseAdam, sparse_gradients=True),  # its constructor checks the parameters
    TorchFacts(torch.optim.Adafactor),  # factored second moments: shape-dependent
    TorchFacts(torch.optim.Muon),  # orthogonalizes each matrix
)
"""Every torch class an algorithm key builds, with its facts (torch 2.13)."""

_BY_CLASS = {row.torch_class: row for row in TABLE}


def facts_of(torch_class: type[torch.optim.Optimizer]) -> TorchFacts | None:
    """The row of ``torch_class`` or of its nearest listed base class; ``None`` when it has none."""
    for base in torch_class.__mro__:
        row = _BY_CLASS.get(base)
        if row is not None:
            return row
    return None


def is_elementwise(torch_class: type[torch.optim.Optimizer]) -> bool:
    """Whether a flat buffer steps ``torch_class`` exactly as its tensors one by one."""
    row = facts_of(torch_class)
    return row is not None and row.elementwise


def elementwise_classes() -> list[type[torch.optim.Optimizer]]:
    """The listed classes a flat buffer can step (for messages)."""
    return [row.torch_class for row in TABLE if row.elementwise]


def foreach_takes_tensor_lr(torch_class: type[torch.optim.Optimizer] | None) -> bool:
    """Whether the ``foreach`` step of ``torch_class`` takes a tensor ``lr``; ``None`` (any class): no."""
    if torch_class is None:
        return False
    row = facts_of(torch_class)
    return row is None or row.foreach_takes_tensor_lr


def takes_sparse_gradients_only(torch_class: type[torch.optim.Optimizer]) -> bool:
    """Whether the step of ``torch_class`` refuses dense gradients (SparseAdam)."""
    row = facts_of(torch_class)
    return row is not None and row.sparse_gradients


def groups_filled_after_init(torch_class: type[torch.optim.Optimizer]) -> bool:
    """Whether ``torch_class`` itself (not a subclass, whose constructor may read its parameters) may
    be built with empty groups that are filled afterwards."""
    row = _BY_CLASS.get(torch_class)
    return row is not None and row.groups_filled_after_init


__all__ = [
    "TABLE",
    "TorchFacts",
    "elementwise_classes",
    "facts_of",
    "foreach_takes_tensor_lr",
    "groups_filled_after_init",
    "is_elementwise",
    "takes_sparse_gradients_only",
]
