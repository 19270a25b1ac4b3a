"""Flat buffers: a group's parameters and gradients as views into one contiguous tensor each.

With many small tensors, a torch optimizer spends its time in per-tensor overhead, not in
arithmetic: fused Adam over 2000 tensors of 256 floats is ~50× slower than over one tensor of
512,000. :class:`FlatOptimizer` copies the parameters of each (param group, dtype, device) into
one contiguous buffer, makes every parameter's ``.data`` a view into it and every ``.grad`` a view
into a matching gradient buffer, and steps an inner torch optimizer over the buffers: one tensor
per buffer.

What stays the same for the rest of the program:

* The model keeps its ``Parameter`` objects, names and ``state_dict`` (the values are views).
* Autograd accumulates into the gradient buffer in place (a defined ``.grad`` is updated with
  ``+=`` when ``create_graph`` is off).
* :meth:`FlatOptimizer.state_dict` is torch's ordinary per-parameter form: a checkpoint loads
  into a plain ``torch.optim.Adam`` over the same parameters and back.

Detachment guard: ``model.zero_grad()`` (``set_to_none=True``, torch's default) or
``param.grad = tensor`` make a gradient a separate tensor again, outside the buffer. Before every
step, :meth:`FlatOptimizer.step` checks each parameter's ``.grad`` by identity against its view:
a separate gradient is copied into the view and the view rebound; a parameter whose ``.grad`` is
``None`` gets a zero gradient (torch would skip it; one flat step cannot skip part of a buffer),
and a buffer none of whose parameters has a gradient is skipped, as torch skips them. The check
reads every ``.grad`` (in C loops, no bytecode per parameter): ~0.1 µs per parameter with warm
caches, up to ~0.3 µs right after a backward pass. No cheaper check is exact: a count of the
buffer's views misses a detached gradient that other code still holds.
:meth:`FlatOptimizer.zero_grad` zeroes the gradient buffers in place for either value of
``set_to_none`` (one ``memset``; gradients are then zeros, not ``None``).

Refused at construction, with the reason: optimizers that are not elementwise (a flat buffer
changes the result of Adafactor's factored moments or Muon's matrix orthogonalization) or need a
closure (LBFGS) or sparse gradients (SparseAdam); sparse parameters and modules that produce
sparse gradients (``nn.Embedding(sparse=True)``, ``nn.EmbeddingBag(sparse=True)``); tensor
subclasses (DTensor / FSDP parameters: their storage belongs to the sharding runtime); parameters
that are not floating point. ``step(closure)`` is refused at call time.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from tml.optimizers.algorithms.facts import elementwise_classes, is_elementwise

_GRAD = operator.attrgetter("grad")

SCALAR_STATE_KEYS = frozenset({"step", "eta", "mu", "mu_product"})
"""State entries that hold one value for a whole tensor (torch's step counters, ASGD's eta and mu,
NAdam's mu_product)."""


class FlattenError(ValueError):
    """Flat buffers cannot be used for these parameters or this optimizer; the message says why."""


@dataclasses.dataclass(eq=False)
class FlatBuffer:
    """The parameters of one (param group, dtype, device) as views into two contiguous tensors.

    Attributes:
      group_index: the index of the outer param group the parameters belong to.
      params: the model's parameters, in group order; ``params[i].data`` is a view into ``data``.
      offsets: where each parameter starts in the buffer (in elements).
      data: the 1-D parameter buffer (``torch.nn.Parameter``, the tensor the inner optimizer steps).
      grad: the 1-D gradient buffer; ``data.grad is grad``.
      grad_views: ``grad_views[i]`` is ``params[i]``'s gradient: a view into ``grad`` of its shape.
    """

    group_index: int
    params: list[torch.nn.Parameter]
    offsets: list[int]
    data: torch.nn.Parameter
    grad: torch.Tensor
    grad_views: list[torch.Tensor]

    def bound(self) -> bool:
        """Whether every parameter's ``.grad`` is its view: one identity comparison per parameter,
        run by C loops (``map``), without Python bytecode per parameter."""
        return all(map(operator.is_, map(_GRAD, self.params), self.grad_views))

    def bind_gradients(self) -> bool:
        """Make every parameter's ``.grad`` its view again; ``False`` if none had a gradient.

        A gradient that is a separate tensor is copied into the view; a missing one becomes zero.
        The common case, every ``.grad`` still its view, costs one :meth:`bound` check.
        """
        if self.bound():
            return True
        missing = 0
        for index, (param, view) in enumerate(zip(self.params, self.grad_views, strict=True)):
            grad = param.grad
            if grad is view:
                continue
            if grad is None:
                missing += 1
                view.zero_()
            elif grad.layout != torch.strided:
                raise RuntimeError(
                    f"flatten: parameter {index} of param group {self.group_index} received a "
                    f"{grad.layout} gradient; flat buffers need dense gradients (build this group "
                    "without flatten, e.g. for nn.Embedding(sparse=True))"
                )
            else:
                view.copy_(grad)
            param.grad = view
        if missing == len(self.params):
            for param in self.params:
                param.grad = None
            return False
        return True

    def state_views(self, flat_state: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Split the inner optimizer's state of this buffer into one state per parameter.

        Per-entry tensors become views of each parameter's shape; anything else (the ``step``
        counter) is copied per parameter, so no two parameters share a mutable tensor.
        """
        states: list[dict[str, Any]] = [{} for _ in self.params]
        total = self.data.numel()
        for key, value in flat_state.items():
            # A per-entry tensor has the buffer's 1-D shape; a 0-dim one is a scalar even when the
            # buffer has one element.
            if key not in SCALAR_STATE_KEYS and isinstance(value, torch.Tensor) and value.shape == (total,):
                for state, param, offset in zip(states, self.params, self.offsets, strict=True):
                    state[key] = value.narrow(0, offset, param.numel()).view_as(param)
            else:
                for state in states:
                    state[key] = value.clone() if isinstance(value, torch.Tensor) else value
        return states

    def merge_states(self, states: list[dict[str, Any]]) -> dict[str, Any]:
        """The inverse of :meth:`state_views`: one flat state from per-parameter states.

        Raises:
          ValueError: the states cannot be one flat state (some parameters have state and others
            not, or a scalar such as ``step`` differs between parameters).
        """
        keys = [set(state) for state in states]
        if any(key_set != keys[0] for key_set in keys):
            raise ValueError(
                f"param group {self.group_index}: the parameters of one flat buffer must all have "
                "the same optimizer state keys (some have none: they were never stepped), got "
                f"{sorted({tuple(sorted(key_set)) for key_set in keys})}"
            )
        merged: dict[str, Any] = {}
        for key in sorted(keys[0]):
            values = [state[key] for state in states]
            if key not in SCALAR_STATE_KEYS and all(
                isinstance(value, torch.Tensor) and value.shape == param.shape
                for value, param in zip(values, self.params, strict=True)
            ):
                merged[key] = torch.cat([value.reshape(-1) for value in values]).to(self.data.dtype)
                continue
            first = values[0]
            same = all(_equal(first, value) for value in values[1:])
            if not same:
                raise ValueError(
                    f"param group {self.group_index}: state {key!r} differs between parameters of "
                    "one flat buffer (a flat buffer keeps one value for all of them, e.g. one step "
                    "count); load this checkpoint without flatten"
                )
            merged[key] = first.clone() if isinstance(first, torch.Tensor) else first
        return merged


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
    return bool(a == b)


def _sparse_gradient_params(modules: torch.nn.Module | None) -> dict[int, str]:
    """The parameters of ``modules`` that receive sparse gradients, by id, with the reason."""
    if modules is None:
        return {}
    found: dict[int, str] = {}
    for module_name, module in modules.named_modules():
        if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and module.sparse:
            found[id(module.weight)] = (
                f"module {module_name or 'the model'!r} is {type(module).__name__}(sparse=True): its "
                "gradient is a sparse tensor, which cannot live in a dense flat buffer"
            )
    return found


def check_flattenable(
    optimizer_class: type[torch.optim.Optimizer],
    params: Iterable[torch.Tensor],
    model: torch.nn.Module | None = None,
) -> None:
    """Refuse, with the reason, what flat buffers cannot handle.

    Args:
      optimizer_class: the torch optimizer that will step the buffers.
      params: the parameters to flatten.
      model: the module the parameters come from, if known: its sparse embeddings are found by type.

    Raises:
      FlattenError: the optimizer or a parameter cannot be flattened; the message names it and says
        why.
    """
    if not is_elementwise(optimizer_class):
        raise FlattenError(
            f"flatten: {optimizer_class.__name__} cannot step flat buffers: only elementwise "
            "optimizers give the same result on a flat buffer (a closure-based, sparse or "
            "shape-dependent optimizer does not); supported: "
            + ", ".join(cls.__name__ for cls in elementwise_classes())
        )
    sparse = _sparse_gradient_params(model)
    names = {id(param): name for name, param in model.named_parameters()} if model is not None else {}
    for index, param in enumerate(params):
        label = names.get(id(param), f"parameter {index}")
        if id(param) in sparse:
            raise FlattenError(f"flatten: {label}: {sparse[id(param)]}")
        if type(param) not in (torch.Tensor, torch.nn.Parameter):
            raise FlattenError(
                f"flatten: {label} is a {type(param).__name__} (a tensor subclass such as a DTensor "
                "or an FSDP parameter): its storage is managed by the sharding runtime and cannot "
                "become a view into a flat buffer"
            )
        if param.layout != torch.strided:
            raise FlattenError(f"flatten: {label} is a {param.layout} tensor; flat buffers are dense")
        if not param.is_floating_point():
            raise FlattenError(f"flatten: {label} has dtype {param.dtype}; flat buffers need floats")


def make_flat_buffer(group_index: int, params: list[torch.nn.Parameter]) -> FlatBuffer:
    """Move ``params`` (one dtype and device) into one contiguous buffer and bind their gradients.

    Each parameter's values are copied into the buffer and its ``.data`` becomes a view into it;
    an existing gradient is copied into the gradient buffer (zeros otherwise) and ``.grad`` becomes
    a view. The parameters' old storage is released one by one, so the peak is one buffer plus the
    largest parameter.
    """
    first = params[0]
    offsets: list[int] = []
    total = 0
    for param in params:
        offsets.append(total)
        total += param.numel()
    data = torch.empty(total, dtype=first.dtype, device=first.device)
    grad = torch.zeros(total, dtype=first.dtype, device=first.device)
    grad_views: list[torch.Tensor] = []
    with torch.no_grad():
        for param, offset in zip(params, offsets, strict=True):
            view = data.narrow(0, offset, param.numel()).view_as(param)
            view.copy_(param)
            param.data = view
            grad_view = grad.narrow(0, offset, param.numel()).view_as(param)
            if param.grad is not None:
                grad_view.copy_(param.grad)
            param.grad = grad_view
            grad_views.append(grad_view)
    flat = torch.nn.Parameter(data, requires_grad=False)
    flat.grad = grad
    return FlatBuffer(group_index, list(params), offsets, flat, grad, grad_views)


class FlatOptimizer(torch.optim.Optimizer):
    """A torch optimizer that steps one flat buffer per (param group, dtype, device).

    Its ``param_groups`` are the ordinary ones (the model's parameters and the hyperparameters),
    so ``LRShim``, checkpoints and training loops see a normal optimizer; write hyperparameters
    there (the inner optimizer's groups are refreshed from them at every step).

    Args:
      params: parameters, ``(name, parameter)`` pairs or param-group dicts, as for any torch
        optimizer.
      optimizer_class: an elementwise torch optimizer (see ``tml.optimizers.algorithms.facts``).
      model: the module the parameters belong to, if known: used to refuse sparse embeddings at
        construction (without it a sparse gradient is refused at the first step).
      **optimizer_kwargs: the defaults of ``optimizer_class`` (``lr``, ``betas``, ``fused``...).

    Raises:
      FlattenError: see :func:`check_flattenable`.

    Examples:
      >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
      >>> optimizer = FlatOptimizer(model.parameters(), torch.optim.Adam, lr=0.1, fused=True)
      >>> [tuple(buffer.data.shape) for buffer in optimizer.buffers]
      [(11,)]
      >>> model(torch.ones(4, 3)).sum().backward()
      >>> optimizer.step()
      >>> sorted(optimizer.state_dict()["state"][0])
      ['exp_avg', 'exp_avg_sq', 'step']
    """

    def __init__(
        self,
        params: Iterable[Any],
        optimizer_class: type[torch.optim.Optimizer],
        *,
        model: torch.nn.Module | None = None,
        **optimizer_kwargs: Any,
    ) -> None:
        groups = _as_groups(params)
        all_params = [param for group in groups for param in _tensors_of(group)]
        check_flattenable(optimizer_class, all_params, model)
        self.buffers: list[FlatBuffer] = []
        for group_index, group in enumerate(groups):
            by_kind: dict[tuple[torch.dtype, torch.device], list[torch.nn.Parameter]] = defaultdict(list)
            for param in _tensors_of(group):
                by_kind[(param.dtype, param.device)].append(param)
            self.buffers.extend(make_flat_buffer(group_index, members) for members in by_kind.values())
        self.optimizer_class = optimizer_class
        self.inner = optimizer_class(
            [
                {**_hyperparameters(groups[buffer.group_index]), "params": [buffer.data]}
                for buffer in self.buffers
            ],
            **optimizer_kwargs,
        )
        self._inner_step = _unhooked_step(self.inner)
        self._constructing = True
        super().__init__(groups, self.inner.defaults)
        self._constructing = False
        # The outer state is only filled while packing or unpacking a state_dict.
        self.state = defaultdict(dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused after construction: the flat buffers are laid out once."""
        if not getattr(self, "_constructing", False):
            raise RuntimeError(
                "FlatOptimizer.add_param_group: the flat buffers are laid out at construction; "
                "build a new optimizer with every param group"
            )
        super().add_param_group(param_group)

    def _sync_hyperparameters(self) -> None:
        for buffer, inner_group in zip(self.buffers, self.inner.param_groups, strict=True):
            outer_group = self.param_groups[buffer.group_index]
            for key, value in outer_group.items():
                if key not in _NOT_HYPERPARAMETERS:
                    inner_group[key] = value

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """Rebind detached gradients, then step every buffer once."""
        if closure is not None:
            raise TypeError(
                "FlatOptimizer.step: closures are not supported with flatten (a closure that "
                "re-evaluates the loss would need gradients re-bound between evaluations); call "
                "backward() before step()"
            )
        self._sync_hyperparameters()
        skipped = [buffer for buffer in self.buffers if not buffer.bind_gradients()]
        for buffer in skipped:
            buffer.data.grad = None
        try:
            self._inner_step()
        finally:
            for buffer in skipped:
                buffer.data.grad = buffer.grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradient buffers in place and rebind every ``.grad`` to its view.

        ``set_to_none`` is accepted for compatibility; gradients become zeros either way (setting
        them to ``None`` would detach them from the buffer).
        """
        for buffer in self.buffers:
            buffer.grad.zero_()
            if buffer.bound():
                continue
            for param, view in zip(buffer.params, buffer.grad_views, strict=True):
                if param.grad is not view:
                    param.grad = view

    def state_dict(self) -> dict[str, Any]:
        """Torch's ordinary per-parameter state dict (loadable by a non-flat optimizer)."""
        self.state = defaultdict(dict)
        for buffer in self.buffers:
            flat_state = self.inner.state.get(buffer.data)
            if not flat_state:
                continue
            for param, state in zip(buffer.params, buffer.state_views(flat_state), strict=True):
                self.state[param] = state
        try:
            return super().state_dict()
        finally:
            self.state = defaultdict(dict)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a per-parameter state dict (saved by this class or a non-flat optimizer).

        Raises:
          ValueError: the parameters of one buffer have different step counts or state keys.
        """
        super().load_state_dict(state_dict)
        try:
            inner_state: dict[int, dict[str, Any]] = {}
            for index, buffer in enumerate(self.buffers):
                states = [self.state.get(param, {}) for param in buffer.params]
                if any(states):
                    inner_state[index] = buffer.merge_states(states)
            self.inner.load_state_dict(
                {
                    "state": inner_state,
                    "param_groups": [
                        {**_hyperparameters(self.param_groups[buffer.group_index]), "params": [index]}
                        for index, buffer in enumerate(self.buffers)
                    ],
                }
            )
        finally:
            self.state = defaultdict(dict)


_NOT_HYPERPARAMETERS = frozenset({"params", "param_names"})


def _unhooked_step(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    """``optimizer.step`` without torch's hook-and-profiler wrapper.

    ``torch.optim.Optimizer`` wraps every subclass's ``step`` once (a profiler range, then the
    global and per-optimizer step hooks). The outer :class:`FlatOptimizer` step runs that wrapper
    already; running it again for the private inner optimizer would fire global step hooks twice
    per step and cost ~30 µs.
    """
    step = type(optimizer).step
    unhooked = getattr(step, "__wrapped__", None)
    if getattr(step, "hooked", False) and unhooked is not None:
        return functools.partial(unhooked, optimizer)
    return optimizer.step


def _hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in group.items() if key not in _NOT_HYPERPARAMETERS}


def _tensors_of(group: Mapping[str, Any]) -> list[Any]:
    """A group's parameters; ``(name, tensor)`` pairs (from ``named_parameters()``) give the tensor."""
    return [member[1] if isinstance(member, tuple) else member for member in group["params"]]


def _as_groups(params: Iterable[Any]) -> list[dict[str, Any]]:
    items = list(params)
    if not items:
        raise ValueError("FlatOptimizer got an empty parameter list")
    if not isinstance(items[0], dict):
        items = [{"params": items}]
    groups = []
    for group in items:
        if not isinstance(group, dict):
            raise TypeError("params must be all tensors or all param-group dicts")
        members = group["params"]
        members = [members] if isinstance(members, torch.Tensor) else list(members)
        if not members:
            raise ValueError("FlatOptimizer got a param group without parameters")
        groups.append({**group, "params": members})
    return groups


__all__ = [
    "FlatBuffer",
    "FlatOptimizer",
    "FlattenError",
    "check_flattenable",
    "make_flat_buffer",
]
