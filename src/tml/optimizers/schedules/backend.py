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
from collections.abc import Callable, Sequence
from typing import Any

import torch

Number = Any
"""An ``int``/``float`` on the scalar backend, a float64 tensor on the tensor backend."""


class ScalarOps:
    """Plain Python floats and ints: the backend of ``LRShim.step()``."""

    pi = math.pi
    cos = staticmethod(math.cos)
    sin = staticmethod(math.sin)
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

    @staticmethod
    def bisect_left(sorted_values: Sequence[float], x: Number) -> Number:
        """The number of ``sorted_values`` that are < ``x``."""
        return bisect.bisect_left(sorted_values, x)

    @staticmethod
    def floor_divide(numerator: Number, denominator: int) -> Number:
        """``numerator // denominator``: exact integer arithmetic for an ``int`` step."""
        return numerator // denominator

    @staticmethod
    def power(base: float, exponent: Number) -> Number:
        return base**exponent

    @staticmethod
    def geometric_cycle(t: Number, first_cycle_steps: int, multiplier: int) -> tuple[Number, Number, Number]:
        """``(index, start, length)`` of the cycle that holds step ``t``, cycle ``i`` being
        ``first_cycle_steps * multiplier ** i`` steps long; in closed form, exact for an ``int`` step.

        The index is estimated with a logarithm, then corrected by ±1 with exact integer arithmetic.
        """
        if multiplier == 1:
            index = t // first_cycle_steps
            return index, index * first_cycle_steps, first_cycle_steps
        index = math.floor(math.log(t * (multiplier - 1) / first_cycle_steps + 1) / math.log(multiplier))
        index = max(int(index), 0)

        def start_of(cycle: int) -> int:
            return first_cycle_steps * (multiplier**cycle - 1) // (multiplier - 1)

        while index > 0 and start_of(index) > t:
            index -= 1
        while start_of(index + 1) <= t:
            index += 1
        return index, start_of(index), first_cycle_steps * multiplier**index

    @staticmethod
    def interpolate(boundaries: Sequence[int], values: Sequence[float], t: Number) -> Number:
        """Linear interpolation through ``(boundaries[i], values[i])``; the end values outside."""
        index = bisect.bisect_right(boundaries, t)
        if index == 0:
            return values[0]
        if index == len(boundaries):
            return values[-1]
        x0, y0 = boundaries[index - 1], values[index - 1]
        return y0 + (values[index] - y0) * ((t - x0) / (boundaries[index] - x0))

    @staticmethod
    def join(t: Number, starts: Sequence[int], pieces: Sequence[Callable[[Number], Number]]) -> Number:
        """``pieces[i](t - starts[i])`` for the last ``starts[i] <= t`` (``starts[0]`` is 0)."""
        index = bisect.bisect_right(starts, t) - 1
        return pieces[index](t - starts[index])


class TensorOps:
    """float64 tensors of steps: the backend of vectorized ``compute_lr``."""

    pi = math.pi
    cos = staticmethod(torch.cos)
    sin = staticmethod(torch.sin)
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

    @staticmethod
    def bisect_left(sorted_values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
        table = torch.tensor(list(sorted_values), dtype=x.dtype)
        return torch.searchsorted(table, x, right=False)

    @staticmethod
    def floor_divide(numerator: torch.Tensor, denominator: int) -> torch.Tensor:
        """``floor(numerator / denominator)``, exact for integer-valued float64 below 2**53."""
        return torch.div(numerator, denominator, rounding_mode="floor")

    @staticmethod
    def power(base: float, exponent: torch.Tensor) -> torch.Tensor:
        return torch.pow(base, exponent)

    @staticmethod
    def geometric_cycle(
        t: torch.Tensor, first_cycle_steps: int, multiplier: int
    ) -> tuple[torch.Tensor, torch.Tensor, Number]:
        """As :meth:`ScalarOps.geometric_cycle`, on float64 steps (exact below 2**53 / multiplier)."""
        if multiplier == 1:
            index = torch.div(t, first_cycle_steps, rounding_mode="floor")
            return index, index * first_cycle_steps, first_cycle_steps
        index = torch.floor(torch.log(t * (multiplier - 1) / first_cycle_steps + 1) / math.log(multiplier))
        index.clamp_(min=0)
        powers = torch.pow(float(multiplier), index)
        start = first_cycle_steps * (powers - 1) / (multiplier - 1)
        too_far = start > t
        index -= too_far.to(torch.float64)
        powers = torch.where(too_far, powers / multiplier, powers)
        start = first_cycle_steps * (powers - 1) / (multiplier - 1)
        next_powers = powers * multiplier
        next_start = first_cycle_steps * (next_powers - 1) / (multiplier - 1)
        reached = next_start <= t
        index += reached.to(torch.float64)
        powers = torch.where(reached, next_powers, powers)
        start = torch.where(reached, next_start, start)
        return index, start, first_cycle_steps * powers

    @staticmethod
    def interpolate(boundaries: Sequence[int], values: Sequence[float], t: torch.Tensor) -> torch.Tensor:
        """As :meth:`ScalarOps.interpolate`, vectorized (same operations in the same order)."""
        if len(boundaries) == 1:
            return torch.full_like(t, values[0], dtype=torch.float64)
        xs = torch.tensor(list(boundaries), dtype=torch.float64)
        ys = torch.tensor(list(values), dtype=torch.float64)
        index = torch.searchsorted(xs, t, right=True)
        lower = (index - 1).clamp_(0, len(boundaries) - 2)
        x0, y0 = xs[lower], ys[lower]
        rise = (ys[1:] - ys[:-1])[lower]
        run = (xs[1:] - xs[:-1])[lower]
        inside = y0 + rise * ((t - x0) / run)
        inside = torch.where(index == 0, ys[0], inside)
        return torch.where(index == len(boundaries), ys[-1], inside)

    @staticmethod
    def join(
        t: torch.Tensor, starts: Sequence[int], pieces: Sequence[Callable[[Number], Number]]
    ) -> torch.Tensor:
        """As :meth:`ScalarOps.join`: each piece is evaluated only on the steps of its phase."""
        index = torch.searchsorted(torch.tensor(list(starts), dtype=t.dtype), t, right=True) - 1
        result = torch.empty_like(t, dtype=torch.float64)
        for phase, (start, piece) in enumerate(zip(starts, pieces, strict=True)):
            mask = index == phase
            values = piece(t[mask] - start)
            result[mask] = values if isinstance(values, torch.Tensor) else torch.tensor(values).double()
        return result


def half_cosine(ops: Ops, progress: Number) -> Number:
    """``(1 + cos(pi * progress)) / 2`` for ``progress`` in [0, 1], computed as
    ``sin(pi / 2 * (1 - progress)) ** 2``: the same value, but without the cancellation of
    ``1 + cos`` near ``progress = 1``, so both backends agree to a few ulps relative even where the
    value is tiny; exactly 1 at 0 and exactly 0 at 1.
    """
    half_wave = ops.sin(ops.pi / 2 * (1.0 - progress))
    return half_wave * half_wave


SCALAR = ScalarOps()
TENSOR = TensorOps()
Ops = ScalarOps | TensorOps
