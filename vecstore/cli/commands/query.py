"""``vecstore query``."""

from __future__ import annotations

import argparse
from typing import Any

from vecstore.cli.exitcodes import EXIT_OK
from vecstore.cli.options import (
    DEFAULT_NAMESPACE_NAME,
    index_option,
    json_value,
    namespace,
    open_index,
    positive_int,
)
from vecstore.cli.output import dump, field_text, ns_name, print_json, print_table
from vecstore.cli.registry import Commands
from vecstore.errors import InvalidArgumentError


def register(commands: Commands) -> None:
    p = commands.command(
        "query",
        query,
        "find the nearest records to a vector or a record id",
        "Query a namespace by a dense vector, a sparse vector (both: a hybrid query) or "
        "the id of a stored record. JSON arguments may be given as @PATH to read a file.",
    )
    index_option(p)
    p.add_argument(
        "--namespace",
        type=namespace,
        default="",
        metavar="NS",
        help=f"default: the default namespace ({DEFAULT_NAMESPACE_NAME})",
    )
    p.add_argument("--vector", type=json_value, metavar="JSON", help="dense vector: [0.1, ...]")
    p.add_argument(
        "--sparse",
        type=json_value,
        metavar="JSON",
        help='sparse vector: {"indices": [1, 7], "values": [0.5, 0.2]}',
    )
    p.add_argument("--id", metavar="ID", help="query by the vector of this record")
    p.add_argument("--top-k", type=positive_int, default=10, metavar="K", help="default: 10")
    p.add_argument(
        "--filter",
        type=json_value,
        metavar="JSON",
        help='metadata filter: {"genre": {"$in": ["drama", "comedy"]}}',
    )
    p.add_argument("--include-values", action="store_true", help="show the vectors")
    p.add_argument("--include-metadata", action="store_true", help="show the metadata")
    p.add_argument(
        "--nprobe",
        type=positive_int,
        metavar="N",
        help="clusters to search (default: chosen for high recall)",
    )


def query(args: argparse.Namespace) -> int:
    _check(args)
    kwargs: dict[str, Any] = {
        "namespace": args.namespace,
        "top_k": args.top_k,
        "include_values": args.include_values,
        "include_metadata": args.include_metadata,
    }
    optional = {
        "vector": args.vector,
        "sparse_vector": args.sparse,
        "id": args.id,
        "filter": args.filter,
        "nprobe": args.nprobe,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    result = open_index(args).query(**kwargs)
    if args.json:
        print_json(dump(result))
        return EXIT_OK
    matches = list(getattr(result, "matches", []))
    if not matches:
        print(f'No matches in namespace "{ns_name(args.namespace)}"')
        return EXIT_OK
    columns = ["#", "ID", "SCORE"]
    if args.include_values:
        columns.append("VALUES")
    if args.include_metadata:
        columns.append("METADATA")
    rows = []
    for rank, m in enumerate(matches, 1):
        row = [str(rank), str(m.id), f"{m.score:.6f}"]
        if args.include_values:
            row.append(_values_text(m))
        if args.include_metadata:
            row.append(field_text(getattr(m, "metadata", None)))
        rows.append(row)
    print_table(columns, rows, right=["#", "SCORE"])
    return EXIT_OK


def _check(args: argparse.Namespace) -> None:
    if args.id is not None and (args.vector is not None or args.sparse is not None):
        raise InvalidArgumentError("Give either --id or --vector / --sparse, not both")
    if args.id is None and args.vector is None and args.sparse is None:
        raise InvalidArgumentError("A query needs --vector, --sparse or --id")
    if args.vector is not None and not isinstance(args.vector, list):
        raise InvalidArgumentError("--vector must be a JSON list of numbers")
    if args.sparse is not None and not isinstance(args.sparse, dict):
        raise InvalidArgumentError(
            '--sparse must be a JSON object {"indices": [...], "values": [...]}'
        )
    if args.filter is not None and not isinstance(args.filter, dict):
        raise InvalidArgumentError("--filter must be a JSON object")


def _values_text(match: Any, shown: int = 4) -> str:
    parts = []
    values = getattr(match, "values", None)
    if values:
        head = ", ".join(f"{v:.4g}" for v in values[:shown])
        parts.append(f"[{head}{', …' if len(values) > shown else ''}] ({len(values)})")
    sparse = getattr(match, "sparse_values", None)
    if sparse is not None:
        pairs = ", ".join(
            f"{i}: {v:.4g}"
            for i, v in list(zip(sparse.indices, sparse.values, strict=False))[:shown]
        )
        more = ", …" if len(sparse.indices) > shown else ""
        parts.append(f"sparse {{{pairs}{more}}} ({len(sparse.indices)})")
    return " ".join(parts) or "-"
