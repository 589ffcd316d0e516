"""``vecstore serve``, ``vecstore projects ...`` and ``vecstore api-keys ...``.

The server itself is :mod:`vecstore.server` (the ``server`` extra); these
commands only parse arguments and call it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vecstore.cli.exitcodes import EXIT_OK
from vecstore.cli.options import store_options
from vecstore.cli.output import print_json
from vecstore.cli.registry import Commands
from vecstore.server.auth import ROLES  # no server extra needed
from vecstore.settings import settings

if TYPE_CHECKING:
    from vecstore.server.auth import AuthStore

def register(commands: Commands) -> None:
    p = commands.command(
        "serve",
        serve,
        "serve Pinecone's REST API (control and data plane) on one port",
        "Serve the store with Pinecone's REST protocol so the official SDKs work "
        "unchanged: Pinecone(api_key=..., host='http://HOST:PORT'). API keys are off "
        "until a project exists (`vecstore projects create`).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=5080, help="port (default: 5080)")
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes on the port: a number or 'auto' (min(cores, 4)); "
        "more serve more concurrent clients (default: 1)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="debug logs one line per request (default: info)",
    )

    projects = commands.group(
        "projects",
        "create, list or delete projects (each sees only its own indexes)",
        "Projects of `vecstore serve`: each API key belongs to one project, and each "
        "project has its own indexes under its own store prefix.",
    )
    c = projects.command("create", project_create, "create a project")
    c.add_argument("name")
    c.add_argument("--description", default="")
    projects.command("list", project_list, "list projects")
    d = projects.command("delete", project_delete, "delete a project")
    d.add_argument("name")
    d.add_argument("--force", action="store_true", help="also delete the project's indexes")

    keys = commands.group(
        "api-keys",
        "create, list or delete API keys of `vecstore serve`",
        "API keys: shown once at creation, stored only as a salted hash.",
    )
    k = keys.command("create", key_create, "create an API key (printed once)")
    k.add_argument("--project", required=True)
    k.add_argument("--role", default="ReadWrite", choices=ROLES)  # from vecstore.server.auth
    k.add_argument("--name", default="")
    lst = keys.command("list", key_list, "list API keys (never the keys themselves)")
    lst.add_argument("--project")
    kd = keys.command("delete", key_delete, "delete an API key")
    kd.add_argument("id")


def _workers(value: str) -> int:
    import os

    if value == "auto":
        return max(1, min(os.cpu_count() or 1, 4))
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"expected 1 to 64 workers, got {n}")
    return n


def _uri(args: argparse.Namespace) -> str:
    return str(args.store or settings().store)


def serve(args: argparse.Namespace) -> int:
    from vecstore import extras

    extras.require("server", "`vecstore serve`")
    from vecstore.server import run

    run(
        _uri(args),
        args.host,
        args.port,
        args.config or settings().config,
        args.scheduler or settings().scheduler,
        args.log_level,
        store_options(args) or None,
        workers=args.workers,
    )
    return EXIT_OK


def _auth(args: argparse.Namespace) -> AuthStore:
    from vecstore.server.auth import AuthStore
    from vecstore.storage import Store

    return AuthStore(Store(_uri(args), store_options(args) or None))


def project_create(args: argparse.Namespace) -> int:
    proj = _auth(args).create_project(args.name, args.description)
    if args.json:
        print_json(proj.model_dump(mode="json"))
    else:
        print(f'Created project "{proj.name}"')
    return EXIT_OK


def project_list(args: argparse.Namespace) -> int:
    rows = [p.model_dump(mode="json") for p in _auth(args).list_projects()]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(row["name"])
    return EXIT_OK


def project_delete(args: argparse.Namespace) -> int:
    _auth(args).delete_project(args.name, force=args.force)
    if not args.json:
        print(f'Deleted project "{args.name}"')
    return EXIT_OK


def key_create(args: argparse.Namespace) -> int:
    record, key = _auth(args).create_key(args.project, args.role, args.name)
    print_json({**record.public(), "key": key})
    print("Store this key now: it is not shown again.", file=sys.stderr)
    return EXIT_OK


def key_list(args: argparse.Namespace) -> int:
    rows = [r.public() for r in _auth(args).list_keys(args.project)]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print("\t".join(str(v) for v in row.values()))
    return EXIT_OK


def key_delete(args: argparse.Namespace) -> int:
    _auth(args).delete_key(args.id)
    if not args.json:
        print(f"Deleted API key {args.id}")
    return EXIT_OK
