"""``custom``: any other ``torch.optim.Optimizer`` subclass, named by its import path."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
import torch

from tml.core.config import raise_at
from tml.optimizers.algorithms.base import SPEED_FIELDS, OptimizerAlgorithmConfig

_NOT_KWARGS = {"params", "lr"}


@functools.cache
def import_optimizer_class(class_path: str) -> type[torch.optim.Optimizer]:
    """Import ``"package.module:Class"`` and check that it is a ``torch.optim.Optimizer`` subclass.

    Raises:
      ValueError: the path is malformed, the import fails, or the object is not an optimizer class.
    """
    module_name, colon, attribute_path = class_path.partition(":")
    if not colon or not module_name or not attribute_path:
        raise ValueError(f"class_path must have the form 'package.module:Class', got {class_path!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r}: {error}") from None
    for part in attribute_path.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, torch.optim.Optimizer)):
        raise ValueError(f"{class_path} is not a torch.optim.Optimizer subclass, got {target!r}")
    return target


def _signature_kwargs(optimizer_class: type) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """(keyword arguments other than params and lr, whether it takes **kwargs, required ones)."""
    parameters = inspect.signature(optimizer_class).parameters.values()
    names = tuple(
        parameter.name
        for parameter in parameters
        if parameter.name not in _NOT_KWARGS
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    )
    takes_any = any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters)
    required = tuple(
        parameter.name
        for parameter in parameters
        if parameter.name in names and parameter.default is inspect.Parameter.empty
    )
    return names, takes_any, required


class CustomOptimizerConfig(OptimizerAlgorithmConfig):
    """Any other optimizer: a ``torch.optim.Optimizer`` subclass and its keyword arguments.

    The class is imported and the kwargs checked against its constructor's signature when the
    config is loaded (a class that takes ``**kwargs`` accepts any name). ``lr`` is not a kwarg: it
    follows the same rule as every algorithm (``lr`` here, or the schedule in ``learning_rate``).

    Examples:
      >>> CustomOptimizerConfig(class_path="torch.optim:Adam", lr=0.1, kwargs={"amsgrad": True}).torch_class()
      <class 'torch.optim.adam.Adam'>
    """

    key = "custom"
    non_torch_fields = frozenset({"lr", "class_path", "kwargs", *SPEED_FIELDS})

    class_path: str = pydantic.Field(
        description="Import path of the optimizer class, 'package.module:Class' (e.g. 'torch.optim:Adam')."
    )
    kwargs: dict[str, Any] = pydantic.Field(
        default_factory=dict, description="Keyword arguments of the class's constructor, other than lr."
    )

    @pydantic.model_validator(mode="after")
    def _check_class_and_kwargs(self) -> CustomOptimizerConfig:
        title = type(self).__name__
        try:
            optimizer_class = import_optimizer_class(self.class_path)
        except ValueError as error:
            raise_at(title, ("class_path",), str(error), self.class_path)
        names, takes_any, required = _signature_kwargs(optimizer_class)
        for name in self.kwargs:
            if name == "lr":
                raise_at(
                    title, ("kwargs", name), "give lr as custom.lr or as learning_rate, not in kwargs", name
                )
            if name not in names and not takes_any:
                raise_at(
                    title,
                    ("kwargs", name),
                    f"{self.class_path} takes no keyword argument {name!r}; "
                    f"valid: {', '.join(names) or 'none'}",
                    name,
                )
        missing = [name for name in required if name not in self.kwargs]
        if missing:
            raise_at(
                title,
                ("kwargs",),
                f"{self.class_path} needs the keyword argument(s) {', '.join(missing)}",
                None,
            )
        return self

    def torch_class(self) -> type[torch.optim.Optimizer]:
        """The imported class."""
        return import_optimizer_class(self.class_path)

    def hyperparameter_names(self) -> tuple[str, ...]:
        """The keyword arguments of the class's constructor (other than params and lr)."""
        return _signature_kwargs(self.torch_class())[0]

    def optimizer_kwargs(self) -> dict[str, Any]:
        """The constructor's defaults, updated with the configured kwargs (YAML lists become tuples).

        Complete, like the built-in configs' kwargs: groups of one class share an optimizer whose
        constructor defaults are the first group's, so a group must not rely on them.
        """
        defaults = {
            parameter.name: parameter.default
            for parameter in inspect.signature(self.torch_class()).parameters.values()
            if parameter.name not in _NOT_KWARGS
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
            and parameter.default is not inspect.Parameter.empty
        }
        configured = {
            key: tuple(value) if isinstance(value, list) else value for key, value in self.kwargs.items()
        }
        return {**defaults, **configured}

    def constructor_kwargs(self) -> dict[str, Any]:
        """``lr`` (see :meth:`OptimizerAlgorithmConfig.constructor_kwargs`) and the configured kwargs."""
        lr = self.learning_rate_value()
        configured = {
            key: tuple(value) if isinstance(value, list) else value for key, value in self.kwargs.items()
        }
        return configured if lr is None else {"lr": lr, **configured}

    def check_hyperparameter_names(self, names: Sequence[str] | Mapping[str, Any]) -> None:
        """Like the built-ins'; a class that takes ``**kwargs`` accepts any name but ``lr``."""
        if _signature_kwargs(self.torch_class())[1]:
            names = [name for name in names if name == "lr"]
        super().check_hyperparameter_names(names)

    def with_hyperparameters(self, overrides: Mapping[str, Any]) -> OptimizerAlgorithmConfig:
        """A copy whose kwargs are updated with ``overrides`` (checked against the signature)."""
        self.check_hyperparameter_names(overrides)
        return type(self).model_validate({**self.model_dump(), "kwargs": {**self.kwargs, **overrides}})
