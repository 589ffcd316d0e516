"""Commands announced in ``--help`` that are not available yet: they exit 69.

Making one available: a module of its own registering it, in place of its line here.
(None at the moment: ``load`` became :mod:`vecstore.cli.commands.load`.)
"""

from __future__ import annotations

from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    """Register each planned command with ``commands.planned(NAME, HELP)``."""
