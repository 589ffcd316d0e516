"""``vecstore indexes create|list|describe|delete``."""

from __future__ import annotations

import argparse
import sys

from vecstore.cli.exitcodes import EXIT_FAILED, EXIT_OK
from vecstore.cli.options import confirm, open_store
from vecstore.cli.output import (
    dump,
    field_text,
    print_fields,
    print_json,
    print_table,
    ts,
    without_userinfo,
)
from vecstore.cli.registry import Commands
from vecstore.schemas import Cloud, VectorType
from vecstore.schemas.metrics import Metric


def register(commands: Commands) -> None:
    indexes = commands.group(
        "indexes", help="create, list, describe and delete indexes", description="Manage indexes."
    )
    p = indexes.command(
        "create",
        create,
        "create an index",
        "Create an index. Dense indexes need --dimension; sparse indexes take none and "
        "use the dotproduct metric. A dense index with metric dotproduct also takes "
        "sparse values (a hybrid index).",
    )
    p.add_argument("name", metavar="NAME", help="1-45 lowercase letters, digits or hyphens")
    p.add_argument("--dimension", type=int, metavar="D", help="vector dimension (dense: 1-20000)")
    p.add_argument(
        "--metric",
        choices=[m.value for m in Metric],
        help="similarity metric (default: cosine; sparse: dotproduct)",
    )
    p.add_argument(
        "--vector-type", choices=[t.value for t in VectorType], default="dense", help="default: dense"
    )
    p.add_argument(
        "--cloud",
        choices=[c.value for c in Cloud],
        default="aws",
        help="where the index is hosted; decides which sources it may import from (default: aws)",
    )

    indexes.command("list", list_, "list the indexes of the store")

    p = indexes.command("describe", describe, "show an index's settings")
    p.add_argument("name", metavar="NAME")

    p = indexes.command(
        "delete",
        delete,
        "delete an index and all its data",
        "Delete an index, its namespaces and its import records. Running imports are "
        "cancelled first. Asks for confirmation unless --yes is given.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def create(args: argparse.Namespace) -> int:
    spec = open_store(args).create_index(
        name=args.name,
        dimension=args.dimension,
        metric=args.metric,
        vector_type=args.vector_type,
        cloud=args.cloud,
    )
    if args.json:
        print_json(dump(spec))
    else:
        dim = f"dimension {spec.dimension}, " if spec.dimension is not None else ""
        print(
            f'Created index "{spec.name}": {spec.record_layout}, {dim}metric {spec.metric}, '
            f"cloud {spec.cloud}"
        )
    return EXIT_OK


def list_(args: argparse.Namespace) -> int:
    vs = open_store(args)
    specs = vs.list_indexes()
    if args.json:
        print_json(dump(specs))
    elif not specs:
        print(f"No indexes in {without_userinfo(vs.store.url())}")
    else:
        print_table(
            ["NAME", "KIND", "DIMENSION", "METRIC", "CLOUD", "CREATED"],
            [
                [s.name, s.record_layout, field_text(s.dimension), s.metric, s.cloud, ts(s.created_at)]
                for s in specs
            ],
            right=["DIMENSION"],
        )
    return EXIT_OK


def describe(args: argparse.Namespace) -> int:
    spec = open_store(args).describe_index(args.name)
    if args.json:
        print_json(dump(spec))
    else:
        rows = [(name, field_text(getattr(spec, name))) for name in type(spec).model_fields]
        rows.insert(1, ("kind", spec.record_layout))
        print_fields(rows)
    return EXIT_OK


def delete(args: argparse.Namespace) -> int:
    vs = open_store(args)
    vs.describe_index(args.name)  # unknown index: exit 64 before asking
    if not args.yes and not confirm(f'Delete index "{args.name}" and all its data?'):
        print("Aborted: nothing deleted.", file=sys.stderr)
        return EXIT_FAILED
    vs.delete_index(args.name)
    if args.json:
        print_json({"deleted": args.name})
    else:
        print(f'Deleted index "{args.name}"')
    return EXIT_OK
