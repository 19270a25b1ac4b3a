"""The algorithm keys (``adam``, ``sgd``…), declared once as the fields of :class:`AlgorithmChoice`.

``OptimizerConfig`` sets exactly one of them (its default algorithm); a ``ParamGroupConfig`` may set
one (its own algorithm) or none. :data:`ALGORITHMS` is read off these fields.
"""

from __future__ import annotations

from typing import Any

import pydantic

from tml.core.config.base_config import StrictConfig
from tml.core.config.types import models_in
from tml.optimizers.algorithms.adam import (
    AdamaxConfig,
    AdamConfig,
    AdamWConfig,
    NAdamConfig,
    RAdamConfig,
    SparseAdamConfig,
)
from tml.optimizers.algorithms.adaptive import (
    AdadeltaConfig,
    AdafactorConfig,
    AdagradConfig,
    RmspropConfig,
    RpropConfig,
)
from tml.optimizers.algorithms.base import OptimizerAlgorithmConfig
from tml.optimizers.algorithms.custom import CustomOptimizerConfig
from tml.optimizers.algorithms.muon import MuonConfig
from tml.optimizers.algorithms.sgd import AsgdConfig, SgdConfig

ALGORITHM_GROUP = "optimizer"
"""The name of the field group of the algorithm keys."""


def _algorithm_field(config_class: type[OptimizerAlgorithmConfig]) -> Any:
    summary = (config_class.__doc__ or config_class.key).strip().splitlines()[0]
    return pydantic.Field(None, json_schema_extra={"one_of": ALGORITHM_GROUP}, description=summary)


class AlgorithmChoice(StrictConfig):
    """The algorithm keys, of which exactly one is set (a subclass may relax that to at most one
    through ``optional_groups``). ``lbfgs`` is deliberately absent: ``torch.optim.LBFGS.step`` needs a
    closure that re-evaluates the model, which a loop driven by ``optimizer.step()`` does not give."""

    adam: AdamConfig | None = _algorithm_field(AdamConfig)
    adamw: AdamWConfig | None = _algorithm_field(AdamWConfig)
    sgd: SgdConfig | None = _algorithm_field(SgdConfig)
    adagrad: AdagradConfig | None = _algorithm_field(AdagradConfig)
    rmsprop: RmspropConfig | None = _algorithm_field(RmspropConfig)
    adadelta: AdadeltaConfig | None = _algorithm_field(AdadeltaConfig)
    adamax: AdamaxConfig | None = _algorithm_field(AdamaxConfig)
    nadam: NAdamConfig | None = _algorithm_field(NAdamConfig)
    radam: RAdamConfig | None = _algorithm_field(RAdamConfig)
    asgd: AsgdConfig | None = _algorithm_field(AsgdConfig)
    rprop: RpropConfig | None = _algorithm_field(RpropConfig)
    sparse_adam: SparseAdamConfig | None = _algorithm_field(SparseAdamConfig)
    adafactor: AdafactorConfig | None = _algorithm_field(AdafactorConfig)
    muon: MuonConfig | None = _algorithm_field(MuonConfig)
    custom: CustomOptimizerConfig | None = _algorithm_field(CustomOptimizerConfig)

    def chosen_algorithm(self) -> tuple[str, OptimizerAlgorithmConfig] | None:
        """The algorithm key that is set and its config, or ``None`` when none is."""
        for name in ALGORITHMS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None


def _config_class(name: str) -> type[OptimizerAlgorithmConfig]:
    (model,) = models_in(AlgorithmChoice.model_fields[name].annotation)
    if not issubclass(model, OptimizerAlgorithmConfig) or model.key != name:
        raise TypeError(f"AlgorithmChoice.{name} must hold the config class whose key is {name!r}")
    return model


ALGORITHMS: dict[str, type[OptimizerAlgorithmConfig]] = {
    name: _config_class(name) for name in AlgorithmChoice.model_fields
}
"""Every algorithm key of ``OptimizerConfig`` and of a param group, with its config class."""


def list_optimizers() -> list[str]:
    """The algorithm keys a config may use, in the order of the fields.

    Examples:
      >>> list_optimizers()  # doctest: +NORMALIZE_WHITESPACE
      ['adam', 'adamw', 'sgd', 'adagrad', 'rmsprop', 'adadelta', 'adamax', 'nadam', 'radam', 'asgd',
       'rprop', 'sparse_adam', 'adafactor', 'muon', 'custom']
    """
    return list(ALGORITHMS)


__all__ = ["ALGORITHMS", "ALGORITHM_GROUP", "AlgorithmChoice", "list_optimizers"]
