"""``custom``: any other ``torch.optim.Optimizer`` subclass, named by its import path."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pydantic
import torch

from tml.core.config import raise_at
from tml.optimizers.algorithms.base import SPEED_FIELDS, OptimizerAlgorithmConfig

_NOT_KWARGS = {"params", "lr"}
_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_IMPORTS_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("tml_class_imports", default=True)


@contextlib.contextmanager
def without_class_imports() -> Iterator[None]:
    """Validate configs without importing ``custom.class_path`` (its module's top-level code would run).

    Inside, a ``custom`` config's ``class_path`` is checked for its form only (``package.module:Class``)
    and the checks that need the class (its keyword arguments, flatten, tensor_lr) are left to the
    build, which imports it; ``torch_class()`` raises. ``tml-optim validate`` loads files this way
    unless given ``--import``; ``show`` and ``plot`` always do. Python callers import, as before.
    """
    token = _IMPORTS_ALLOWED.set(False)
    try:
        yield
    finally:
        _IMPORTS_ALLOWED.reset(token)


def class_imports_allowed() -> bool:
    """Whether ``custom.class_path`` is imported when a config is validated."""
    return _IMPORTS_ALLOWED.get()


@functools.cache
def import_optimizer_class(class_path: str) -> type[torch.optim.Optimizer]:
    """Import ``"package.module:Class"`` and check that it is a ``torch.optim.Optimizer`` subclass.

    Raises:
      ValueError: the path is malformed, the import fails, or the object is not an optimizer class.
    """
    check_class_path(class_path)
    module_name, _, attribute_path = class_path.partition(":")
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


def check_class_path(class_path: str) -> None:
    """The form of an import path, ``package.module:Class`` (dotted names), checked without importing.

    Raises:
      ValueError: the path has another form.
    """
    if not _CLASS_PATH.match(class_path):
        raise ValueError(
            f"class_path must have the form 'package.module:Class' (dotted Python names), got {class_path!r}"
        )


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
        if "lr" in self.kwargs:
            raise_at(title, ("kwargs", "lr"), "give lr as custom.lr or as learning_rate, not in kwargs", "lr")
        if not class_imports_allowed():
            try:
                check_class_path(self.class_path)
            except ValueError as error:
                raise_at(title, ("class_path",), str(error), self.class_path)
            return self
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
        """The imported class.

        Raises:
          ValueError: inside :func:`without_class_imports`.
        """
        if not class_imports_allowed():
            raise ValueError(
                f"custom.class_path {self.class_path!r} is not imported here (validating without imports; "
                "tml-optim validate --import imports it)"
            )
        return import_optimizer_class(self.class_path)

    def hyperparameter_names(self) -> tuple[str, ...]:
        """The keyword arguments of the class's constructor (other than params and lr); without imports,
        the configured ones."""
        if not class_imports_allowed():
            return tuple(self.kwargs)
        return _signature_kwargs(self.torch_class())[0]

    def supports_weight_decay(self) -> bool:
        """Without imports, assumed (checked when the optimizer is built)."""
        return True if not class_imports_allowed() else super().supports_weight_decay()

    def flatten_refusal(self) -> str | None:
        """Without imports, none (checked when the config is loaded to build)."""
        return None if not class_imports_allowed() else super().flatten_refusal()

    def foreach_refuses_tensor_lr(self) -> bool:
        """Without imports, assumed not (checked when the config is loaded to build)."""
        return False if not class_imports_allowed() else super().foreach_refuses_tensor_lr()

    def optimizer_kwargs(self) -> dict[str, Any]:
        """The constructor's defaults, updated with the configured kwargs (YAML lists become tuples).

        Complete, like the built-in configs' kwargs: groups of one class share an optimizer whose
        constructor defaults are the first group's, so a group must not rely on them.
        """
        if not class_imports_allowed():
            return {
                key: tuple(value) if isinstance(value, list) else value for key, value in self.kwargs.items()
            }
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
        """Like the built-ins'; a class that takes ``**kwargs`` accepts any name but ``lr`` (so does
        a config validated without imports)."""
        if not class_imports_allowed() or _signature_kwargs(self.torch_class())[1]:
            names = [name for name in names if name == "lr"]
        super().check_hyperparameter_names(names)

    def with_hyperparameters(self, overrides: Mapping[str, Any]) -> OptimizerAlgorithmConfig:
        """A copy whose kwargs are updated with ``overrides`` (checked against the signature)."""
        self.check_hyperparameter_names(overrides)
        return type(self).model_validate({**self.model_dump(), "kwargs": {**self.kwargs, **overrides}})
