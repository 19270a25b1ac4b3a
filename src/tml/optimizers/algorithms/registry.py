"""The registry of algorithm configs, keyed by their config key (``adam``, ``sgd``…)."""

from __future__ import annotations

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

ALGORITHMS: dict[str, type[OptimizerAlgorithmConfig]] = {
    config_class.key: config_class
    for config_class in (
        AdamConfig,
        AdamWConfig,
        SgdConfig,
        AdagradConfig,
        RmspropConfig,
        AdadeltaConfig,
        AdamaxConfig,
        NAdamConfig,
        RAdamConfig,
        AsgdConfig,
        RpropConfig,
        SparseAdamConfig,
        AdafactorConfig,
        MuonConfig,
        CustomOptimizerConfig,
    )
}
"""Every algorithm key of ``OptimizerConfig`` and of a param group, with its config class.

``lbfgs`` is deliberately absent: ``torch.optim.LBFGS.step`` needs a closure that re-evaluates the
model, which a training loop driven by ``optimizer.step()`` does not give.
"""


def list_optimizers() -> list[str]:
    """The algorithm keys a config may use, in the registry's order.

    Examples:
      >>> list_optimizers()  # doctest: +NORMALIZE_WHITESPACE
      ['adam', 'adamw', 'sgd', 'adagrad', 'rmsprop', 'adadelta', 'adamax', 'nadam', 'radam', 'asgd',
       'rprop', 'sparse_adam', 'adafactor', 'muon', 'custom']
    """
    return list(ALGORITHMS)
