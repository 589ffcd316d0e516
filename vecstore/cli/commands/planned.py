"""Commands announced in ``--help`` that are not available yet: they exit 69.

Making one available: a module of its own registering it, in place of its line here.
"""

from __future__ import annotations

from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    commands.planned("load", "upsert Parquet files into an index (not available yet)")
