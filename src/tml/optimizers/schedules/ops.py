"""The two arithmetic backends a schedule's closure is written against.

A schedule kind is a constructor ``make(config, ops)`` that does the config work once and returns
a closure of the step, written with Python's operators and the few functions of ``ops``: with
:data:`SCALAR`, the step is an ``int`` and the value a ``float`` (``LRShim.step()``, every training
step); with :data:`TENSOR`, the step is a float64 tensor of steps and the value a float64 tensor
(vectorized ``compute_lr``), computed without a Python loop over the steps. Both run the same
operations in the same order, so they agree to the last few ulps.

The backends differ in how a piecewise formula picks its piece: on a Python number, only the
step's piece runs (an ``if`` or a bisection); on a tensor, each piece runs on its own steps (a
slice when the steps ascend, the usual ``torch.arange``; the steps gathered by index otherwise).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

Number = Any
"""An ``int``/``float`` on the scalar backend, a float64 tensor on the tensor backend."""
Closure = Callable[[Number], Number]
"""A schedule as a function of the step, built by a kind's ``make(config, ops)``."""
Piece = Closure | float
"""One piece of a piecewise formula: a closure of the step, or a constant learning rate."""

HALF_PI = math.pi / 2
MAX_EXACT_STEP = 2**53
"""Steps up to here are exact in float64, the tensor backend's step type."""


def half_cosine(sin: Callable[[Number], Number], progress: Number) -> Number:
    """``(1 + cos(pi * progress)) / 2`` for ``progress`` in [0, 1], computed as
    ``sin(pi / 2 * (1 - progress)) ** 2``: the same value, without the cancellation of ``1 + cos``
    near ``progress = 1``, so both backends agree to a few ulps relative even where the value is
    tiny; exactly 1 at 0 and exactly 0 at 1. ``sin`` is the backend's (``ops.sin``)."""
    wave = sin((1.0 - progress) * HALF_PI)
    return wave * wave


def cosine_anneal(
    start: float, span: float, begin: float, end: float, ops: Ops, *, before: Piece | None = None
) -> Closure:
    """A half cosine from ``begin`` at step ``start`` to ``end`` at ``start + span``, then ``end``;
    before ``start``, the piece ``before`` (if given; else the cosine is never asked there).

    The value is ``end + (begin - end) * half_cosine((t - start) / span)``, with the operations of
    :func:`half_cosine` written out: it is what ``LRShim.step()`` runs at most steps of the common
    schedules, so it is one closure that holds its constants as default arguments (fast locals)
    and, on the scalar backend, checks its own range first, so a step costs one call, as a
    hand-written closure would. On the tensor backend the same closure runs unguarded, each of the
    three pieces on its own steps (:meth:`TensorOps.piecewise`).
    """
    stop, scalar = start + span, isinstance(ops, ScalarOps)
    first = _as_closures([before])[0] if before is not None else _constant(begin)

    def anneal(
        t: Number,
        sin: Callable[[Number], Number] = ops.sin,
        start: float = start,
        span: float = span,
        height: float = begin - end,
        end: float = end,
        half_pi: float = HALF_PI,
        guarded: bool = scalar,
        stop: float = stop,
        lower: float = start if before is not None else -math.inf,
        before: Closure = first,
    ) -> Number:
        if guarded:
            if t >= stop:
                return end
            if t < lower:
                return before(t)
        wave = sin((1.0 - (t - start) / span) * half_pi)
        return wave * wave * height + end

    if scalar:
        return anneal
    if before is None:
        return ops.piecewise([stop], [anneal, end])
    return ops.piecewise([start, stop], [before, anneal, end])


def cycle_start(index: int, first_cycle_steps: int, multiplier: int) -> int:
    """The first step of cycle ``index`` when cycle ``i`` lasts ``first_cycle_steps * multiplier ** i``
    steps: ``first_cycle_steps * (multiplier ** index - 1) / (multiplier - 1)``, exact."""
    if multiplier == 1:
        return index * first_cycle_steps
    return first_cycle_steps * (multiplier**index - 1) // (multiplier - 1)


def _constant(value: float) -> Closure:
    def constant(_: Number, value: float = value) -> float:
        return value

    return constant


def _as_closures(pieces: Sequence[Piece]) -> list[Closure]:
    return [piece if callable(piece) else _constant(float(piece)) for piece in pieces]


def _constants(pieces: Sequence[Piece]) -> list[float] | None:
    """The pieces as floats if none is a closure, else ``None``."""
    values = [piece for piece in pieces if not callable(piece)]
    return [float(value) for value in values] if len(values) == len(pieces) else None


