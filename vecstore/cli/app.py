"""The parser (commands from :mod:`vecstore.cli.commands`) and ``main``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, cast

from vecstore import __version__
from vecstore.cli import exitcodes
from vecstore.cli.commands import MODULES
from vecstore.cli.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from vecstore.cli.options import add_global_options
from vecstore.cli.registry import Commands, Handler, Tree
from vecstore.errors import VecstoreError
from vecstore.settings import cli_lines

EXAMPLES = """\
examples:
  vecstore indexes create docs --dimension 384 --metric cosine
  vecstore import s3://my-bucket/embeddings/ --index docs --integration-id my-s3 --wait
  vecstore imports list --index docs
  vecstore imports describe 17352000000000001a2b3c4d --index docs --json
  vecstore query --index docs --namespace articles --vector @query.json --top-k 5 \\
      --filter '{"genre": {"$eq": "drama"}}' --include-metadata
  vecstore --store s3://my-bucket/vecstore stats --index docs

Global options may also follow the command (vecstore indexes list --json).
"""


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 64 (EX_USAGE) for argument errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _epilog(planned: list[str]) -> str:
    environment = "\n".join(f"  {name:<21} {short}" for name, short in cli_lines())
    return (
        f"{EXAMPLES}\n{exitcodes.help_text(planned)}\n"
        f"environment:\n{environment}\n\nSee docs/cli.md for details.\n"
    )


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def planned_commands() -> list[str]:
    """The commands announced but not available yet (they exit 69)."""
    return _build()[1].planned


def _build() -> tuple[argparse.ArgumentParser, Tree]:
    parser = _Parser(
        prog="vecstore",
        description="Bulk-import Parquet files from object storage into vector indexes,\n"
        "follow the import jobs, and query the indexes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vecstore {__version__}")
    add_global_options(parser, top=True)
    tree = Tree()
    commands = Commands(
        parser.add_subparsers(dest="command", metavar="COMMAND", required=True), tree
    )
    for name in MODULES:
        module = importlib.import_module(f"vecstore.cli.commands.{name}")
        cast(Callable[[Commands], None], module.register)(commands)
    for leaf in tree.leaves:
        add_global_options(leaf, top=False)
    parser.epilog = _epilog(tree.planned)
    return parser, tree


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not args.any_arguments:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, argument errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except VecstoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.exit_code_for_error(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `vecstore imports list | head -1`
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def command_paths(parser: argparse.ArgumentParser) -> Iterator[list[str]]:
    """Every command path of the parser (for tests and docs)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [name]
                for rest in command_paths(sub):
                    yield [name, *rest]

