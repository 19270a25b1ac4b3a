"""Distributed training: DCP checkpoints, ZeRO-1 optimizer sharding, cross-rank learning-rate checks."""

from tml.optimizers.distributed.checkpoint import (
    MANIFEST_NAME,
    SCHEDULE_KEYS,
    CheckpointError,
    CheckpointInfo,
    checkpoint_path,
    config_differences,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from tml.optimizers.distributed.lr_check import (
    LearningRateMismatchError,
    check_learning_rates_equal,
    gather_learning_rates,
    local_learning_rates,
)
from tml.optimizers.distributed.zero import build_zero_optimizer, single_optimizer_class

__all__ = [
    "MANIFEST_NAME",
    "SCHEDULE_KEYS",
    "CheckpointError",
    "CheckpointInfo",
    "LearningRateMismatchError",
    "build_zero_optimizer",
    "check_learning_rates_equal",
    "checkpoint_path",
    "config_differences",
    "gather_learning_rates",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "local_learning_rates",
    "save_checkpoint",
    "single_optimizer_class",
    "verify_checkpoint",
]
