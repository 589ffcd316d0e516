"""``vecstore load``: upsert (and delete) from a directory of Parquet files
into an index's namespaces, new or existing, skipping files already loaded.

A load is an import job with ``mode="upsert"`` (``Index.start_import``); it
runs in this process as ``vecstore import`` does, with the same ``--wait``,
progress, ``--timeout``, Ctrl-C / SIGTERM handling and exit statuses. See
``docs/cli.md`` ("Load") and ``docs/loads.md``.
"""

from __future__ import annotations

import argparse
from typing import Any

from vecstore.cli.commands.imports import _summary_rows, run_to_end, source_options
from vecstore.cli.options import open_index, positive_float
from vecstore.cli.registry import Commands
from vecstore.schemas import ImportJob

# counts a load may report beyond an import's (job attributes or ``report`` keys)
LOAD_COUNTS = (
    ("files_loaded", "files loaded"),
    ("files_skipped", "files skipped (loaded before)"),
    ("records_upserted", "records upserted"),
    ("ids_deleted", "ids deleted"),
    ("records_deleted", "records deleted"),
    ("prefixes_deleted", "prefixes deleted"),
)


def register(commands: Commands) -> None:
    p = commands.command(
        "load",
        start,
        "load (upsert and delete) Parquet files into an index, each file once",
        "Load URI (a directory with one sub-directory per namespace, __default__ for the "
        "default namespace, each holding .parquet files, and optionally a deletes/ "
        "folder of ids or id prefixes to delete) into an index. Namespaces may exist "
        "(a record replaces the record with the same id) or not; the whole load is "
        "all-or-nothing. Files the index already loaded (same path, size and etag or "
        "modification time) are skipped, so the same command can run every hour; "
        "--force loads them again. Like import it blocks until the load reaches a final "
        "status; with --wait it shows progress and a summary and exits 0 Completed, "
        "1 Failed, 2 Cancelled. See docs/loads.md.",
    )
    source_options(p, "--integration", "--integration-id")
    p.add_argument(
        "--force",
        action="store_true",
        help="load every file, also those the index loaded before (the load history "
        "still records them)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="show progress and a summary; exit 0 only if the load Completed",
    )
    p.add_argument("--no-progress", action="store_true", help="with --wait: no progress display")
    p.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="cancel the load and exit 3 if it has not finished after S seconds",
    )


def start(args: argparse.Namespace) -> int:
    index = open_index(args)
    return run_to_end(
        args,
        index,
        lambda: index.start_import(
            uri=args.uri,
            mode="upsert",
            error_mode=args.error_mode,
            integration_id=args.integration_id,
            force=args.force,
        ),
        "load",
        summary_rows,
    )


def summary_rows(job: ImportJob) -> list[tuple[str, str]]:
    """The import summary, then the counts a load reports beyond it."""
    rows = _summary_rows(job)
    report: dict[str, Any] = job.report or {}
    extra: list[tuple[str, str]] = []
    for name, label in LOAD_COUNTS:
        value = getattr(job, name, None)
        if value is None:
            value = report.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            extra.append((label, f"{value:,}"))
    at = next((i for i, (k, _) in enumerate(rows) if k == "records skipped"), len(rows) - 1)
    return rows[: at + 1] + extra + rows[at + 1 :]
