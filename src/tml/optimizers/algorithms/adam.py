"""The Adam family: ``adam``, ``adamw``, ``adamax``, ``nadam``, ``radam``, ``sparse_adam``."""

from __future__ import annotations

from typing import Any

import pydantic
import torch

from tml.optimizers.algorithms.base import OptimizerAlgorithmConfig
from tml.optimizers.fields import NonNegativeFloat, PositiveFloat, UnitIntervalOpen

Betas = tuple[UnitIntervalOpen, UnitIntervalOpen]

_BETAS = "Decay rates of the running averages of the gradient and of its square, each in [0, 1)."
_EPS = "Added to the denominator for numerical stability; >= 0."
_WEIGHT_DECAY = "Weight decay (L2 penalty); >= 0."
_DECOUPLED = "Decay the weights directly (AdamW-style) rather than through the gradient (L2)."
_MAXIMIZE = "Maximize the objective instead of minimizing it."
_AMSGRAD = "Use the AMSGrad variant (the maximum of past squared-gradient averages)."

_RECAP_ALIASES = {"beta_1": 0, "beta_2": 1}


class AdamConfig(OptimizerAlgorithmConfig):
    """Adam (``torch.optim.Adam``).

    Also reads the recap format: ``beta_1`` / ``beta_2`` (for ``betas``) and ``epsilon`` (for ``eps``).

    Examples:
      >>> AdamConfig(lr=0.001, beta_1=0.95, epsilon=1e-6).optimizer_kwargs()["betas"]
      (0.95, 0.999)
    """

    key = "adam"
    optimizer_class = torch.optim.Adam
    state_tensors = 2  # exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad)
    original_kwargs = ("betas", "eps")

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: NonNegativeFloat = pydantic.Field(
        1e-7, description="Added to the denominator for numerical stability; >= 0 (tml's default: 1e-7)."
    )
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    amsgrad: bool = pydantic.Field(False, description=_AMSGRAD)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)
    decoupled_weight_decay: bool = pydantic.Field(False, description=_DECOUPLED)

    def state_tensor_count(self) -> int:
        """2, or 3 with ``amsgrad`` (``max_exp_avg_sq``)."""
        return 2 + self.amsgrad

    @pydantic.model_validator(mode="before")
    @classmethod
    def _recap_names(cls, data: Any) -> Any:
        """Turn recap's ``beta_1``/``beta_2``/``epsilon`` into ``betas``/``eps`` (not both forms)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        aliases = {name: data.pop(name) for name in ("beta_1", "beta_2", "epsilon") if name in data}
        aliases = {name: value for name, value in aliases.items() if value is not None}
        betas = {name: value for name, value in aliases.items() if name in _RECAP_ALIASES}
        if betas:
            if data.get("betas") is not None:
                raise ValueError(
                    f"give betas or {' and '.join(betas)} (recap's names), not both; "
                    f"got betas={data['betas']!r} and {betas}"
                )
            default = cls.model_fields["betas"].default
            data["betas"] = tuple(betas.get(name, default[index]) for name, index in _RECAP_ALIASES.items())
        if "epsilon" in aliases:
            if data.get("eps") is not None:
                raise ValueError(
                    f"give eps or epsilon (recap's name), not both; got eps={data['eps']!r} "
                    f"and epsilon={aliases['epsilon']!r}"
                )
            data["eps"] = aliases["epsilon"]
        return data


class AdamWConfig(OptimizerAlgorithmConfig):
    """AdamW: Adam with decoupled weight decay (``torch.optim.AdamW``)."""

    key = "adamw"
    optimizer_class = torch.optim.AdamW
    state_tensors = 2  # exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad)

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: NonNegativeFloat = pydantic.Field(1e-8, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(
        0.01, description="Decoupled weight decay coefficient; >= 0."
    )
    amsgrad: bool = pydantic.Field(False, description=_AMSGRAD)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)

    def state_tensor_count(self) -> int:
        """2, or 3 with ``amsgrad`` (``max_exp_avg_sq``)."""
        return 2 + self.amsgrad


class AdamaxConfig(OptimizerAlgorithmConfig):
    """Adamax: Adam with the infinity norm (``torch.optim.Adamax``)."""

    key = "adamax"
    optimizer_class = torch.optim.Adamax
    state_tensors = 2  # exp_avg, exp_inf

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: NonNegativeFloat = pydantic.Field(1e-8, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


class NAdamConfig(OptimizerAlgorithmConfig):
    """NAdam: Adam with Nesterov momentum (``torch.optim.NAdam``)."""

    key = "nadam"
    optimizer_class = torch.optim.NAdam
    state_tensors = 2  # exp_avg, exp_avg_sq

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: NonNegativeFloat = pydantic.Field(1e-8, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    momentum_decay: NonNegativeFloat = pydantic.Field(0.004, description="Momentum decay; >= 0.")
    decoupled_weight_decay: bool = pydantic.Field(False, description=_DECOUPLED)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


class RAdamConfig(OptimizerAlgorithmConfig):
    """RAdam: Adam with a rectified adaptive learning rate (``torch.optim.RAdam``)."""

    key = "radam"
    optimizer_class = torch.optim.RAdam
    state_tensors = 2  # exp_avg, exp_avg_sq

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: NonNegativeFloat = pydantic.Field(1e-8, description=_EPS)
    weight_decay: NonNegativeFloat = pydantic.Field(0.0, description=_WEIGHT_DECAY)
    decoupled_weight_decay: bool = pydantic.Field(False, description=_DECOUPLED)
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)


class SparseAdamConfig(OptimizerAlgorithmConfig):
    """SparseAdam: lazy Adam for sparse gradients (``torch.optim.SparseAdam``).

    For sparse gradients only, e.g. those of ``Embedding(sparse=True)``.

    It has no weight decay. torch rejects ``lr=0`` when constructing it; tml sets every group's LR
    itself, so a schedule that starts from 0 (a warmup) works.
    """

    key = "sparse_adam"
    optimizer_class = torch.optim.SparseAdam
    state_tensors = 2  # exp_avg, exp_avg_sq

    betas: Betas = pydantic.Field((0.9, 0.999), description=_BETAS)
    eps: PositiveFloat = pydantic.Field(
        1e-8, description="Added to the denominator for numerical stability; > 0."
    )
    maximize: bool = pydantic.Field(False, description=_MAXIMIZE)
