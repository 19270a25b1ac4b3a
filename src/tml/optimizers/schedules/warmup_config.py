"""The warmup fields shared by the decay kinds: a linear ramp before the schedule starts."""

from __future__ import annotations

import pydantic

from tml.core.config import BaseConfig
from tml.optimizers.fields import LearningRateValue, NonNegativeSteps


class WarmupFields(BaseConfig):
    """``warmup_steps`` and ``warmup_start_learning_rate``, inherited by every kind that warms up."""

    warmup_steps: NonNegativeSteps = pydantic.Field(
        0,
        description="Number of steps of a linear ramp from warmup_start_learning_rate up to the "
        "schedule's value at its own step 0; the schedule then sees step - warmup_steps. 0: no warmup.",
    )
    warmup_start_learning_rate: LearningRateValue = pydantic.Field(
        0.0, description="The learning rate at step 0 when warmup_steps > 0; only valid with a warmup."
    )

    @pydantic.field_validator("warmup_start_learning_rate")
    @classmethod
    def _start_needs_warmup(cls, start: float, info: pydantic.ValidationInfo) -> float:
        if start != 0.0 and info.data.get("warmup_steps") == 0:
            raise ValueError(
                f"warmup_start_learning_rate applies only when warmup_steps > 0 (warmup_steps is 0), "
                f"got {start}"
            )
        return start
