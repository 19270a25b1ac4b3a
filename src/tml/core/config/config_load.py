"""The original's module name for YAML loading (``tml.core.config.config_load``): see :mod:`yaml_document`."""

from tml.core.config.yaml_document import YamlDocument, load_config_from_yaml

__all__ = ["YamlDocument", "load_config_from_yaml"]
