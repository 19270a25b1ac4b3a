"""The two arithmetic backends every schedule formula is written against.

A schedule is written once, as a function ``f(config, t, ops)`` of the step ``t``; ``ops`` supplies
what Python's operators do not: ``cos``, ``where``, ``bisect_right``… With :data:`SCALAR`, ``t`` is
a Python ``int`` and the result a ``float``; with :data:`TENSOR`, ``t`` is a float64 tensor of steps
and the result a float64 tensor, computed without a Python loop over the steps. Both paths run the
same operations in the same order, so they agree to the last few ulps.

Speed: on the tensor backend every new 1,000,000-element buffer costs more than the arithmetic on it,
so formulas create few buffers and then work in place. The operations whose names end in ``_``
(``sin_``, ``minimum_``…) and Python's augmented assignments (``x *= c``) overwrite a tensor
argument and return it; on the scalar backend they simply return the new value. A formula only
ever overwrites a buffer it created itself, never its argument ``t``.

Steps in ascending order (``torch.arange``, the usual case) take a fast path: a bisection is a
``searchsorted`` of the few boundaries into the steps, so every piece of a piecewise formula is a
slice (a view) of the steps, and a join evaluates each piece on its slice alone. Any other order
takes the general path (``bucketize``, masks), with the same values.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

Number = Any
"""An ``int``/``float`` on the scalar backend, a float64 tensor on the tensor backend."""
Cycle = Callable[[Number, Number, Number, Number], Number]
"""``cycle(t, index, start, length)``: a periodic formula given the cycle that holds ``t``."""


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
    minimum_ = staticmethod(min)
    maximum_ = staticmethod(max)
    sin_ = staticmethod(math.sin)
    sqrt_ = staticmethod(math.sqrt)

    @staticmethod
    def where(condition: Number, if_true: Number, if_false: Number) -> Number:
        return if_true if condition else if_false

    @staticmethod
    def fill_where_(condition: Number, value: Number, x: Number) -> Number:
        """``value`` where ``condition`` holds, else ``x`` (on tensors: ``x`` overwritten)."""
        return value if condition else x

    @staticmethod
    def rsub_(value: Number, x: Number) -> Number:
        """``value - x`` (on tensors: ``x`` overwritten)."""
        return value - x

    @staticmethod
    def rdiv_(value: float, x: Number) -> Number:
        """``value / x`` (on tensors: ``x`` overwritten)."""
        return value / x

    @staticmethod
    def power_(base: float, exponent: Number) -> Number:
        """``base ** exponent`` (on tensors: ``exponent`` overwritten)."""
        return base**exponent

    @staticmethod
    def integer_power(base: float, exponent: Number) -> Number:
        """``base ** exponent`` for a whole-number ``exponent`` (on tensors: a new tensor)."""
        return base**exponent

    @staticmethod
    def floor_divide(numerator: Number, denominator: int) -> Number:
        """``numerator // denominator``: exact integer arithmetic for an ``int`` step."""
        return numerator // denominator

    @staticmethod
    def bisect_right(sorted_values: Sequence[float], x: Number) -> Number:
        """The number of ``sorted_values`` that are ≤ ``x``."""
        return bisect.bisect_right(sorted_values, x)

    @staticmethod
    def bisect_left(sorted_values: Sequence[float], x: Number) -> Number:
        """The number of ``sorted_values`` that are < ``x``."""
        return bisect.bisect_left(sorted_values, x)

    @staticmethod
    def take(values: Sequence[float], index: Number) -> Number:
        return values[index]

    @staticmethod
    def full_like(t: Number, value: float) -> Number:
        return value

    @staticmethod
    def geometric_cycle(t: Number, first_cycle_steps: int, multiplier: int) -> tuple[Number, Number, Number]:
        """``(index, start, length)`` of the cycle that holds step ``t``, cycle ``i`` being
        ``first_cycle_steps * multiplier ** i`` steps long; in closed form, exact for an ``int`` step.

        The index is estimated with a logarithm, then corrected by ±1 with exact integer arithmetic.
        """
        if multiplier == 1:
            index = t // first_cycle_steps
            return index, index * first_cycle_steps, first_cycle_steps

        def start_of(cycle: int) -> int:
            return first_cycle_steps * (multiplier**cycle - 1) // (multiplier - 1)

        estimate = math.log(t * (multiplier - 1) / first_cycle_steps + 1) / math.log(multiplier)
        index = max(math.floor(estimate), 0)
        while index > 0 and start_of(index) > t:
            index -= 1
        while start_of(index + 1) <= t:
            index += 1
        return index, start_of(index), first_cycle_steps * multiplier**index

    @staticmethod
    def cycles(t: Number, first_cycle_steps: int, multiplier: int, cycle: Cycle) -> Number:
        """``cycle(t, index, start, length)`` with the cycle of :meth:`geometric_cycle` that holds ``t``."""
        return cycle(t, *ScalarOps.geometric_cycle(t, first_cycle_steps, multiplier))

    @staticmethod
    def interpolate(boundaries: Sequence[int], values: Sequence[float], t: Number) -> Number:
        """Linear interpolation through ``(boundaries[i], values[i])``; the end values outside."""
        anchors, levels, slopes = interpolation_tables(boundaries, values)
        index = bisect.bisect_right(boundaries, t)
        return levels[index] + (t - anchors[index]) * slopes[index]

    @staticmethod
    def join(t: Number, starts: Sequence[int], pieces: Sequence[Callable[[Number], Number]]) -> Number:
        """``pieces[i](t - starts[i])`` for the last ``starts[i] <= t`` (``starts[0]`` is 0)."""
        index = bisect.bisect_right(starts, t) - 1
        return pieces[index](t - starts[index])

    @staticmethod
    def piecewise(
        t: Number,
        sorted_values: Sequence[float],
        pieces: Sequence[Callable[[Number], Number]],
        *,
        right: bool,
    ) -> Number:
        """``pieces[k](t)`` for ``k = bisect_right(sorted_values, t)`` (``bisect_left`` if not
        ``right``): one piece more than ``sorted_values``."""
        index = (bisect.bisect_right if right else bisect.bisect_left)(sorted_values, t)
        return pieces[index](t)


