"""``OptimizerAlgorithmConfig``: the base of every algorithm config (one per torch optimizer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

import pydantic
import torch

from tml.core.config import BaseConfig, raise_at
from tml.optimizers.algorithms.facts import elementwise_classes, foreach_takes_tensor_lr, is_elementwise
from tml.optimizers.fields import Implementation, LearningRateValue
from tml.optimizers.schedules import LearningRate


def _lr_branch(value: Any) -> str:
    return "LearningRate" if isinstance(value, (dict, LearningRate)) else "Value"


LearningRateOrSchedule = Annotated[
    Annotated[LearningRateValue, pydantic.Tag("Value")]
    | Annotated[LearningRate, pydantic.Tag("LearningRate")],
    pydantic.Discriminator(_lr_branch),
]
"""An algorithm's ``lr``: a number, or a schedule (a ``LearningRate``)."""

IMPLEMENTATION_KWARGS = ("foreach", "fused", "capturable", "differentiable")
"""Constructor arguments of torch optimizers that are not config fields: they choose how a step is
computed, not what it computes (the speed work gives them a field of its own, ``implementation``)."""


SPEED_FIELDS = ("implementation", "flatten", "tensor_lr")
"""The fields of every algorithm that choose how its torch optimizer is built (issue 5)."""


class OptimizerAlgorithmConfig(BaseConfig):
    """Base of the algorithm configs: the learning rate and the torch class to build.

    Every other field is a keyword argument of the torch optimizer's constructor, with torch's name
    and default (documented exceptions aside), validated with torch's own ranges when the config is
    loaded.
    """

    key: ClassVar[str] = ""
    """The config key of the algorithm (``adam`` for ``OptimizerConfig(adam=...)``)."""
    optimizer_class: ClassVar[type[torch.optim.Optimizer]]
    """The torch optimizer this config builds."""
    non_torch_fields: ClassVar[frozenset[str]] = frozenset({"lr", *SPEED_FIELDS})
    """Fields that are not constructor arguments of the torch class (``lr`` is set per group; the
    speed fields choose how the optimizer is built)."""

    lr: LearningRateOrSchedule | None = pydantic.Field(
        None,
        description="The learning rate: a number, or a schedule (a LearningRate). May be left out "
        "when the optimizer config sets learning_rate, which then wins.",
    )
    implementation: Implementation = pydantic.Field(
        "auto",
        description="Which torch kernel steps the group: auto (fused where torch has a fused kernel "
        "for the optimizer, device and dtype; otherwise, on CPU, foreach for small tensors and the "
        "for-loop for large ones: see docs/speed.md), fused, foreach or for_loop. An explicit choice "
        "torch has no kernel for falls back (fused -> foreach -> for_loop). Every choice gives the "
        "same parameters within float rounding.",
    )
    flatten: bool = pydantic.Field(
        False,
        description="Make the group's parameters and gradients views into one contiguous buffer per "
        "dtype and device, so the optimizer steps one tensor (much faster with many small tensors). "
        "Elementwise optimizers only (not adafactor, muon, sparse_adam); refused when the optimizer "
        "is built for sparse gradients or DTensor/FSDP parameters. The model's parameters, names and "
        "state_dict, and the optimizer's checkpoint format, are unchanged.",
    )
    tensor_lr: bool = pydantic.Field(
        False,
        description="Hold the group's learning rate in a 0-dim tensor that the scheduler updates in "
        "place, so torch.compile(optimizer.step) compiles once instead of recompiling as the "
        "schedule moves. Not with implementation foreach for adam/adamw (torch refuses a tensor lr "
        "there).",
    )

    @pydantic.model_validator(mode="after")
    def _check_speed_fields(self) -> OptimizerAlgorithmConfig:
        title = type(self).__name__
        if self.flatten:
            reason = self.flatten_refusal()
            if reason is not None:
                raise_at(title, ("flatten",), reason, self.flatten)
        if self.tensor_lr and self.implementation == "foreach" and self.foreach_refuses_tensor_lr():
            raise_at(
                title,
                ("tensor_lr",),
                f"tensor_lr cannot be combined with implementation foreach for "
                f"{self.torch_class().__name__} (torch refuses a tensor lr with foreach unless "
                "capturable); use implementation auto, fused or for_loop",
                self.tensor_lr,
            )
        return self

    def flatten_refusal(self) -> str | None:
        """Why ``flatten`` cannot be used with this algorithm, or ``None`` when it can."""
        optimizer_class = self.torch_class()
        if is_elementwise(optimizer_class):
            return None
        return (
            f"flatten: {self.key or optimizer_class.__name__} ({optimizer_class.__name__}) cannot step "
            "flat buffers: only elementwise optimizers give the same result on one flat buffer "
            "(sparse, closure-based or shape-dependent ones do not); set flatten: false, or use one "
            "of " + ", ".join(cls.__name__ for cls in elementwise_classes())
        )

    def foreach_refuses_tensor_lr(self) -> bool:
        """Whether torch refuses a tensor ``lr`` for this optimizer with ``foreach=True``."""
        return not foreach_takes_tensor_lr(self.torch_class())

    def torch_class(self) -> type[torch.optim.Optimizer]:
        """The torch optimizer class this config builds."""
        return self.optimizer_class

    def hyperparameter_names(self) -> tuple[str, ...]:
        """The names a param group's ``hyperparameters`` may override: the constructor arguments."""
        return tuple(name for name in type(self).model_fields if name not in self.non_torch_fields)

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the torch optimizer's constructor, all but ``lr``."""
        kwargs = self.model_dump(include=set(self.hyperparameter_names()))
        return {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}

    def supports_weight_decay(self) -> bool:
        """Whether the algorithm has a ``weight_decay`` (so parameters can be excluded from it)."""
        return "weight_decay" in self.hyperparameter_names()

    def with_hyperparameters(self, overrides: Mapping[str, Any]) -> OptimizerAlgorithmConfig:
        """A copy with some hyperparameters replaced, validated like the original.

        Raises:
          ValueError: an override names no hyperparameter of this algorithm (the message lists them).
          pydantic.ValidationError: an override has a bad value.
        """
        self.check_hyperparameter_names(overrides)
        data = self.model_dump()
        data.update(overrides)
        return type(self).model_validate(data)

    def check_hyperparameter_names(self, names: Sequence[str] | Mapping[str, Any]) -> None:
        """Raise a ``ValueError`` listing the valid names if one of ``names`` is not a hyperparameter."""
        valid = self.hyperparameter_names()
        for name in names:
            if name == "lr":
                raise ValueError(
                    "lr cannot be overridden through hyperparameters: give the group a learning_rate"
                )
            if name not in valid:
                raise ValueError(
                    f"{self.key or type(self).__name__} has no hyperparameter {name!r}; "
                    f"valid: {', '.join(valid) or 'none'}"
                )

    def group_key(self) -> object:
        """Groups whose algorithms share this key are stepped by one torch optimizer.

        torch optimizers read every hyperparameter from the param group (torch's per-group options),
        so groups that differ only in hyperparameters share one optimizer: the key is the class.
        """
        return self.torch_class()

    def check_parameters(self, named_parameters: Sequence[tuple[str, torch.Tensor]]) -> str | None:
        """Why the algorithm cannot optimize these parameters, or ``None`` when it can."""
        return None
