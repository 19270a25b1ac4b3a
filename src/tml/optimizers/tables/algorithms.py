"""The table algorithms: the optimizers FBGEMM's fused table-batched kernels run, keyed by FBGEMM's names.

An embedding table's optimizer runs inside the backward pass, in the kernel that looks the table up
(``SplitTableBatchedEmbeddingBagsCodegen``): it updates only the rows a batch touched, and keeps its
state (moments, accumulators) next to the rows. One config class per kernel optimizer, each with the
hyperparameters that kernel reads, FBGEMM's defaults, and the ranges checked when a config is loaded.
Nothing here imports torchrec or FBGEMM: :meth:`TableAlgorithmConfig.fused_params` does, when the
model is prepared.

========================  =================================  ================  =======================
key                       update                             state per row     weight decay
========================  =================================  ================  =======================
``exact_sgd``             ``w -= lr * g``                    none              none
``exact_adagrad``         Adagrad, one accumulator per entry ``dim`` floats    none
``exact_row_wise_adagrad`` Adagrad, one accumulator per row  1 float           ``l2`` or ``decouple``
``adam``                  Adam (bias-corrected)              ``2 * dim`` floats decoupled
``partial_row_wise_adam`` Adam, second moment per row        ``dim + 1`` floats decoupled
``lamb``                  LAMB (Adam with a trust ratio)     ``2 * dim`` floats decoupled
========================  =================================  ================  =======================

"Exact" kernels sum the gradients of a row that a batch looks up several times before applying
them (deterministic); FBGEMM's non-exact ``sgd`` / ``row_wise_adagrad`` are deprecated and absent.
FBGEMM's CPU build runs ``exact_sgd``, ``exact_adagrad`` and ``exact_row_wise_adagrad``; ``adam``,
``partial_row_wise_adam`` and ``lamb`` need a GPU.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pydantic

from tml.core.config import raise_at
from tml.core.config.base_config import StrictConfig
from tml.optimizers.algorithms import (
    AdagradConfig,
    AdamWConfig,
    CustomOptimizerConfig,
    OptimizerAlgorithmConfig,
    SgdConfig,
)
from tml.optimizers.fields import LearningRateValue, NonNegativeFloat, PositiveFloat, UnitIntervalOpen

WeightDecayMode = Literal["none", "l2", "decouple"]
"""FBGEMM's weight-decay modes that need no further definition (``counter``, ``cowclip`` and
``decouple_global`` need FBGEMM objects of their own, and are not offered)."""


class TableAlgorithmConfig(StrictConfig):
    """Base of the table algorithm configs: one FBGEMM kernel optimizer and its hyperparameters.

    Every field but ``lr`` is a keyword argument of FBGEMM's kernel, with FBGEMM's name and default.
    """

    key: ClassVar[str] = ""
    """The config key, which is FBGEMM's name of the optimizer (``EmbOptimType(key)``)."""
    runs_on_cpu: ClassVar[bool] = False
    """Whether FBGEMM's CPU kernels run it."""
    state_floats: ClassVar[tuple[int, int]] = (0, 0)
    """``(a, b)``: the kernel keeps ``a * dim + b`` float32 values of optimizer state per row."""

    lr: LearningRateValue | None = pydantic.Field(
        None,
        description="The learning rate (a number). May be left out when the rule sets learning_rate; "
        "when both are given it must equal the schedule's greatest value.",
    )

    def hyperparameters(self) -> dict[str, Any]:
        """The kernel's hyperparameters (every field but ``lr``), as JSON data."""
        return self.model_dump(mode="json", exclude={"lr"})

    def fused_params(self, learning_rate: float) -> dict[str, Any]:
        """The keyword arguments of FBGEMM's kernel for this algorithm, with ``learning_rate``.

        Every hyperparameter the kernel reads for this optimizer is given, so a sharder's
        ``fused_params`` cannot put another value in silently. Imports FBGEMM.
        """
        from fbgemm_gpu.split_embedding_configs import EmbOptimType

        return {"optimizer": EmbOptimType(self.key), "learning_rate": learning_rate, **self._kernel_kwargs()}

    def _kernel_kwargs(self) -> dict[str, Any]:
        return {}

    def kernel_differences(self, optimizer_args: Any) -> list[str]:
        """How a built kernel's ``optimizer_args`` differ from this config (``[]`` when they agree)."""
        found = []
        for name, wanted in self._kernel_kwargs().items():
            have = getattr(optimizer_args, name, None)
            if name == "weight_decay_mode":
                wanted = int(wanted)
            if have is None or not _same(have, wanted):
                found.append(f"{name} {have!r} in the kernel, {wanted!r} in the rule")
        return found

    def dense_algorithm(self) -> OptimizerAlgorithmConfig | None:
        """The dense algorithm (a python optimizer) that makes this kernel's update on a table that has
        no fused kernel (one the planner shards data-parallel); ``None`` when there is none. Its
        ``lr`` is this config's."""
        return None


