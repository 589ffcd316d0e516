"""``vecstore stats``."""

from __future__ import annotations

import argparse
from typing import Any

from vecstore.cli.exitcodes import EXIT_OK
from vecstore.cli.options import index_option, open_index
from vecstore.cli.output import (
    dump,
    field_text,
    ns_name,
    print_fields,
    print_json,
    print_namespace_counts,
    print_table,
)
from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    p = commands.command("stats", stats, "show record counts per namespace")
    index_option(p)


def stats(args: argparse.Namespace) -> int:
    index = open_index(args)
    result = index.describe_index_stats()
    drift = index.drift()
    if args.json:
        print_json({**dump(result), "drift": drift})
        return EXIT_OK
    print_fields(
        [
            ("index", index.name),
            ("kind", index.spec.record_layout),
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
    print_drift(index.name, drift)
    return EXIT_OK


def print_drift(index: str, drift: dict[str, dict[str, Any]]) -> None:
    """Drift per namespace, and a hint for those a rebuild would help (docs/rebuild.md)."""
    if not drift:
        return
    print()
    print_table(
        ["NAMESPACE", "ADDED SINCE TRAINING", "LARGEST/MEAN CLUSTER", "REBUILD"],
        [
            [
                ns_name(ns),
                "-" if d["added_fraction"] is None else f"{d['added_fraction']:.0%}",
                f"{d['largest_ratio']:.2f}",
                "advised" if d["rebuild_advised"] else "-",
            ]
            for ns, d in sorted(drift.items())
        ],
        right=["ADDED SINCE TRAINING", "LARGEST/MEAN CLUSTER"],
    )
    for ns, d in sorted(drift.items()):
        if d["rebuild_advised"]:
            print(
                f"hint: {ns_name(ns)}: {'; '.join(d['reasons'])}; run "
                f"`vecstore rebuild --index {index} --namespace {ns_name(ns)}`"
            )
