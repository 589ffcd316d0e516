"""The global options (one place), the argument types, and opening the store they name."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from vecstore.api import Index, VecStore
from vecstore.errors import InvalidArgumentError
from vecstore.settings import Settings, settings

DEFAULT_NAMESPACE_NAME = "__default__"  # how the default namespace "" is typed and shown

_STORE = Settings.model_fields["store"]
STORE_ENV = str(_STORE.alias)
DEFAULT_STORE = str(_STORE.default)
CONFIG_ENV = str(Settings.model_fields["config"].alias)
SCHEDULER_ENV = str(Settings.model_fields["scheduler"].alias)


# ============================================================ argument types


def storage_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        # the text may hold a secret: never echo it
        raise argparse.ArgumentTypeError("expected KEY=VALUE (the value is not shown)")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def json_value(text: str) -> Any:
    """JSON given inline, or ``@PATH`` to read it from a file."""
    if text.startswith("@"):
        try:
            with open(os.path.expanduser(text[1:]), encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def namespace(text: str) -> str:
    return "" if text == DEFAULT_NAMESPACE_NAME else text


def index_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, metavar="NAME", help="the index")


# ============================================================ global options


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options, on the top-level parser and again on every command.

    On commands their defaults are SUPPRESS, so a value given before the
    command is kept unless it is given again after it.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    g = parser.add_argument_group("global options")
    g.add_argument(
        "--store",
        metavar="URI",
        default=default(None),
        help=f"store root: a local path or an s3://, gs://, az:// URL "
        f"(default: ${STORE_ENV}, else {DEFAULT_STORE})",
    )
    g.add_argument(
        "--storage-option",
        metavar="KEY=VALUE",
        action="append",
        type=storage_option,
        dest="storage_options" if top else "more_storage_options",
        default=default([]),
        help="an fsspec option for the store, repeatable; VALUE is parsed as JSON "
        "when it can be (anon=true, client_kwargs='{...}')",
    )
    g.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help='integrations config file, JSON {"integrations": {ID: {options}}} '
        f"(default: ${CONFIG_ENV})",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=default(None),
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: "
        f"${SCHEDULER_ENV}, else a LocalCluster started by this process)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable JSON on stdout",
    )


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fsspec options of ``--storage-option`` (before and after the command)."""
    return dict(args.storage_options + getattr(args, "more_storage_options", []))


def open_store(args: argparse.Namespace) -> VecStore:
    """The VecStore the global options describe."""
    uri = args.store or settings().store
    options = store_options(args)
    return VecStore(
        uri,
        storage_options=options or None,
        scheduler_address=args.scheduler,
        config_path=args.config,
    )


def open_index(args: argparse.Namespace) -> Index:
    return open_store(args).Index(args.index)


def confirm(question: str) -> bool:
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise InvalidArgumentError(f"{question} Pass --yes to confirm (stdin is not a terminal).")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
