"""``OptimizerAlgorithmConfig``: the base of every algorithm config (one per torch optimizer)."""

from __future__ import annotations

import builtins
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

import pydantic
import torch

from tml.core.config import raise_at
from tml.core.config.base_config import StrictConfig
from tml.optimizers.algorithms.facts import elementwise_classes, foreach_takes_tensor_lr, is_elementwise
from tml.optimizers.fields import Implementation, LearningRateValue
from tml.optimizers.schedules import LearningRate, compute_lr


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
"""The fields of every algorithm that choose how its torch optimizer is built (docs/speed.md)."""


def constructor_defaults(optimizer_class: type) -> builtins.dict[str, Any]:
    """The keyword arguments of ``optimizer_class``'s constructor that have a default, with it."""
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(optimizer_class).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.default is not inspect.Parameter.empty
    }


class OptimizerAlgorithmConfig(StrictConfig):
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
    original_kwargs: ClassVar[tuple[str, ...]] = ()
    """The constructor arguments besides ``lr`` that :meth:`dict` always gives: the fields of the
    original's config class (``sgd``: momentum; ``adam``: betas, eps; ``adagrad``: eps)."""

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

    state_tensors: ClassVar[int | None] = None
    """How many tensors of a parameter's shape the torch optimizer keeps for it (moments,
    accumulators; 0-dim counters such as ``step`` not counted); ``None`` when not known."""

    def state_tensor_count(self) -> int | None:
        """:attr:`state_tensors` for these hyperparameters (SGD keeps a buffer only with momentum…)."""
        return self.state_tensors

    def state_elements(self, shape: Sequence[int]) -> int | None:
        """The entries of optimizer state the torch optimizer keeps for a parameter of ``shape`` once it
        has stepped; ``None`` when not known (a ``custom`` class)."""
        count = self.state_tensor_count()
        return None if count is None else count * math.prod(shape)

    def learning_rate_value(self) -> float | None:
        """``lr`` as a number: the number given, a schedule's value at step 0, ``None`` when unset."""
        if isinstance(self.lr, LearningRate):
            return compute_lr(self.lr, 0)
        return None if self.lr is None else float(self.lr)

    def constructor_kwargs(self) -> builtins.dict[str, Any]:
        """The keyword arguments the original's code passes to the torch class (see :meth:`dict`).

        ``lr`` (a number; a schedule's value at step 0; left out when unset), the fields of the
        original's config class (:attr:`original_kwargs`), and every other constructor argument that
        was set explicitly or whose value differs from torch's default; never the speed fields.
        """
        torch_defaults = constructor_defaults(self.torch_class())
        kwargs = {
            name: value
            for name, value in self.optimizer_kwargs().items()
            if name in self.original_kwargs
            or name in self.model_fields_set
            or name not in torch_defaults
            or torch_defaults[name] != value
        }
        lr = self.learning_rate_value()
        return kwargs if lr is None else {"lr": lr, **kwargs}

    # pydantic 1's methods, as the original's code calls them. Last in the class: below them, `dict`
    # names the method in the class body (annotations use builtins.dict).

    def dict(
        self,
        *,
        include: Any = None,
        exclude: Any = None,
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> builtins.dict[str, Any]:
        """The torch constructor's keyword arguments, as the original's ``.dict()`` gave them.

        The original's code builds optimizers with ``optimizer_class(params, **config.dict())`` (and
        torchrec's ``apply_optimizer_in_backward(..., optimizer_kwargs=config.dict())``), so this is
        :meth:`constructor_kwargs`, not pydantic's dump: no speed field (``implementation``,
        ``flatten``, ``tensor_lr``), which torch refuses, and no argument left at torch's default that
        the original did not pass (FBGEMM's fused kernels refuse SGD's ``dampening``, ``nesterov``,
        ``maximize``). ``model_dump()`` gives every field. ``include`` / ``exclude`` filter the names,
        ``exclude_unset`` keeps those set explicitly, ``exclude_defaults`` drops those at the config's
        default, ``exclude_none`` drops ``None`` values; ``by_alias`` changes nothing (no aliases).

        Examples:
          >>> from tml.optimizers.algorithms.sgd import SgdConfig
          >>> SgdConfig(lr=0.1).dict()
          {'lr': 0.1, 'momentum': 0.0}
          >>> SgdConfig(lr=0.1, nesterov=True, momentum=0.9, flatten=True).dict()
          {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}
        """
        fields = type(self).model_fields
        selected = {}
        for name, value in self.constructor_kwargs().items():
            if include is not None and name not in include:
                continue
            if exclude is not None and name in exclude:
                continue
            if exclude_unset and name not in self.model_fields_set:
                continue
            if exclude_defaults and name in fields and fields[name].default == value:
                continue
            if exclude_none and value is None:
                continue
            selected[name] = value
        return selected

    def json(
        self,
        *,
        include: Any = None,
        exclude: Any = None,
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        encoder: Callable[[Any], Any] | None = None,
        models_as_dict: bool = True,
        **dumps_kwargs: Any,
    ) -> str:
        """:meth:`dict` as JSON (``json.dumps``, with ``encoder`` as its ``default``);
        ``model_dump_json()`` gives every field."""
        data = self.dict(
            include=include,
            exclude=exclude,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )
        return json.dumps(data, default=encoder, **dumps_kwargs)
