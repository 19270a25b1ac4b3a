"""Load a config from a YAML file: safe parsing, environment substitution, errors with line numbers."""

from __future__ import annotations

import getpass
import os
import stat
import string
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
import yaml

from tml.core.config.base_config import BaseConfig
from tml.core.config.errors import ConfigError, ConfigIssue, Position
from tml.core.config.suggestions import with_hints
from tml.core.config.yaml_compose import ComposeError, Composer, construct, events, key_of

ConfigT = TypeVar("ConfigT", bound=BaseConfig)

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A config file larger than this is refused before it is parsed (at most this + 1 bytes are read)."""
MAX_NODES = 100_000
"""A document with more nodes than this, aliases expanded, is refused (alias-expansion bombs); the
nodes are counted while the document is composed, so a large file is refused as soon as it passes."""
MAX_DEPTH = 100
"""A document nested deeper than this, aliases expanded, is refused (it could exhaust the stack)."""

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
        raw = _read_bytes(path, file)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
            raise ConfigError(
                [
                    ConfigIssue(
                        path=(),
                        message=f"the file is not UTF-8 text: byte 0x{raw[error.start]:02x} ({error.reason})",
                        position=Position(file, line, column),
                    )
                ],
                title=f"cannot load {file}",
            ) from None
        return cls.parse(text, file=file, substitute_env=substitute_env)

    @classmethod
    def parse(cls, text: str, *, file: str = "<string>", substitute_env: bool = True) -> YamlDocument:
        """Parse YAML text (see :meth:`read`)."""
        try:
            node = Composer(MAX_NODES, MAX_DEPTH).compose(events(text))
            positions = _index_positions(node, file) if node is not None else {}
            data = construct(node) if node is not None else None
        except ComposeError as error:
            raise ConfigError(
                [ConfigIssue(path=error.path, message=error.message, position=_position(file, error.mark))],
                title=f"cannot load {file}",
            ) from None
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
        title = f"invalid config in {self.file}"
        if key is None:
            nested = _nested_config_key(data, config_type)
            if nested is not None:
                title += (
                    f" (none of the document's keys is a {config_type.__name__} field, but the mapping "
                    f"at {nested!r} has some: did you mean key={nested!r}?)"
                )
        try:
            return config_type.model_validate(data)
        except pydantic.ValidationError as error:
            issues = ConfigError.from_validation_error(
                error, prefix=prefix, positions=self.positions, title=title, data=data
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


def _nested_config_key(data: Mapping[Any, Any], config_type: type[BaseConfig], depth: int = 3) -> str | None:
    """The shallowest dotted key under which a mapping has fields of ``config_type``, when the
    document's own keys have none (a forgotten ``key=``)."""
    fields = set(config_type.model_fields)
    if not data or fields & set(data):
        return None
    level: list[tuple[str, Any]] = [(str(key), value) for key, value in data.items()]
    for _ in range(depth):
        for dotted, value in level:
            if isinstance(value, Mapping) and fields & set(value):
                return dotted
        level = [
            (f"{dotted}.{key}", child)
            for dotted, value in level
            if isinstance(value, Mapping)
            for key, child in value.items()
        ]
    return None


def _read_bytes(path: str | os.PathLike[str], file: str) -> bytes:
    """At most ``MAX_FILE_BYTES`` of a regular file; anything else (a FIFO, a device, a folder) is
    refused before a byte is read, and nothing blocks (a FIFO is opened without waiting for a writer)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise _file_error(file, f"cannot read the file: {error.strerror or error}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise _file_error(file, f"cannot read the file: it is {_file_kind(mode)}, not a regular file")
    with os.fdopen(descriptor, "rb") as stream:
        try:
            raw = stream.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise _file_error(file, f"cannot read the file: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _file_error(file, f"the file is larger than the limit of {MAX_FILE_BYTES} bytes")
    return raw


def _file_kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _index_positions(root: yaml.Node, file: str) -> Positions:
    """The position of every key and list item, aliases expanded (the composer bounded their number)."""
    out: Positions = {}
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_of(key_node)
                out.setdefault((*path, key), _position(file, key_node.start_mark))
                stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                out.setdefault((*path, index), _position(file, item.start_mark))
                stack.append((item, (*path, index)))
    return out


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
