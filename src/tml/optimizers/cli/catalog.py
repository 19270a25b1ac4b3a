"""What ``list`` prints: the optimizer keys and schedule kinds, read from the configs and the registry."""

from __future__ import annotations

import dataclasses
import inspect
import sys

from tml.core.config.suggestions import models_at
from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.config import OptimizerConfig
from tml.optimizers.schedules import SCHEDULES


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of the catalogue."""

    key: str
    """The YAML key (``adam``, ``linear_ramp_to_cosine``…)."""
    target: str
    """What it builds or computes: the torch class, or the kind's config class."""
    description: str
    """The first line of its docstring."""


def optimizer_entries() -> list[Entry]:
    """Every algorithm key of ``OptimizerConfig``, with its torch class, in declaration order."""
    entries = []
    for name in OptimizerConfig.model_fields:
        algorithms = [
            model
            for model in models_at(OptimizerConfig, (name,))
            if issubclass(model, OptimizerAlgorithmConfig)
        ]
        for algorithm in algorithms:
            torch_class = getattr(algorithm, "optimizer_class", None)
            target = public_name(torch_class) if torch_class else algorithm.__name__
            entries.append(Entry(name, target, first_line(algorithm.__doc__)))
    return entries


def schedule_entries() -> list[Entry]:
    """Every registered schedule kind, with the first line of its formula's docstring."""
    return [
        Entry(kind.key, _config_name(config_class), first_line(kind.make.__doc__))
        for config_class, kind in SCHEDULES.items()
    ]


def _config_name(config_class: type) -> str:
    return "a number" if config_class is float else config_class.__name__


def first_line(docstring: str | None) -> str:
    """The summary line of a docstring (``""`` for none), reStructuredText literals as plain backticks.

    Examples:
      >>> first_line("Adam (``torch.optim.Adam``).")
      'Adam (`torch.optim.Adam`).'
    """
    text = inspect.cleandoc(docstring or "")
    return text.splitlines()[0].strip().replace("``", "`") if text else ""


def public_name(cls: type) -> str:
    """``torch.optim.Adam`` rather than ``torch.optim.adam.Adam`` where the package re-exports the class.

    Examples:
      >>> import torch
      >>> public_name(torch.optim.SGD)
      'torch.optim.SGD'
    """
    package = cls.__module__.rsplit(".", 1)[0]
    module = sys.modules.get(package)
    if module is not None and getattr(module, cls.__name__, None) is cls:
        return f"{package}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


__all__ = ["Entry", "first_line", "optimizer_entries", "public_name", "schedule_entries"]