class ScalarOps:
    """Python numbers: the backend of ``compile_schedule`` and ``LRShim.step()``."""

    sin = staticmethod(math.sin)
    sqrt = staticmethod(math.sqrt)
    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def power(base: float, exponent: Number) -> Number:
        """``base ** exponent``."""
        return base**exponent

    @staticmethod
    def floor_divide(numerator: Number, denominator: int) -> Number:
        """``numerator // denominator``: exact integer arithmetic for an ``int`` step."""
        return numerator // denominator

    @staticmethod
    def geometric_cycle(t: int, first_cycle_steps: int, multiplier: int) -> tuple[int, int, int]:
        """``(index, start, length)`` of the cycle that holds step ``t`` (see :func:`cycle_start`),
        exact for an ``int`` step: the index is estimated with a logarithm, then corrected by ±1
        with exact integer arithmetic."""
        if multiplier == 1:
            index = t // first_cycle_steps
            return index, index * first_cycle_steps, first_cycle_steps
        estimate = math.log(t * (multiplier - 1) / first_cycle_steps + 1) / math.log(multiplier)
        index = max(math.floor(estimate), 0)
        while index > 0 and cycle_start(index, first_cycle_steps, multiplier) > t:
            index -= 1
        while cycle_start(index + 1, first_cycle_steps, multiplier) <= t:
            index += 1
        return index, cycle_start(index, first_cycle_steps, multiplier), first_cycle_steps * multiplier**index

    @staticmethod
    def piecewise(boundaries: Sequence[float], pieces: Sequence[Piece], *, right: bool = True) -> Closure:
        """The closure ``t -> pieces[k](t)`` for ``k = bisect_right(boundaries, t)`` (``bisect_left``
        if not ``right``): one piece more than ``boundaries``; only the step's piece runs."""
        bounds = list(boundaries)
        if not bounds:
            return _as_closures(pieces)[0]
        find = bisect.bisect_right if right else bisect.bisect_left
        values = _constants(pieces)
        if values is not None:

            def look_up(t: Number) -> float:
                return values[find(bounds, t)]

            return look_up
        calls = _as_closures(pieces)
        # The closures below bind their constants as default arguments (fast locals): they run at
        # every training step.
        if len(bounds) == 1 and right:

            def one_boundary(
                t: Number, boundary: float = bounds[0], low: Closure = calls[0], high: Closure = calls[1]
            ) -> Number:
                return low(t) if t < boundary else high(t)

            return one_boundary
        if len(bounds) == 2 and right:

            def two_boundaries(
                t: Number,
                first: float = bounds[0],
                second: float = bounds[1],
                low: Closure = calls[0],
                middle: Closure = calls[1],
                high: Closure = calls[2],
            ) -> Number:
                if t < first:
                    return low(t)
                if t < second:
                    return middle(t)
                return high(t)

            return two_boundaries

        def bisected(t: Number) -> Number:
            return calls[find(bounds, t)](t)

        return bisected

    @staticmethod
    def join(starts: Sequence[int], pieces: Sequence[Piece]) -> Closure:
        """Schedules one after the other (optax ``join_schedules``): ``pieces[k](t - starts[k])`` for
        the last ``k`` with ``starts[k] <= t``; ``starts[0]`` is 0."""
        calls = _as_closures(pieces)
        if len(calls) == 1:
            return calls[0]
        if len(calls) == 2:

            def two_phases(
                t: Number, boundary: int = starts[1], low: Closure = calls[0], high: Closure = calls[1]
            ) -> Number:
                return low(t) if t < boundary else high(t - boundary)

            return two_phases
        bounds, offsets, find = list(starts[1:]), list(starts), bisect.bisect_right

        def phases(t: Number) -> Number:
            index = find(bounds, t)
            return calls[index](t - offsets[index])

        return phases


def _table(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64)


