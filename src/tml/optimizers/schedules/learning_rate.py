"""``LearningRate``: a learning-rate schedule, as the YAML key of exactly one kind."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import JsonDict

from tml.core.config.base_config import StrictConfig
from tml.optimizers.fields import LearningRateValue
from tml.optimizers.schedules.anneal import Anneal
from tml.optimizers.schedules.cyclic import CosineWithRestarts, Cyclic, OneCycle
from tml.optimizers.schedules.decay import (
    CosineDecay,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultistepDecay,
    PiecewiseLinear,
    PolynomialDecay,
    WarmupStableDecay,
)
from tml.optimizers.schedules.seed import LinearRampToConstant, LinearRampToCosine, PiecewiseConstant
from tml.optimizers.schedules.sequence import ScheduleSequence, SequencePhase

_ONE_OF_LR: JsonDict = {"one_of": "lr"}


class LearningRate(StrictConfig):
    """A learning-rate schedule: exactly one of the keys below is set.

    Examples:
      >>> LearningRate(constant=0.01).chosen()
      ('constant', 0.01)
    """

    constant: LearningRateValue | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description="The same learning rate at every step."
    )
    linear_ramp_to_cosine: LinearRampToCosine | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=LinearRampToCosine.__doc__
    )
    linear_ramp_to_constant: LinearRampToConstant | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=LinearRampToConstant.__doc__
    )
    piecewise_constant: PiecewiseConstant | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PiecewiseConstant.__doc__
    )

    linear: Linear | None = pydantic.Field(None, json_schema_extra=_ONE_OF_LR, description=Linear.__doc__)
    piecewise_linear: PiecewiseLinear | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PiecewiseLinear.__doc__
    )
    cosine_decay: CosineDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=CosineDecay.__doc__
    )
    polynomial_decay: PolynomialDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=PolynomialDecay.__doc__
    )
    exponential_decay: ExponentialDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=ExponentialDecay.__doc__
    )
    multistep_decay: MultistepDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=MultistepDecay.__doc__
    )
    inverse_sqrt: InverseSqrt | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=InverseSqrt.__doc__
    )
    cosine_with_restarts: CosineWithRestarts | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=CosineWithRestarts.__doc__
    )
    warmup_stable_decay: WarmupStableDecay | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=WarmupStableDecay.__doc__
    )
    one_cycle: OneCycle | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=OneCycle.__doc__
    )
    cyclic: Cyclic | None = pydantic.Field(None, json_schema_extra=_ONE_OF_LR, description=Cyclic.__doc__)
    sequence: ScheduleSequence | None = pydantic.Field(
        None, json_schema_extra=_ONE_OF_LR, description=ScheduleSequence.__doc__
    )
    anneal: Anneal | None = pydantic.Field(None, json_schema_extra=_ONE_OF_LR, description=Anneal.__doc__)

    def kind(self) -> Any:
        """The config of the chosen kind (a float for ``constant``)."""
        return self.chosen("lr")[1]


# A sequence's phases and an anneal hold a LearningRate: the recursion is closed here, where all are
# defined.
SequencePhase.model_rebuild(_types_namespace={"LearningRate": LearningRate})
Anneal.model_rebuild(_types_namespace={"LearningRate": LearningRate})
ScheduleSequence.model_rebuild()
LearningRate.model_rebuild()
