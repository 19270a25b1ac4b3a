"""Configs of the cyclic kinds: cosine_with_restarts (SGDR), one_cycle and cyclic."""

from __future__ import annotations

from typing import Literal

import pydantic

from tml.core.config import BaseConfig
from tml.optimizers.fields import (
    DecayFactor,
    LearningRateValue,
    PositiveFloat,
    PositiveInteger,
    PositiveSteps,
)
from tml.optimizers.schedules.rules import final_at_most_peak
from tml.optimizers.schedules.warmup_config import WarmupFields


class CosineWithRestarts(WarmupFields):
    """SGDR: half cosines from the peak to ``final_learning_rate``, restarting at the peak."""

    learning_rate: LearningRateValue = pydantic.Field(description="The peak of the first cycle.")
    final_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate each cycle decays towards; at most learning_rate."
    )
    first_cycle_steps: PositiveSteps = pydantic.Field(description="Number of steps of the first cycle.")
    cycle_multiplier: PositiveInteger = pydantic.Field(
        1, description="Each cycle is this many times longer than the one before (an integer ≥ 1)."
    )
    cycle_decay: DecayFactor = pydantic.Field(
        1.0,
        description="Each cycle's height above final_learning_rate is this times the one before, in "
        "(0, 1]; with final_learning_rate 0 this multiplies the peak.",
    )

    _final_below_peak = final_at_most_peak()


class OneCycle(BaseConfig):
    """The 1cycle policy, with the same values as torch's ``OneCycleLR``, holding from its last step."""

    max_learning_rate: LearningRateValue = pydantic.Field(description="The peak learning rate.")
    total_steps: PositiveSteps = pydantic.Field(
        description="Number of steps of the cycle; from step total_steps - 1 on the value holds."
    )
    pct_start: float = pydantic.Field(
        0.3,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="Fraction of total_steps spent increasing the learning rate, in (0, 1); the "
        "increase ends at step pct_start * total_steps - 1 (a float, as in torch).",
    )
    anneal_strategy: Literal["cos", "linear"] = pydantic.Field(
        "cos", description="Shape of every phase: a half cosine (cos) or a straight line (linear)."
    )
    div_factor: PositiveFloat = pydantic.Field(
        25.0, description="The initial learning rate is max_learning_rate / div_factor."
    )
    final_div_factor: PositiveFloat = pydantic.Field(
        1e4, description="The final learning rate is the initial learning rate / final_div_factor."
    )
    three_phase: pydantic.StrictBool = pydantic.Field(
        False,
        description="If true, go back down to the initial learning rate symmetrically, then to the "
        "final one (fast.ai's variant); else go from the peak straight to the final one.",
    )

    @pydantic.field_validator("pct_start")
    @classmethod
    def _warmup_has_a_step(cls, pct_start: float, info: pydantic.ValidationInfo) -> float:
        total_steps = info.data.get("total_steps")
        if total_steps is not None and pct_start * total_steps <= 1:
            raise ValueError(
                f"pct_start * total_steps must be greater than 1 (the rise ends at step "
                f"pct_start * total_steps - 1 > 0), got {pct_start} * {total_steps} = "
                f"{pct_start * total_steps}"
            )
        return pct_start

    @pydantic.field_validator("three_phase")
    @classmethod
    def _phases_in_order(cls, three_phase: bool, info: pydantic.ValidationInfo) -> bool:
        total_steps, pct_start = info.data.get("total_steps"), info.data.get("pct_start")
        if (
            three_phase
            and total_steps is not None
            and pct_start is not None
            and 2 * pct_start * total_steps - 2 >= total_steps - 1
        ):
            raise ValueError(
                f"three_phase needs the second phase to end before the last step, i.e. "
                f"2 * pct_start * total_steps - 2 < total_steps - 1; with pct_start {pct_start} "
                f"and total_steps {total_steps} it ends at {2 * pct_start * total_steps - 2}, got "
                f"{three_phase}"
            )
        return three_phase


class Cyclic(BaseConfig):
    """Triangular cycles between two learning rates, with the same values as torch's ``CyclicLR``."""

    base_learning_rate: LearningRateValue = pydantic.Field(
        description="The lowest learning rate, at the start of each cycle."
    )
    max_learning_rate: LearningRateValue = pydantic.Field(
        description="The top of the first cycle; at least base_learning_rate."
    )
    step_size_up: PositiveSteps = pydantic.Field(description="Number of steps of the rise of each cycle.")
    step_size_down: PositiveSteps | None = pydantic.Field(
        None, description="Number of steps of the fall of each cycle; null: as step_size_up."
    )
    mode: Literal["triangular", "triangular2", "exp_range"] = pydantic.Field(
        "triangular",
        description="triangular: every cycle the same; triangular2: each cycle's height halves; "
        "exp_range: the height is multiplied by gamma ** step.",
    )
    gamma: DecayFactor = pydantic.Field(
        1.0, description="The per-step height factor of mode exp_range, in (0, 1]; only for exp_range."
    )

    @pydantic.field_validator("max_learning_rate")
    @classmethod
    def _max_above_base(cls, maximum: float, info: pydantic.ValidationInfo) -> float:
        base = info.data.get("base_learning_rate")
        if base is not None and maximum < base:
            raise ValueError(f"max_learning_rate must be at least base_learning_rate ({base}), got {maximum}")
        return maximum

    @pydantic.field_validator("gamma")
    @classmethod
    def _gamma_needs_exp_range(cls, gamma: float, info: pydantic.ValidationInfo) -> float:
        mode = info.data.get("mode")
        if gamma != 1.0 and mode is not None and mode != "exp_range":
            raise ValueError(f"gamma applies only to mode exp_range (mode is {mode}), got {gamma}")
        return gamma