def _on_pieces(
    t: torch.Tensor,
    boundaries: Sequence[float],
    pieces: Sequence[Piece],
    offsets: Sequence[float],
    right: bool,
) -> torch.Tensor:
    """``pieces[k](t - offsets[k])`` on the steps of piece ``k`` (as :meth:`ScalarOps.piecewise`),
    each piece evaluated only on its own steps: a slice of ``t`` when ``t`` ascends, else the steps
    gathered by index."""
    result = torch.empty_like(t, dtype=torch.float64)
    bounds = _table(boundaries)
    if t.numel() < 2 or not bool(torch.lt(t[1:], t[:-1]).any()):
        # bisect_right(bounds, x) >= k <=> x >= bounds[k - 1]: the first such x is searchsorted's
        # left side; for bisect_left (x > bounds[k - 1]) its right side.
        ends = [0, *torch.searchsorted(t, bounds, right=not right).tolist(), t.numel()]
        for (begin, end), piece, offset in zip(itertools.pairwise(ends), pieces, offsets, strict=True):
            if begin < end:
                steps = t[begin:end] - offset if offset else t[begin:end]
                result[begin:end] = piece(steps) if callable(piece) else piece
        return result
    index = torch.bucketize(t, bounds, right=right)
    for number, (piece, offset) in enumerate(zip(pieces, offsets, strict=True)):
        where = (index == number).nonzero().squeeze(1)
        if not where.numel():
            continue
        if not callable(piece):
            result.index_fill_(0, where, piece)
            continue
        steps = t.index_select(0, where)
        values = torch.as_tensor(piece(steps - offset if offset else steps), dtype=torch.float64)
        result.index_copy_(0, where, values.expand(where.shape))
    return result


class TensorOps:
    """float64 tensors of steps: the backend of vectorized ``compute_lr``."""

    sin = staticmethod(torch.sin)
    sqrt = staticmethod(torch.sqrt)

    @staticmethod
    def minimum(a: Number, b: Number) -> Number:
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, max=b)
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, max=a)
        return torch.minimum(a, b)

    @staticmethod
    def maximum(a: torch.Tensor, b: float) -> torch.Tensor:
        return torch.clamp(a, min=b)

    @staticmethod
    def power(base: float, exponent: Number) -> Number:
        """``base ** exponent``, elementwise in float64 (an integer tensor of exponents is converted)."""
        if not isinstance(exponent, torch.Tensor):
            return base**exponent
        return torch.pow(base, exponent.to(torch.float64))

    @staticmethod
    def floor_divide(numerator: torch.Tensor, denominator: int) -> torch.Tensor:
        """``floor(numerator / denominator)``: exact for integer-valued ``numerator`` and
        ``denominator`` whose sum is below 2**53 (a correctly rounded quotient ``k - r/d`` cannot
        round up to ``k`` there), so it equals the scalar path's ``//``."""
        return torch.floor(numerator / denominator)

    @staticmethod
    def geometric_cycle(
        t: torch.Tensor, first_cycle_steps: int, multiplier: int
    ) -> tuple[torch.Tensor, torch.Tensor, Number]:
        """As :meth:`ScalarOps.geometric_cycle`, on float64 steps (exact below 2**53): for
        ``multiplier > 1`` fewer than 54 cycles start below 2**53, so the cycle is a lookup of the
        steps among the exact integer starts."""
        if multiplier == 1:
            index = torch.floor(t / first_cycle_steps)
            return index, index * first_cycle_steps, first_cycle_steps
        count = 1
        while cycle_start(count - 1, first_cycle_steps, multiplier) <= MAX_EXACT_STEP:
            count += 1
        starts = [cycle_start(index, first_cycle_steps, multiplier) for index in range(count)]
        lengths = [first_cycle_steps * multiplier**index for index in range(count)]
        index = torch.bucketize(t, _table(starts[1:]), right=True)
        return index, _table(starts).index_select(0, index), _table(lengths).index_select(0, index)

    @staticmethod
    def piecewise(boundaries: Sequence[float], pieces: Sequence[Piece], *, right: bool = True) -> Closure:
        """As :meth:`ScalarOps.piecewise`: each piece runs only on its own steps."""
        bounds, pieces = list(boundaries), list(pieces)
        if not bounds:
            return _as_closures(pieces)[0]
        constants = _constants(pieces)
        if constants is not None:
            values, table = _table(bounds), _table(constants)

            def look_up(t: torch.Tensor) -> torch.Tensor:
                return table.index_select(0, torch.bucketize(t, values, right=right))

            return look_up
        offsets = [0] * len(pieces)

        def pieces_of(t: torch.Tensor) -> torch.Tensor:
            return _on_pieces(t, bounds, pieces, offsets, right)

        return pieces_of

    @staticmethod
    def join(starts: Sequence[int], pieces: Sequence[Piece]) -> Closure:
        """As :meth:`ScalarOps.join`: each phase runs only on its own steps."""
        starts, pieces = list(starts), list(pieces)
        if len(pieces) == 1:
            return _as_closures(pieces)[0]

        def phases(t: torch.Tensor) -> torch.Tensor:
            return _on_pieces(t, starts[1:], pieces, starts, True)

        return phases


Ops = ScalarOps | TensorOps

SCALAR = ScalarOps()
TENSOR = TensorOps()
