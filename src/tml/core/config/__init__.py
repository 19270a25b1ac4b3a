"""Config base class and YAML loading shared by every tml package."""

from tml.core.config.base_config import BaseConfig
from tml.core.config.errors import (
    ConfigError,
    ConfigIssue,
    Position,
    located_error,
    raise_at,
    relocate,
)
from tml.core.config.yaml_document import YamlDocument, load_config_from_yaml

__all__ = [
    "BaseConfig",
    "ConfigError",
    "ConfigIssue",
    "Position",
    "YamlDocument",
    "load_config_from_yaml",
    "located_error",
    "raise_at",
    "relocate",
]
