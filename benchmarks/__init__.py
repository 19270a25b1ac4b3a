"""Benchmarks of tml-optimizers (not part of the test suite): ``python -m benchmarks``."""
