"""Recipes for training frameworks: Lightning's ``configure_optimizers`` (``integrations.lightning``).

Nothing here imports a framework: the helpers return the plain objects the framework expects, so the
package works without Lightning installed. HF transformers and torchrec need no helper (see
``docs/integrations.md``): ``Trainer(optimizers=build_optimizer(model, config))``, and ``LRShim``
over a torchrec ``CombinedOptimizer``.
"""

from tml.optimizers.integrations.lightning import (
    LightningOptimizerConfig,
    LightningSchedulerConfig,
    configure_optimizers,
)

__all__ = ["LightningOptimizerConfig", "LightningSchedulerConfig", "configure_optimizers"]
