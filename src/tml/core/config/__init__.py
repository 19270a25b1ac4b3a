"""Config base class and YAML loading shared by every tml package.

The package can be extended: a module ``tml/core/config/<name>.py`` of another distribution or source
tree on ``sys.path`` (the original keeps ``training.py`` here) is importable as
``tml.core.config.<name>`` (``pkgutil.extend_path``; this package's own modules are found first).
``tml`` and ``tml.core`` are namespace packages.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

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
