"""How command modules add their commands to the parser.

Each module in :mod:`vecstore.cli.commands` has ``register(commands)``; it adds
its commands (and command groups) to the :class:`Commands` it is given and
their arguments to the parsers it gets back. The global options are added to
every command afterwards, in one place (:mod:`vecstore.cli.options`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vecstore.errors import NotImplementedYet

Handler = Callable[[argparse.Namespace], int]


@dataclass
class Tree:
    """What the registration collected."""

    leaves: list[argparse.ArgumentParser] = field(default_factory=list)  # take global options
    planned: list[str] = field(default_factory=list)  # commands not available yet


class Commands:
    """One level of the command tree (the top level, or a group such as ``indexes``)."""

    def __init__(self, subparsers: Any, tree: Tree) -> None:
        self._subparsers = subparsers
        self.tree = tree

    def command(
        self,
        name: str,
        handler: Handler,
        help: str,
        description: str | None = None,
        *,
        any_arguments: bool = False,
    ) -> argparse.ArgumentParser:
        """A command run by ``handler(args)``, whose return value is the exit status.

        ``any_arguments``: the command accepts (and ignores) any arguments and
        takes no global options (the stubs of commands not available yet).
        """
        parser: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=help, description=description or help
        )
        parser.set_defaults(handler=handler, any_arguments=any_arguments)
        if not any_arguments:
            self.tree.leaves.append(parser)
        return parser

    def planned(self, name: str, help: str) -> None:
        """A command that is not available yet: any arguments, exit 69."""
        self.command(name, _not_available, help, any_arguments=True)
        self.tree.planned.append(name)

    def group(self, name: str, help: str, description: str) -> Commands:
        """A command group such as ``indexes``: its commands are ``NAME SUBCOMMAND``."""
        parser = self._subparsers.add_parser(name, help=help, description=description)
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        return Commands(sub, self.tree)


def _not_available(args: argparse.Namespace) -> int:
    raise NotImplementedYet(f"`vecstore {args.command}` is not available yet")
