"""Field types shared by the schedule and optimizer configs: each carries its own validation rule."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import pydantic


def _plain_number(value: Any) -> Any:
    # pydantic's lax mode reads True as 1: a boolean where a number belongs is always a mistake.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    if isinstance(value, str):
        # pydantic reads the text 'nan' or '-inf' as the float, then reports a bound it breaks.
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
    return value


NO_BOOL = pydantic.BeforeValidator(_plain_number)
"""Refuses a boolean (pydantic would read True as 1) or a non-finite number (``nan``, ``'inf'``) where
a number belongs.

Use as ``Annotated[float, NO_BOOL, pydantic.Field(...)]``."""

LearningRateValue = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, allow_inf_nan=False)]
"""A learning rate: finite and non-negative (0 is allowed)."""

FiniteFloat = Annotated[float, NO_BOOL, pydantic.Field(allow_inf_nan=False)]
"""Any finite number."""

NonNegativeFloat = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, allow_inf_nan=False)]
"""A finite number ≥ 0."""

PositiveFloat = Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, allow_inf_nan=False)]
"""A finite number > 0."""

UnitIntervalOpen = Annotated[float, NO_BOOL, pydantic.Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
"""A number in [0, 1), such as an Adam beta."""

MAX_STEPS = 10**15
"""The largest number of steps (or step index) a config may give: ~10⁵ times the longest training
run, and small enough that sums of a few of them stay below 2⁵³, where float64 still holds every
integer (the schedules compute in float64)."""

MAX_SCHEDULE_STEP = 2**53
"""No phase of a schedule may end after this step, and the vectorized ``compute_lr`` refuses steps
from it on: float64, which the schedules compute in, holds every integer only below it."""

MAX_MULTIPLIER = 1000
"""The largest integer multiplier (``cycle_multiplier``): cycles longer than 1000 times the last one
would pass ``MAX_STEPS`` within a few cycles anyway."""

PositiveSteps = Annotated[int, NO_BOOL, pydantic.Field(gt=0, le=MAX_STEPS)]
"""A number of optimizer steps in [1, 10¹⁵] (:data:`MAX_STEPS`)."""

NonNegativeSteps = Annotated[int, NO_BOOL, pydantic.Field(ge=0, le=MAX_STEPS)]
"""A step index or a number of optimizer steps in [0, 10¹⁵] (:data:`MAX_STEPS`)."""

RELATIVE_LENGTH = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>%|ep)")
"""A length relative to the run, as written in a config: ``"2%"`` (of ``total_steps``) or ``"3ep"``
(epochs of ``steps_per_epoch``); the number is a plain decimal (no sign, no exponent)."""

RELATIVE_FORMS = "'<p>%' of total_steps (e.g. '2%') or '<e>ep' epochs of steps_per_epoch (e.g. '3ep')"


class RunLengthMarker:
    """Marks a step field that also takes a length relative to the run (see :data:`RELATIVE_LENGTH`)."""

    def __repr__(self) -> str:
        return "RUN_LENGTH"


RUN_LENGTH = RunLengthMarker()


def is_relative(value: Any) -> bool:
    """Whether a config value is a length relative to the run (``"2%"``, ``"3ep"``)."""
    return isinstance(value, str) and RELATIVE_LENGTH.fullmatch(value) is not None


def _relative_or_steps(value: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
    # A relative length is kept as written (resolved to steps once the run is known); anything else
    # is validated as a number of steps, with the messages of an integer field.
    if isinstance(value, str):
        text = value.strip()
        if RELATIVE_LENGTH.fullmatch(text):
            return text
        if text.endswith(("%", "ep")) or "dur" in text:
            raise ValueError(f"expected a number of steps, {RELATIVE_FORMS}, got {value!r}")
    if isinstance(value, float) and not value.is_integer() and 0 < value < 1:
        raise ValueError(
            f"expected a whole number of steps (a valid integer), got {value}; a fraction of the run "
            f"is written as a percentage of total_steps: '{value * 100:g}%'"
        )
    return handler(value)


def _as_written(value: int | str) -> int | str:
    return value


def _run_length_schema(minimum: int) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "integer", "minimum": minimum, "maximum": MAX_STEPS},
            {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(%|ep)$"},
        ]
    }


PositiveLength = Annotated[
    int,
    NO_BOOL,
    pydantic.Field(gt=0, le=MAX_STEPS),
    pydantic.WrapValidator(_relative_or_steps),
    pydantic.PlainSerializer(_as_written),
    pydantic.WithJsonSchema(_run_length_schema(1)),
    RUN_LENGTH,
]
"""A number of steps in [1, 10¹⁵], or a length relative to the run (``"2%"``, ``"3ep"``).

Typed ``int``: a relative length is kept as written (a ``str``) until the run is known, and every
function that computes with a schedule refuses one whose relative lengths are not resolved yet
(:func:`tml.optimizers.schedules.resolve_schedule` turns them into steps, once, at build)."""

NonNegativeLength = Annotated[
    int,
    NO_BOOL,
    pydantic.Field(ge=0, le=MAX_STEPS),
    pydantic.WrapValidator(_relative_or_steps),
    pydantic.PlainSerializer(_as_written),
    pydantic.WithJsonSchema(_run_length_schema(0)),
    RUN_LENGTH,
]
"""A step index or number of steps in [0, 10¹⁵], or a length relative to the run (``"50%"``)."""

DecayFactor = Annotated[float, NO_BOOL, pydantic.Field(gt=0.0, le=1.0, allow_inf_nan=False)]
"""A multiplicative decay factor in (0, 1]: 1 keeps the value, 0.5 halves it."""

PositiveInteger = Annotated[int, NO_BOOL, pydantic.Field(ge=1, le=MAX_MULTIPLIER)]
"""An integer in [1, 1000] (:data:`MAX_MULTIPLIER`) that is not a number of steps, such as a
cycle-length multiplier."""

Implementation = Literal["auto", "fused", "foreach", "for_loop"]
"""Which torch kernel steps a param group (the ``implementation`` field of every algorithm)."""

IMPLEMENTATIONS: tuple[Implementation, ...] = ("auto", "fused", "foreach", "for_loop")
"""The values of :data:`Implementation`, in order."""


ConfigPath = tuple[str | int, ...]
"""Where a value stands in a config: keys and list indices."""

WHOLE_RUN: Any = "100%"
"""The relative length of the whole run (a default of a length field: typed as the field's ``int``)."""


def relative_lengths(config: Any, path: ConfigPath = ()) -> list[tuple[ConfigPath, str]]:
    """Every length relative to the run in a config (a pydantic model, nested), with its path.

    The path is the config's as written (a ``sequence``'s phases are indexed directly, as in YAML).

    Examples:
      >>> from tml.optimizers.schedules import LearningRate
      >>> relative_lengths(LearningRate.model_validate(
      ...     {"cosine_decay": {"learning_rate": 0.1, "warmup_steps": "2%", "decay_steps": 1000}}))
      [(('cosine_decay', 'warmup_steps'), '2%')]
    """
    found: list[tuple[ConfigPath, str]] = []
    if isinstance(config, pydantic.BaseModel):
        for name in type(config).model_fields:
            value = getattr(config, name)
            if value is not None:
                found += relative_lengths(value, path if name == "root" else (*path, name))
    elif isinstance(config, list):
        for index, item in enumerate(config):
            found += relative_lengths(item, (*path, index))
    elif isinstance(config, dict):
        for key, item in config.items():
            found += relative_lengths(item, (*path, key))
    elif is_relative(config):
        found.append((path, config))
    return found
