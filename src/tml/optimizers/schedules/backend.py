"""The two arithmetic backends every schedule formula is written against.

A schedule is written once, as a function ``f(config, t, ops)`` of the step ``t``; ``ops`` supplies
what Python's operators do not: ``cos``, ``where``, ``bisect_right``… With :data:`SCALAR`, ``t`` is
a Python ``int`` and the result a ``float``; with :data:`TENSOR`, ``t`` is a float64 tensor of steps
and the result a float64 tensor, computed without a Python loop over the steps. Both paths run the
same operations in the same order, so they agree to the last few ulps.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import torch

Number = Any
"""An ``int``/``float`` on the scalar backend, a float64 tensor on the tensor backend."""


class ScalarOps:
    """Plain Python floats and ints: the backend of ``LRShim.step()``."""

    pi = math.pi
    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    exp = staticmethod(math.exp)
    log = staticmethod(math.log)
    floor = staticmethod(math.floor)
    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def where(condition: bool, if_true: Number, if_false: Number) -> Number:
        return if_true if condition else if_false

    @staticmethod
    def bisect_right(sorted_values: Sequence[float], x: Number) -> Number:
        """The number of ``sorted_values`` that are ≤ ``x``."""
        return bisect.bisect_right(sorted_values, x)

    @staticmethod
    def take(values: Sequence[float], index: Number) -> Number:
        return values[index]

    @staticmethod
    def full_like(t: Number, value: float) -> Number:
        return value


class TensorOps:
    """float64 tensors of steps: the backend of vectorized ``compute_lr``."""

    pi = math.pi
    cos = staticmethod(torch.cos)
    sqrt = staticmethod(torch.sqrt)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    floor = staticmethod(torch.floor)

    @staticmethod
    def minimum(a: Number, b: Number) -> Number:
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, max=b)
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, max=a)
        return torch.minimum(a, b)

    @staticmethod
    def maximum(a: Number, b: Number) -> Number:
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, min=b)
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, min=a)
        return torch.maximum(a, b)

    @staticmethod
    def where(condition: torch.Tensor, if_true: Number, if_false: Number) -> Number:
        if not isinstance(if_true, torch.Tensor) and not isinstance(if_false, torch.Tensor):
            if_true = torch.full_like(condition, if_true, dtype=torch.float64)
        return torch.where(condition, if_true, if_false)

    @staticmethod
    def bisect_right(sorted_values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
        table = torch.tensor(list(sorted_values), dtype=x.dtype)
        return torch.searchsorted(table, x, right=True)

    @staticmethod
    def take(values: Sequence[float], index: torch.Tensor) -> torch.Tensor:
        return torch.tensor(list(values), dtype=torch.float64)[index]

    @staticmethod
    def full_like(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.full_like(t, value, dtype=torch.float64)


SCALAR = ScalarOps()
TENSOR = TensorOps()
Ops = ScalarOps | TensorOps
