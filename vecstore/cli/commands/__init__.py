"""The command modules, in the order ``vecstore --help`` lists their commands.

Adding a command: a module here with ``register(commands: Commands) -> None``
(see :mod:`vecstore.cli.registry`), and its name in :data:`MODULES`.
"""

from __future__ import annotations

MODULES = ("indexes", "imports", "load", "query", "namespaces", "stats", "build", "retention", "serve", "planned")
