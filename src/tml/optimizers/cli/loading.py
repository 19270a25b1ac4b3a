"""Read an optimizer config from a YAML file: the whole document, or the part under a key.

Without ``--key``, the config is found automatically: the document itself if it is an optimizer
config, else the shallowest mapping key named ``optimizer`` (``optimizer:``, ``model.optimizer:``).

``show``, ``plot`` and ``validate`` also read files of bare schedules (``examples/schedules.yaml``:
a mapping of name → ``LearningRate``) through :func:`load_config_or_schedules`.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from tml.core.config import ConfigError, ConfigIssue, YamlDocument
from tml.core.config.suggestions import with_hints
from tml.core.config.yaml_document import MAX_FILE_BYTES
from tml.optimizers.cli.errors import UsageError
from tml.optimizers.cli.groups import group_multipliers, group_schedules
from tml.optimizers.config import LearningRate, OptimizerConfig

AUTO_KEY = "optimizer"
"""The key searched for when no ``--key`` is given."""


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """A validated optimizer config and where it came from."""

    config: OptimizerConfig
    file: str
    key: str | None
    """The dotted key of the config in the file; ``None`` when it is the whole document."""


@dataclasses.dataclass(frozen=True)
class LoadedSchedules:
    """The validated schedules of a file of bare schedules, by name, and where they came from."""

    schedules: dict[str, LearningRate]
    file: str
    key: str | None
    """The dotted key of the schedules in the file; ``None`` when they are the whole document."""


@dataclasses.dataclass(frozen=True)
class Curves:
    """What ``show`` and ``plot`` draw from one file: named schedules and their LR multipliers."""

    file: str
    schedules: dict[str, LearningRate]
    """By param group (an optimizer config) or by name (a file of bare schedules), in file order."""
    multipliers: dict[str, float]
    """Each param group's ``lr_multiplier`` (empty for bare schedules)."""
    of: str
    """What a curve is: ``"param group"`` or ``"schedule"``."""
    config: OptimizerConfig | None = None
    """The optimizer config the curves are of (``None`` for bare schedules)."""


def load_curves(
    path: str | Path,
    key: str | None = None,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
    require_run: bool = False,
) -> Curves:
    """The curves of an optimizer config's param groups, or of a file's bare schedules.

    Raises:
      UsageError, ConfigError: as :func:`load_config_or_schedules`.
    """
    loaded = load_config_or_schedules(
        path, key, total_steps=total_steps, steps_per_epoch=steps_per_epoch, require_run=require_run
    )
    return curves_of(loaded)


def curves_of(loaded: LoadedConfig | LoadedSchedules) -> Curves:
    """The curves of a loaded optimizer config's param groups (and table groups), or of bare schedules."""
    if isinstance(loaded, LoadedSchedules):
        return Curves(loaded.file, loaded.schedules, {}, "schedule")
    return Curves(
        loaded.file,
        group_schedules(loaded.config),
        group_multipliers(loaded.config),
        "param group",
        loaded.config,
    )


class ConfigFileError(ConfigError):
    """A ``ConfigError`` that also knows where in the file the optimizer config was looked for."""

    def __init__(self, issues: tuple[ConfigIssue, ...], title: str, key: str | None) -> None:
        super().__init__(issues, title=title)
        self.key = key


def read_document(path: str | Path) -> YamlDocument:
    """Parse a YAML file (a missing file is a usage error; bad YAML, or a folder, FIFO or device
    instead of a file, raises ``ConfigError``)."""
    if not Path(path).exists():
        raise UsageError(f"{path}: no such file")
    return YamlDocument.read(path)


def read_stdin() -> YamlDocument:
    """Parse standard input (``validate -``), refused past the size limit of a file."""
    text = sys.stdin.read(MAX_FILE_BYTES + 1)
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise UsageError(f"<stdin>: more than the limit of {MAX_FILE_BYTES} bytes")
    return YamlDocument.parse(text, file="<stdin>")


def find_key(document: YamlDocument) -> str | None:
    """The dotted key of the optimizer config in the document, or ``None`` for the whole document.

    The whole document is the config when one of its keys is an optimizer config key (or close to
    one: a typo is reported as such); else the shallowest mapping key named ``optimizer``.

    Raises:
      UsageError: several keys named ``optimizer`` at the same depth, or none and the document is not
        an optimizer config (give ``--key``).
    """
    data = document.data
    if not isinstance(data, Mapping) or _looks_like_optimizer_config(data):
        return None
    level: list[tuple[str, Any]] = [(str(key), value) for key, value in data.items()]
    candidates: list[str] = []
    while level:
        found = [path for path, _ in level if path.rsplit(".", 1)[-1] == AUTO_KEY]
        if len(found) > 1:
            raise UsageError(
                f"{document.file}: several optimizer configs ({', '.join(found)}); choose one with --key"
            )
        if found:
            return found[0]
        candidates += [path for path, value in level if AUTO_KEY in path.rsplit(".", 1)[-1] and value]
        level = [
            (f"{path}.{key}", child)
            for path, value in level
            if isinstance(value, Mapping)
            for key, child in value.items()
        ]
    hint = f" (keys that may hold one: {', '.join(candidates)})" if candidates else ""
    raise UsageError(
        f"{document.file}: no key named {AUTO_KEY!r} and the document is not an optimizer config; "
        f"give the config's key with --key{hint}"
    )


