"""``vecstore stats``."""

from __future__ import annotations

import argparse

from vecstore.cli.exitcodes import EXIT_OK
from vecstore.cli.options import index_option, open_index
from vecstore.cli.output import dump, field_text, print_fields, print_json, print_namespace_counts
from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    p = commands.command("stats", stats, "show record counts per namespace")
    index_option(p)


def stats(args: argparse.Namespace) -> int:
    index = open_index(args)
    result = index.describe_index_stats()
    if args.json:
        print_json(dump(result))
        return EXIT_OK
    print_fields(
        [
            ("index", index.name),
            ("kind", index.spec.kind),
            ("dimension", field_text(result.dimension)),
            ("metric", result.metric),
            ("records", f"{result.total_vector_count:,}"),
            ("namespaces", f"{len(result.namespaces):,}"),
        ]
    )
    if result.namespaces:
        print()
        print_namespace_counts(
            [(ns, s.vector_count) for ns, s in sorted(result.namespaces.items())]
        )
    return EXIT_OK
