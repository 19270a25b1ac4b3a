"""Load a config from a YAML file: safe parsing, environment substitution, errors with line numbers."""

from __future__ import annotations

import getpass
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from tml.core.config.base_config import BaseConfig
from tml.core.config.errors import ConfigError, ConfigIssue, Position
from tml.core.config.suggestions import with_hints

ConfigT = TypeVar("ConfigT", bound=BaseConfig)

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A config file larger than this is refused before it is parsed."""
MAX_NODES = 200_000
"""A document with more nodes than this, aliases expanded, is refused (alias-expansion bombs)."""
MAX_DEPTH = 100
"""A document nested deeper than this is refused (the YAML composer would exhaust the stack)."""

Positions = dict[tuple[str | int, ...], Position]


class YamlDocument:
    """A parsed YAML document with the position of every key and list item in it."""

    def __init__(self, data: Any, positions: Positions, file: str) -> None:
        self.data = data
        self.positions = positions
        self.file = file

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, substitute_env: bool = True) -> YamlDocument:
        """Parse ``path`` with ``yaml.safe_load`` semantics; then substitute ``$VAR`` in string values.

        Raises:
          ConfigError: the file is missing, too large, not valid YAML, or an alias-expansion bomb.
        """
        file = str(path)
        try:
            size = Path(path).stat().st_size
            if size > MAX_FILE_BYTES:
                raise _file_error(file, f"file is {size} bytes, larger than the limit of {MAX_FILE_BYTES}")
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise _file_error(file, f"cannot read the file: {error.strerror or error}") from None
        except UnicodeDecodeError as error:
            raise _file_error(file, f"the file is not UTF-8 text: {error.reason}") from None
        return cls.parse(text, file=file, substitute_env=substitute_env)

    @classmethod
    def parse(cls, text: str, *, file: str = "<string>", substitute_env: bool = True) -> YamlDocument:
        """Parse YAML text (see :meth:`read`)."""
        try:
            _check_depth(text, file)
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                positions: Positions = {}
                if node is not None:
                    _index_positions(node, (), positions, file, [0])
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
        except yaml.YAMLError as error:
            raise _yaml_error(file, error) from None
        if substitute_env:
            data = substitute_environment(data)
        return cls(data, positions, file)

    def subtree(self, key: str) -> tuple[Any, tuple[str | int, ...]]:
        """The value at a dotted ``key`` (``"model.optimizer"``) and its path."""
        path = tuple(key.split("."))
        value = self.data
        for depth, part in enumerate(path):
            if not isinstance(value, Mapping) or part not in value:
                found = sorted(map(str, value)) if isinstance(value, Mapping) else []
                raise ConfigError(
                    [
                        ConfigIssue(
                            path=path[: depth + 1],
                            message=f"key not found; keys here: {', '.join(found) or 'none'}",
                            position=self.positions.get(path[:depth]),
                        )
                    ],
                    title=f"{self.file}: no config at {key!r}",
                )
            value = value[part]
        return value, path

    def to_config(self, config_type: type[ConfigT], key: str | None = None) -> ConfigT:
        """Validate the document (or the part at ``key``) as ``config_type``.

        Raises:
          ConfigError: every validation issue, each with ``file:line:column`` and the config path; an
            unknown key with the nearest valid key and every valid one.
        """
        data, prefix = self.subtree(key) if key else (self.data, ())
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(
                [
                    ConfigIssue(
                        path=prefix,
                        message=f"expected a mapping of {config_type.__name__} fields",
                        value=data,
                        has_value=True,
                        position=self.positions.get(prefix),
                    )
                ],
                title=f"invalid config in {self.file}",
            )
        try:
            return config_type.model_validate(data)
        except pydantic.ValidationError as error:
            issues = ConfigError.from_validation_error(
                error, prefix=prefix, positions=self.positions, title=f"invalid config in {self.file}"
            )
            raise with_hints(issues, config_type, len(prefix)) from None


def load_config_from_yaml(
    config_type: type[ConfigT], yaml_path: str | os.PathLike[str], *, key: str | None = None
) -> ConfigT:
    """Load and validate a config of type ``config_type`` from a YAML file.

    ``$VAR`` and ``${VAR}`` in string values are replaced from the environment (``$USER`` by the
    current user) after parsing, so a variable's value can never add keys. A ``key`` such as
    ``"model.optimizer"`` validates only that part of the document.

    Raises:
      ConfigError: naming the file, line and column, the config path, the rule and the value.
    """
    return YamlDocument.read(yaml_path).to_config(config_type, key)


def substitute_environment(data: Any) -> Any:
    """Replace ``$VAR``/``${VAR}`` in every string value (not in keys) of parsed YAML data."""
    variables = dict(os.environ)
    variables["USER"] = _current_user()

    def substitute(value: Any) -> Any:
        if isinstance(value, str):
            return string.Template(value).safe_substitute(variables)
        if isinstance(value, dict):
            return {key: substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [substitute(item) for item in value]
        return value

    return substitute(data)


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def _check_depth(text: str, file: str) -> None:
    # The event parser is iterative, so it measures the nesting before anything recurses over it.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    [
                        ConfigIssue(
                            path=(),
                            message=f"the document is nested more than {MAX_DEPTH} levels deep",
                            position=_position(file, event.start_mark),
                        )
                    ],
                    title=f"cannot load {file}",
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _index_positions(
    node: yaml.Node, path: tuple[str | int, ...], out: Positions, file: str, count: list[int]
) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _file_error(file, f"the document has more than {MAX_NODES} nodes once aliases are expanded")
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: str | int = key_node.value
            if isinstance(key, str) and key_node.tag.endswith(":int"):
                key = int(key.replace("_", ""))
            out.setdefault((*path, key), _position(file, key_node.start_mark))
            _index_positions(value_node, (*path, key), out, file, count)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.setdefault((*path, index), _position(file, item.start_mark))
            _index_positions(item, (*path, index), out, file, count)


def _position(file: str, mark: Any) -> Position:
    return Position(file, mark.line + 1, mark.column + 1)


def _file_error(file: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path=(), message=message)], title=f"cannot load {file}")


def _yaml_error(file: str, error: yaml.YAMLError) -> ConfigError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"{context}, {problem}" if context else str(problem)
    position = _position(file, mark) if mark is not None else None
    return ConfigError(
        [ConfigIssue(path=(), message=f"not valid YAML: {message}", position=position)],
        title=f"cannot load {file}",
    )
