"""Param groups: rule configs, patterns over parameter names, recap's format, assignment to a model."""
