"""The ``vecstore`` command line (entry point ``vecstore.cli:main``).

Every command goes through the public API (:class:`vecstore.VecStore`); the
CLI adds argument parsing, output (tables, ``--json``) and exit codes.

- :mod:`~vecstore.cli.app`: the parser and :func:`main`;
- :mod:`~vecstore.cli.options`: the global options (``--store``, ``--json``...),
  the argument types, and opening the store they name;
- :mod:`~vecstore.cli.exitcodes`: the exit statuses, once (``--help`` and
  ``docs/cli.md`` are rendered from them);
- :mod:`~vecstore.cli.registry` and :mod:`~vecstore.cli.commands`: one module
  per command group; adding a command is one module and its name in
  ``commands.MODULES``;
- :mod:`~vecstore.cli.output` and :mod:`~vecstore.cli.waiting`: tables and
  JSON, and waiting for an import (progress, timeout, Ctrl-C, SIGTERM).

rich is imported inside the functions that draw, so importing this package
stays light. Storage options and integration credentials are never printed.
See ``docs/cli.md``.
"""

from __future__ import annotations

from vecstore.cli.app import build_parser, command_paths, main
from vecstore.cli.exitcodes import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    exit_code_for,
    exit_code_for_error,
)
from vecstore.cli.options import open_store
from vecstore.cli.waiting import wait_for_final

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "command_paths",
    "exit_code_for",
    "exit_code_for_error",
    "main",
    "open_store",
    "wait_for_final",
]