def load_optimizer_config(
    path: str | Path,
    key: str | None = None,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
    require_run: bool = False,
) -> LoadedConfig:
    """Read and validate the optimizer config of a YAML file (``-``: standard input).

    ``total_steps`` / ``steps_per_epoch`` (``--total-steps``, ``--steps-per-epoch``) give the run
    that the schedules' relative lengths are resolved with (``OptimizerConfig.for_run``); with
    ``require_run``, a relative length that they and the config leave unresolved is an error.

    Raises:
      UsageError: the file does not exist, the key is ambiguous, or ``total_steps`` /
        ``steps_per_epoch`` differs from the config's.
      ConfigError: the YAML is invalid; ``ConfigFileError`` (a ``ConfigError``): the config is
        invalid. Either lists every issue, with file, line and column.
    """
    document = read_stdin() if str(path) == "-" else read_document(path)
    chosen = key if key is not None else find_key(document)
    return _config_of(document, chosen, total_steps, steps_per_epoch, require_run)


def _config_of(
    document: YamlDocument,
    chosen: str | None,
    total_steps: int | None,
    steps_per_epoch: int | None,
    require_run: bool,
) -> LoadedConfig:
    """The optimizer config of ``document`` at ``chosen``, with the run given on the command line."""
    try:
        config = document.to_config(OptimizerConfig, chosen)
    except ConfigError as error:
        raise ConfigFileError(error.issues, error.title, chosen) from None
    try:
        config = config.for_run(total_steps, steps_per_epoch)
        if require_run:
            config.require_run()
    except pydantic.ValidationError as error:
        prefix = tuple(chosen.split(".")) if chosen else ()
        issues = ConfigError.from_validation_error(
            error, prefix=prefix, positions=document.positions, title=f"invalid config in {document.file}"
        )
        raise ConfigFileError(issues.issues, issues.title, chosen) from None
    except ValueError as error:
        raise UsageError(f"{document.file}: {error}") from None
    return LoadedConfig(config, document.file, chosen)


def load_config_or_schedules(
    path: str | Path,
    key: str | None = None,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
    require_run: bool = False,
) -> LoadedConfig | LoadedSchedules:
    """An optimizer config, as :func:`load_optimizer_config` reads it (with the run of
    ``total_steps`` / ``steps_per_epoch``), or a file of bare schedules.

    A file (or the part at ``key``) holds bare schedules when it is a mapping whose every value is a
    schedule (a mapping of ``LearningRate`` keys, such as ``cosine_decay:``, or close ones: a typo is
    reported as such) and none of whose keys is an optimizer config field; at ``key``, a single
    schedule counts too, under the key's last part. Every schedule is validated; every issue of every
    one is reported, with file, line and column.

    Raises:
      UsageError, ConfigError: as :func:`load_optimizer_config`.
    """
    document = read_stdin() if str(path) == "-" else read_document(path)
    data: Any = document.data
    prefix: tuple[str | int, ...] = ()
    if key is not None:
        data, prefix = document.subtree(key)
        if looks_like_schedule(data):
            return _validated_schedules(document, {prefix[-1]: data}, prefix[:-1], key)
    if is_schedule_mapping(data):
        return _validated_schedules(document, data, prefix, key)
    chosen = key if key is not None else find_key(document)
    return _config_of(document, chosen, total_steps, steps_per_epoch, require_run)


def looks_like_schedule(value: Any) -> bool:
    """A mapping every key of which is a ``LearningRate`` key or close to one (``cosine_decy``)."""
    fields = list(LearningRate.model_fields)
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(
            str(key) in fields or difflib.get_close_matches(str(key), fields, n=1, cutoff=0.75)
            for key in value
        )
    )


def is_schedule_mapping(data: Any) -> bool:
    """A mapping of names to schedules, none of the names an optimizer config field."""
    return (
        isinstance(data, Mapping)
        and bool(data)
        and not any(str(key) in OptimizerConfig.model_fields for key in data)
        and all(looks_like_schedule(value) for value in data.values())
    )


def _validated_schedules(
    document: YamlDocument, data: Mapping[Any, Any], prefix: tuple[str | int, ...], key: str | None
) -> LoadedSchedules:
    schedules: dict[str, LearningRate] = {}
    issues: list[ConfigIssue] = []
    title = f"invalid schedules in {document.file}"
    for name, value in data.items():
        path = (*prefix, str(name))
        try:
            schedules[str(name)] = LearningRate.model_validate(value)
        except pydantic.ValidationError as error:
            found = ConfigError.from_validation_error(
                error, prefix=path, positions=document.positions, title=title, data=value
            )
            issues.extend(with_hints(found, LearningRate, len(path)).issues)
    if issues:
        raise ConfigFileError(tuple(issues), title, key)
    return LoadedSchedules(schedules, document.file, key)


def _looks_like_optimizer_config(data: Mapping[Any, Any]) -> bool:
    """A key of the document is an optimizer config field, or close to one (a typo to report)."""
    fields = list(OptimizerConfig.model_fields)
    return not data or any(
        str(key) in fields or difflib.get_close_matches(str(key), fields, n=1, cutoff=0.75) for key in data
    )


__all__ = [
    "AUTO_KEY",
    "ConfigFileError",
    "Curves",
    "LoadedConfig",
    "LoadedSchedules",
    "find_key",
    "is_schedule_mapping",
    "load_config_or_schedules",
    "load_curves",
    "load_optimizer_config",
    "looks_like_schedule",
    "read_document",
]
