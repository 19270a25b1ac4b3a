"""Param groups for the commands: each group's schedule from the config alone, and the user's model.

``show``, ``plot`` and the training job's progress display get the groups of a config through
:func:`group_schedules`; ``validate`` lists the config's rules, companions included, through
:func:`rule_rows`; ``groups`` builds the user's model with :func:`load_model` and describes the
groups ``build_optimizer`` would make of it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml

from tml.optimizers.algorithms import OptimizerAlgorithmConfig
from tml.optimizers.cli.errors import UsageError
from tml.optimizers.config import LearningRate, OptimizerConfig
from tml.optimizers.groups.assign import NO_WEIGHT_DECAY_SUFFIX
from tml.optimizers.groups.rules import DEFAULT_GROUP
from tml.optimizers.tables.algorithms import TableAlgorithmConfig


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
    tables = config.table_schedules()
    return {**{spec.name: spec.schedule for spec in config.group_specs()}, **tables}


def group_multipliers(config: OptimizerConfig) -> dict[str, float]:
    """Each param group's ``lr_multiplier``: its learning rate is the multiplier times its schedule
    (1 for the table groups)."""
    tables = {rule.name: 1.0 for rule in config.embedding_tables}
    return {**{spec.name: spec.lr_multiplier for spec in config.group_specs()}, **tables}


@dataclasses.dataclass(frozen=True)
class RuleRow:
    """One row of ``validate``'s listing: a rule of the config, the group of the parameters no rule
    claims, or a companion group (``<group>.no_weight_decay``) that one of them makes."""

    group: str
    """The name of the group the row makes."""
    parameters: str
    """Which parameters: the rule's patterns, or in words for the unclaimed and companion groups."""
    algorithm: OptimizerAlgorithmConfig | TableAlgorithmConfig
    weight_decay: float | None
    """``None`` for an algorithm without weight decay."""
    lr_multiplier: float
    schedule: LearningRate
    made_for_any_model: bool
    """A rule's group exists for every model the config accepts (a rule that matches no parameter is
    an error), and so does the unclaimed group of a config without rules; the unclaimed group of a
    config with rules and the companion groups only when some parameter falls in them."""


UNCLAIMED = "parameters no rule claims"
"""How ``validate`` names the parameters of the group of unclaimed parameters."""


def rule_rows(config: OptimizerConfig) -> list[RuleRow]:
    """The config's param-group rules in order, then the group of unclaimed parameters, each followed
    by its ``<group>.no_weight_decay`` companion when it excludes parameters from weight decay, then
    the table rules (``embedding_tables``).

    The rows are what the config says without a model; ``describe_param_groups`` (``tml-optim
    groups --model``) gives the groups built for one, with ``layer_decay``'s ``.layer_<l>`` splits.

    Examples:
      >>> config = OptimizerConfig.model_validate({"adamw": {"lr": 0.001, "weight_decay": 0.05},
      ...     "exclude_from_weight_decay": ["bias"],
      ...     "param_groups": [{"name": "head", "params": ["head.*"], "lr_multiplier": 10.0}]})
      >>> [(row.group, row.parameters, row.weight_decay, row.lr_multiplier) for row in rule_rows(config)]
      ... # doctest: +NORMALIZE_WHITESPACE
      [('head', 'head.*', 0.05, 10.0),
       ('head.no_weight_decay', "head's parameters matching: bias", 0.0, 10.0),
       ('default', 'parameters no rule claims', 0.05, 1.0),
       ('default.no_weight_decay', "default's parameters matching: bias", 0.0, 1.0)]
    """
    rows = []
    specs = config.group_specs()
    for spec in specs:
        decays = spec.algorithm.supports_weight_decay()
        weight_decay = spec.algorithm.optimizer_kwargs().get("weight_decay") if decays else None
        rows.append(
            RuleRow(
                group=spec.name,
                parameters=", ".join(spec.patterns) if spec.patterns else UNCLAIMED,
                algorithm=spec.algorithm,
                weight_decay=None if weight_decay is None else float(weight_decay),
                lr_multiplier=spec.lr_multiplier,
                schedule=spec.schedule,
                made_for_any_model=bool(spec.patterns) or len(specs) == 1,
            )
        )
        if decays and spec.exclude_from_weight_decay:
            excluded = ", ".join(spec.exclude_from_weight_decay)
            rows.append(
                RuleRow(
                    group=spec.name + NO_WEIGHT_DECAY_SUFFIX,
                    parameters=f"{spec.name}'s parameters matching: {excluded}",
                    algorithm=spec.algorithm,
                    weight_decay=0.0,
                    lr_multiplier=spec.lr_multiplier,
                    schedule=spec.schedule,
                    made_for_any_model=False,
                )
            )
    table_schedules = config.table_schedules()
    for rule in config.embedding_tables:
        table_algorithm = rule.algorithm()
        weight_decay = getattr(table_algorithm, "weight_decay", None)
        rows.append(
            RuleRow(
                group=rule.name,
                parameters="tables: " + ", ".join(rule.tables),
                algorithm=table_algorithm,
                weight_decay=None if weight_decay is None else float(weight_decay),
                lr_multiplier=1.0,
                schedule=table_schedules[rule.name],
                made_for_any_model=True,
            )
        )
    return rows


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


__all__ = [
    "DEFAULT_GROUP",
    "UNCLAIMED",
    "RuleRow",
    "group_multipliers",
    "group_schedules",
    "load_model",
    "rule_rows",
]
