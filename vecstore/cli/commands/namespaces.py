"""``vecstore namespaces list|delete``."""

from __future__ import annotations

import argparse
import sys

from vecstore.cli.exitcodes import EXIT_FAILED, EXIT_OK
from vecstore.cli.options import (
    DEFAULT_NAMESPACE_NAME,
    confirm,
    index_option,
    namespace,
    open_index,
)
from vecstore.cli.output import dump, ns_name, print_json, print_namespace_counts
from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    namespaces = commands.group(
        "namespaces",
        help="list and delete namespaces",
        description="Manage the namespaces of an index.",
    )
    p = namespaces.command("list", list_, "list namespaces and record counts")
    index_option(p)

    p = namespaces.command(
        "delete",
        delete,
        "delete a namespace and its records",
        "Delete a namespace and its records. Asks for confirmation unless --yes is given.",
    )
    p.add_argument(
        "namespace", type=namespace, metavar="NS", help=f"{DEFAULT_NAMESPACE_NAME}: the default"
    )
    index_option(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def list_(args: argparse.Namespace) -> int:
    index = open_index(args)
    found = sorted(index.list_namespaces(), key=lambda n: n.name)
    if args.json:
        print_json(dump(found))
    elif not found:
        print(f'No namespaces in index "{index.name}"')
    else:
        print_namespace_counts([(n.name, n.record_count) for n in found])
    return EXIT_OK


def delete(args: argparse.Namespace) -> int:
    index = open_index(args)
    index.describe_namespace(args.namespace)  # unknown namespace: exit 64 before asking
    shown = ns_name(args.namespace)
    if not args.yes and not confirm(
        f'Delete namespace "{shown}" of index "{index.name}" and its records?'
    ):
        print("Aborted: nothing deleted.", file=sys.stderr)
        return EXIT_FAILED
    index.delete_namespace(args.namespace)
    if args.json:
        print_json({"deleted": args.namespace, "index": index.name})
    else:
        print(f'Deleted namespace "{shown}" of index "{index.name}"')
    return EXIT_OK
