"""Errors of the ``tml-optim`` command: each is one readable line and has its exit status.

Exit statuses: 0 success, 1 an invalid config or a failed job, 2 a usage error (bad arguments, a
missing file), 128 + the signal number when a training run was stopped by SIGINT or SIGTERM.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report as one line, without a traceback, and exit with ``exit_status``."""

    exit_status = EXIT_FAILURE


class UsageError(CliError):
    """The command line is wrong: a missing file, a malformed option value."""

    exit_status = EXIT_USAGE


__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "CliError", "UsageError"]