def _table(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64)


INTEGER_POWER_TABLE = 4096
"""The most distinct exponents :meth:`TensorOps.integer_power` looks up in a table of Python powers."""


def _ascending(t: torch.Tensor) -> bool:
    """Whether the 1-D ``t`` is in ascending order (equal neighbours allowed)."""
    return t.numel() < 2 or not bool(torch.lt(t[1:], t[:-1]).any())


def _piece_ends(t: torch.Tensor, sorted_values: Sequence[float], right: bool) -> list[int] | None:
    """For ascending ``t``: ``ends`` such that the elements of ``t`` whose
    ``bisect_right(sorted_values, ·)`` (``bisect_left`` if not ``right``) is ``k`` are
    ``t[ends[k]:ends[k + 1]]``, for ``k`` in ``0..len(sorted_values)``. ``None`` if ``t`` is not
    ascending."""
    if not _ascending(t):
        return None
    return _ascending_piece_ends(t, sorted_values, right)


def _ascending_piece_ends(t: torch.Tensor, sorted_values: Sequence[float], right: bool) -> list[int]:
    """:func:`_piece_ends` for a ``t`` already known to be ascending."""
    # bisect_right(values, x) >= k  <=>  x >= values[k - 1]: the first such x is searchsorted's left
    # side; for bisect_left (x > values[k - 1]) its right side.
    inner = torch.searchsorted(t, torch.tensor(list(sorted_values), dtype=t.dtype), right=not right)
    return [0, *inner.tolist(), t.numel()]


def _slices(t: torch.Tensor, ends: list[int], pieces: Sequence[Callable[[Number], Number]]) -> torch.Tensor:
    """``pieces[k]`` evaluated on ``t[ends[k]:ends[k + 1]]``, each into its slice of the result."""
    result = torch.empty_like(t, dtype=torch.float64)
    for (begin, end), piece in zip(itertools.pairwise(ends), pieces, strict=True):
        if begin < end:
            result[begin:end] = piece(t[begin:end])
    return result


