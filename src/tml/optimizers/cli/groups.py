"""Param groups for the commands: each group's schedule from the config alone, and the user's model.

``show``, ``plot``, ``validate`` and the training job's progress display get the groups of a config
through :func:`group_schedules`; ``groups`` builds the user's model with :func:`load_model` and
describes the groups ``build_optimizer`` would make of it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml

from tml.optimizers.cli.errors import UsageError
from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.groups.rules import DEFAULT_GROUP


def group_schedules(config: OptimizerConfig) -> dict[str, LearningRate]:
    """Each param group's name and schedule, in param-group order, from the config alone.

    The groups are the config's rules in order (``param_groups``, or recap's task towers), then the
    group of the parameters no rule claims, then the table groups (``embedding_tables``). Companion
    groups that ``build_optimizer`` derives from a model (``<group>.no_weight_decay``, layer-decay
    groups, ``<table group>.dense`` for tables without a fused kernel) share their group's schedule and
    are not listed. A group's ``lr_multiplier`` is not part of its schedule: see
    :func:`group_multipliers`.

    Examples:
      >>> from tml.optimizers.config import SgdConfig
      >>> group_schedules(OptimizerConfig(sgd=SgdConfig(lr=0.1)))
      {'default': LearningRate(constant=0.1, ...)}
    """
    tables = {rule.name: rule.schedule() for rule in config.embedding_tables}
    return {**{spec.name: spec.schedule for spec in config.group_specs()}, **tables}


def group_multipliers(config: OptimizerConfig) -> dict[str, float]:
    """Each param group's ``lr_multiplier``: its learning rate is the multiplier times its schedule."""
    return {spec.name: spec.lr_multiplier for spec in config.group_specs()}


def load_model(spec: str, arguments: Sequence[str] = ()) -> torch.nn.Module:
    """The model of ``--model SPEC``: ``package.module:factory`` or ``path/to/file.py:factory``, called
    with the ``--model-arg key=value`` keyword arguments (values read as YAML scalars: ``4``, ``0.5``,
    ``true``, ``name``).

    Raises:
      UsageError: the spec is malformed, the module or factory cannot be found, or an argument is
        not ``key=value``.
      CliError: the factory fails or does not return a ``torch.nn.Module``.
    """
    source, colon, attribute = spec.rpartition(":")
    if not colon or not source or not attribute:
        raise UsageError(f"--model {spec!r}: expected MODULE:FACTORY or path/to/file.py:FACTORY")
    keywords: dict[str, Any] = {}
    for argument in arguments:
        key, equals, text = argument.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"--model-arg {argument!r}: expected key=value")
        keywords[key] = yaml.safe_load(text) if text else ""
    factory = getattr(_import_source(source), attribute, None)
    if not callable(factory):
        raise UsageError(f"--model {spec!r}: {source} has no callable {attribute!r}")
    try:
        model = factory(**keywords)
    except Exception as error:  # the user's code: any failure is reported as a usage error
        raise UsageError(
            f"--model {spec!r}: {attribute}(**{keywords}) raised {type(error).__name__}: {error}"
        ) from error
    if not isinstance(model, torch.nn.Module):
        raise UsageError(
            f"--model {spec!r}: {attribute}() returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _import_source(source: str) -> ModuleType:
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"--model: {source}: no such file")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"--model: cannot load {source}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(source)
    except ImportError as error:
        raise UsageError(f"--model: cannot import {source!r}: {error}") from None


__all__ = ["DEFAULT_GROUP", "group_multipliers", "group_schedules", "load_model"]
