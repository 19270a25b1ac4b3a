"""Read an optimizer config from a YAML file: the whole document, or the part under a key.

Without ``--key``, the config is found automatically: the document itself if it is an optimizer
config, else the shallowest mapping key named ``optimizer`` (``optimizer:``, ``model.optimizer:``).
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
from tml.core.config.yaml_document import MAX_FILE_BYTES
from tml.optimizers.cli.errors import UsageError
from tml.optimizers.config import OptimizerConfig

AUTO_KEY = "optimizer"
"""The key searched for when no ``--key`` is given."""


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """A validated optimizer config and where it came from."""

    config: OptimizerConfig
    file: str
    key: str | None
    """The dotted key of the config in the file; ``None`` when it is the whole document."""


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


def _looks_like_optimizer_config(data: Mapping[Any, Any]) -> bool:
    """A key of the document is an optimizer config field, or close to one (a typo to report)."""
    fields = list(OptimizerConfig.model_fields)
    return not data or any(
        str(key) in fields or difflib.get_close_matches(str(key), fields, n=1, cutoff=0.75) for key in data
    )


__all__ = [
    "AUTO_KEY",
    "ConfigFileError",
    "LoadedConfig",
    "find_key",
    "load_optimizer_config",
    "read_document",
]