def _bucketize(t: torch.Tensor, sorted_values: Sequence[float], right: bool) -> torch.Tensor:
    """``bisect_right`` (``bisect_left`` if not ``right``) of every element of ``t``, as int64."""
    ends = _piece_ends(t, sorted_values, right)
    if ends is None:
        return torch.bucketize(t, torch.tensor(list(sorted_values), dtype=t.dtype), right=right)
    index = torch.empty(t.shape, dtype=torch.int64)
    for piece, (begin, end) in enumerate(itertools.pairwise(ends)):
        if begin < end:
            index[begin:end].fill_(piece)
    return index


SLICED_CYCLES = 64
"""The most cycles :meth:`TensorOps.cycles` evaluates slice by slice (ascending steps)."""


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
    def minimum_(x: Number, bound: Number) -> Number:
        if isinstance(bound, torch.Tensor):
            return torch.minimum(x, bound, out=x)
        return x.clamp_(max=bound)

    @staticmethod
    def maximum_(x: Number, bound: float) -> Number:
        return x.clamp_(min=bound)

    @staticmethod
    def sin_(x: Number) -> Number:
        return x.sin_()

    @staticmethod
    def sqrt_(x: Number) -> Number:
        return x.sqrt_()

    @staticmethod
    def where(condition: torch.Tensor, if_true: Number, if_false: Number) -> Number:
        if not isinstance(if_true, torch.Tensor) and not isinstance(if_false, torch.Tensor):
            if_true = torch.full_like(condition, if_true, dtype=torch.float64)
        return torch.where(condition, if_true, if_false)

    @staticmethod
    def fill_where_(condition: Number, value: Number, x: Number) -> Number:
        if isinstance(value, torch.Tensor):
            return torch.where(condition, value, x, out=x)
        return x.masked_fill_(condition, value)

    @staticmethod
    def rsub_(value: Number, x: Number) -> Number:
        # -x + value is value - x exactly (IEEE subtraction adds the negation).
        return x.neg_().add_(value)

    @staticmethod
    def rdiv_(value: float, x: Number) -> Number:
        return torch.div(torch.tensor(value, dtype=torch.float64), x, out=x)

    @staticmethod
    def power_(base: float, exponent: Number) -> Number:
        """``base ** exponent`` as ``exp(exponent · ln base)`` for ``base > 0``, in place: ~8× cheaper
        than ``torch.pow(scalar, tensor)`` in float64. The relative error is at most
        ``|exponent · ln base| · 2**-52`` (below 2e-13 wherever the result is a normal float)."""
        if base > 0:
            return exponent.mul_(math.log(base)).exp_()
        return torch.pow(base, exponent, out=exponent)

    @staticmethod
    def integer_power(base: float, exponent: Number) -> Number:
        """As :meth:`ScalarOps.integer_power` on a tensor of whole numbers (int64 or float64).

        When the exponents span at most :data:`INTEGER_POWER_TABLE` values, the powers are looked up
        in a table of Python's own ``base ** k``: the scalar path's values exactly, and much cheaper
        than ``torch.pow``; otherwise ``torch.pow``. A Python ``int`` exponent gives ``base ** exponent``.
        """
        if not isinstance(exponent, torch.Tensor):
            return base**exponent
        if exponent.numel():
            low, high = int(exponent.min()), int(exponent.max())
            if high - low < INTEGER_POWER_TABLE:
                powers = _table([base**k for k in range(low, high + 1)])
                offsets = exponent.to(torch.int64)
                return powers.index_select(0, offsets - low if low else offsets)
        return torch.pow(base, exponent.to(torch.float64))

    @staticmethod
    def floor_divide(numerator: torch.Tensor, denominator: int) -> torch.Tensor:
        """``floor(numerator / denominator)``: exact for integer-valued ``numerator`` and
        ``denominator`` whose sum is below 2**53 (a correctly rounded quotient ``k - r/d`` cannot
        round up to ``k`` there), so it equals the scalar path's ``//``."""
        return (numerator / denominator).floor_()

    @staticmethod
    def bisect_right(sorted_values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
        return _bucketize(x, sorted_values, right=True)

    @staticmethod
    def bisect_left(sorted_values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
        return _bucketize(x, sorted_values, right=False)

    @staticmethod
    def take(values: Sequence[float], index: torch.Tensor) -> torch.Tensor:
        return _table(values).index_select(0, index)

    @staticmethod
    def full_like(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.full_like(t, value, dtype=torch.float64)

    @staticmethod
    def geometric_cycle(
        t: torch.Tensor, first_cycle_steps: int, multiplier: int
    ) -> tuple[torch.Tensor, torch.Tensor, Number]:
        """As :meth:`ScalarOps.geometric_cycle`, on float64 steps (exact below 2**53).

        For ``multiplier > 1`` there are at most 54 cycle starts below 2**53, so the cycle is found
        by a binary search in the table of their exact integer values: the same index as the scalar
        path's corrected logarithm, in a handful of vectorized operations. The index is an int64
        tensor (whole numbers in float64 for ``multiplier = 1``).
        """
        if multiplier == 1:
            index = (t / first_cycle_steps).floor_()
            return index, index * first_cycle_steps, first_cycle_steps
        starts = [0]
        while starts[-1] <= 2**53:
            starts.append(starts[-1] * multiplier + first_cycle_steps)
        lengths = [first_cycle_steps * multiplier**cycle for cycle in range(len(starts))]
        index = _bucketize(t, starts[1:], right=True)
        return index, _table(starts).index_select(0, index), _table(lengths).index_select(0, index)

    @staticmethod
    def cycles(t: torch.Tensor, first_cycle_steps: int, multiplier: int, cycle: Cycle) -> torch.Tensor:
        """As :meth:`ScalarOps.cycles`. On ascending steps that span at most
        :data:`SLICED_CYCLES` cycles, ``cycle`` runs once per cycle on its slice of the steps with
        the cycle's index, start and length as Python numbers; otherwise once on all the steps with
        the tensors of :meth:`geometric_cycle`."""
        if t.numel() and _ascending(t):
            if multiplier == 1:
                first = math.floor(float(t[0]) / first_cycle_steps)
                indices = range(first, math.floor(float(t[-1]) / first_cycle_steps) + 1)
            else:
                indices = range(_geometric_cycle_count(first_cycle_steps, multiplier))
            if len(indices) <= SLICED_CYCLES:
                starts = [_cycle_start(index, first_cycle_steps, multiplier) for index in indices]
                pieces = [
                    functools.partial(
                        _cycle_piece, cycle, index, start, first_cycle_steps * multiplier**index
                    )
                    for index, start in zip(indices, starts, strict=True)
                ]
                return _slices(t, _ascending_piece_ends(t, starts[1:], right=True), pieces)
        index, start, length = TensorOps.geometric_cycle(t, first_cycle_steps, multiplier)
        return cycle(t, index, start, length)

    @staticmethod
    def interpolate(boundaries: Sequence[int], values: Sequence[float], t: torch.Tensor) -> torch.Tensor:
        """As :meth:`ScalarOps.interpolate`, vectorized (same tables, same operations)."""
        ends = _piece_ends(t, boundaries, right=True)
        if ends is not None:
            value = torch.empty_like(t, dtype=torch.float64)
            for (begin, end), anchor, level, slope in zip(
                itertools.pairwise(ends), *interpolation_tables(boundaries, values), strict=True
            ):
                if begin < end:
                    torch.sub(t[begin:end], anchor, out=value[begin:end]).mul_(slope).add_(level)
            return value
        anchors, levels, slopes = (_table(table) for table in interpolation_tables(boundaries, values))
        index = torch.bucketize(t, _table(boundaries), right=True)
        value = t - anchors.index_select(0, index)
        value *= slopes.index_select(0, index)
        value += levels.index_select(0, index)
        return value

    @staticmethod
    def join(
        t: torch.Tensor, starts: Sequence[int], pieces: Sequence[Callable[[Number], Number]]
    ) -> torch.Tensor:
        """As :meth:`ScalarOps.join`: each piece is evaluated only on the steps of its phase (on
        ascending steps, a slice; otherwise the steps gathered by index)."""
        shifted = [
            piece if start == 0 else functools.partial(_shifted, piece, start)
            for start, piece in zip(starts, pieces, strict=True)
        ]
        return TensorOps.piecewise(t, starts[1:], shifted, right=True)

    @staticmethod
    def piecewise(
        t: torch.Tensor,
        sorted_values: Sequence[float],
        pieces: Sequence[Callable[[Number], Number]],
        *,
        right: bool,
    ) -> torch.Tensor:
        """As :meth:`ScalarOps.piecewise`: each piece is evaluated only on its own steps (on
        ascending steps, a slice of ``t``; otherwise the steps gathered by index), never on all."""
        ends = _piece_ends(t, sorted_values, right)
        if ends is not None:
            return _slices(t, ends, pieces)
        result = torch.empty_like(t, dtype=torch.float64)
        index = torch.bucketize(t, torch.tensor(list(sorted_values), dtype=t.dtype), right=right)
        for number, piece in enumerate(pieces):
            where = (index == number).nonzero().squeeze(1)
            if where.numel():
                values = torch.as_tensor(piece(t.index_select(0, where)), dtype=torch.float64)
                result.index_copy_(0, where, values.expand(where.shape))
        return result


def _cycle_start(index: int, first_cycle_steps: int, multiplier: int) -> int:
    """The first step of cycle ``index`` (:meth:`ScalarOps.geometric_cycle`), exact."""
    if multiplier == 1:
        return index * first_cycle_steps
    return first_cycle_steps * (multiplier**index - 1) // (multiplier - 1)


def _geometric_cycle_count(first_cycle_steps: int, multiplier: int) -> int:
    """How many cycles start at or below 2**53 (then one more), as in :meth:`TensorOps.geometric_cycle`."""
    count = 1
    while _cycle_start(count - 1, first_cycle_steps, multiplier) <= 2**53:
        count += 1
    return count


def _cycle_piece(cycle: Cycle, index: int, start: int, length: int, t: torch.Tensor) -> torch.Tensor:
    return cycle(t, index, start, length)


def _shifted(piece: Callable[[Number], Number], start: int, t: Number) -> Number:
    return piece(t - start)


Ops = ScalarOps | TensorOps


def interpolation_tables(
    boundaries: Sequence[int], values: Sequence[float]
) -> tuple[list[float], list[float], list[float]]:
    """Per piece ``k = bisect_right(boundaries, t)`` (``0..n``): the anchor step, the value there and
    the slope, so that the interpolation is ``level[k] + (t - anchor[k]) * slope[k]``; the pieces
    before the first and after the last point are flat, so the end values hold exactly."""
    count = len(boundaries)
    slopes = [(values[i + 1] - values[i]) / (boundaries[i + 1] - boundaries[i]) for i in range(count - 1)]
    anchors = [float(boundaries[0]), *map(float, boundaries)]
    levels = [values[0], *values]
    return anchors, levels, [0.0, *slopes, 0.0]


def half_cosine(ops: Ops, progress: Number) -> Number:
    """``(1 + cos(pi * progress)) / 2`` for ``progress`` in [0, 1], computed as
    ``sin(pi / 2 * (1 - progress)) ** 2``: the same value, but without the cancellation of
    ``1 + cos`` near ``progress = 1``, so both backends agree to a few ulps relative even where the
    value is tiny; exactly 1 at 0 and exactly 0 at 1. On tensors ``progress`` is overwritten.
    """
    wave = ops.rsub_(1.0, progress)
    wave *= ops.pi / 2
    wave = ops.sin_(wave)
    wave *= wave
    return wave


SCALAR = ScalarOps()
TENSOR = TensorOps()
