"""Config base class and YAML loading shared by every tml package."""

from tml.core.config.base_config import BaseConfig
from tml.core.config.config_load import YamlDocument, load_config_from_yaml
from tml.core.config.errors import ConfigError, ConfigIssue, Position

__all__ = [
    "BaseConfig",
    "ConfigError",
    "ConfigIssue",
    "Position",
    "YamlDocument",
    "load_config_from_yaml",
]