def _same(have: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        return abs(float(have) - wanted) <= 1e-6 * max(abs(wanted), 1e-30) or float(have) == wanted
    return bool(have == wanted)


class ExactSgdConfig(TableAlgorithmConfig):
    """SGD in the fused kernel: ``w -= lr * g`` on every row the batch touched (no state)."""

    key = "exact_sgd"
    runs_on_cpu = True
    state_floats = (0, 0)

    def dense_algorithm(self) -> OptimizerAlgorithmConfig:
        return SgdConfig(lr=self.lr)


class ExactAdagradConfig(TableAlgorithmConfig):
    """Adagrad in the fused kernel, one accumulator per entry: ``s += g²; w -= lr * g / (√s + eps)``."""

    key = "exact_adagrad"
    runs_on_cpu = True
    state_floats = (1, 0)

    eps: PositiveFloat = pydantic.Field(
        1.0e-8, description="Added to the root of the accumulator; > 0 (FBGEMM's default, 1e-8)."
    )

    def _kernel_kwargs(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def dense_algorithm(self) -> OptimizerAlgorithmConfig:
        return AdagradConfig(lr=self.lr, eps=self.eps)


class ExactRowWiseAdagradConfig(TableAlgorithmConfig):
    """Row-wise Adagrad in the fused kernel: one accumulator per row, ``s += mean(g²)``,
    ``w -= lr * g / (√s + eps)``; weight decay ``l2`` (added to the gradient) or ``decouple``."""

    key = "exact_row_wise_adagrad"
    runs_on_cpu = True
    state_floats = (0, 1)

    eps: PositiveFloat = pydantic.Field(
        1.0e-8, description="Added to the root of the accumulator; > 0 (FBGEMM's default, 1e-8)."
    )
    weight_decay: NonNegativeFloat = pydantic.Field(
        0.0, description="Weight decay; >= 0. Needs weight_decay_mode l2 or decouple when > 0."
    )
    weight_decay_mode: WeightDecayMode = pydantic.Field(
        "none",
        description="FBGEMM's weight-decay mode: none, l2 (weight_decay * w added to the gradient) or "
        "decouple (the row shrinks by lr * weight_decay * w, apart from the gradient).",
    )

    @pydantic.model_validator(mode="after")
    def _decay_has_a_mode(self) -> ExactRowWiseAdagradConfig:
        if self.weight_decay > 0 and self.weight_decay_mode == "none":
            raise_at(
                type(self).__name__,
                ("weight_decay_mode",),
                f"weight_decay {self.weight_decay!r} would not be applied: FBGEMM applies no weight decay "
                "with weight_decay_mode none; set weight_decay_mode: l2 or decouple, or weight_decay: 0",
                self.weight_decay_mode,
            )
        return self

    def _kernel_kwargs(self) -> dict[str, Any]:
        from fbgemm_gpu.split_table_batched_embeddings_ops_training import WeightDecayMode as Mode

        return {
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "weight_decay_mode": Mode[self.weight_decay_mode.upper()],
        }

    def dense_algorithm(self) -> OptimizerAlgorithmConfig | None:
        if self.weight_decay_mode == "decouple":
            return None  # torchrec's RowWiseAdagrad adds the decay to the gradient only
        return CustomOptimizerConfig(
            class_path="torchrec.optim:RowWiseAdagrad",
            lr=self.lr,
            kwargs={"eps": self.eps, "weight_decay": self.weight_decay},
        )


class _AdamFamilyConfig(TableAlgorithmConfig):
    beta1: UnitIntervalOpen = pydantic.Field(0.9, description="The first moment's decay, in [0, 1).")
    beta2: UnitIntervalOpen = pydantic.Field(0.999, description="The second moment's decay, in [0, 1).")
    eps: PositiveFloat = pydantic.Field(1.0e-8, description="Added to the denominator; > 0.")
    weight_decay: NonNegativeFloat = pydantic.Field(
        0.0, description="Decoupled weight decay (FBGEMM's only mode for this kernel); >= 0."
    )

    def _kernel_kwargs(self) -> dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay}


class AdamTableConfig(_AdamFamilyConfig):
    """Adam in the fused kernel (bias-corrected, decoupled weight decay); two moments per entry. GPU only."""

    key = "adam"
    state_floats = (2, 0)

    def dense_algorithm(self) -> OptimizerAlgorithmConfig:
        return AdamWConfig(
            lr=self.lr, betas=(self.beta1, self.beta2), eps=self.eps, weight_decay=self.weight_decay
        )


class PartialRowWiseAdamConfig(_AdamFamilyConfig):
    """Adam whose second moment is kept per row (the first per entry). GPU only."""

    key = "partial_row_wise_adam"
    state_floats = (1, 1)


class LambTableConfig(_AdamFamilyConfig):
    """LAMB: Adam's update scaled per table by the trust ratio ‖w‖ / ‖update‖. GPU only."""

    key = "lamb"
    state_floats = (2, 0)


TABLE_ALGORITHMS: dict[str, type[TableAlgorithmConfig]] = {
    config.key: config
    for config in (
        ExactSgdConfig,
        ExactAdagradConfig,
        ExactRowWiseAdagradConfig,
        AdamTableConfig,
        PartialRowWiseAdamConfig,
        LambTableConfig,
    )
}
"""Every table algorithm key with its config class, in the order of the rule's fields."""


__all__ = [
    "TABLE_ALGORITHMS",
    "AdamTableConfig",
    "ExactAdagradConfig",
    "ExactRowWiseAdagradConfig",
    "ExactSgdConfig",
    "LambTableConfig",
    "PartialRowWiseAdamConfig",
    "TableAlgorithmConfig",
    "WeightDecayMode",
]
