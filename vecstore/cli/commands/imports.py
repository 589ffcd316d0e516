"""``vecstore import`` and ``vecstore imports list|describe|cancel``.

``vecstore import`` always blocks until the import reaches a final status:
the import runs in this process's runner (the job's driver lives here even
when ``--scheduler`` names an external Dask cluster), so it ends with the
process. ``--wait`` adds the live progress display, a summary and an exit
status that reflects the outcome. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from itertools import islice
from typing import Any

from vecstore.cli import waiting
from vecstore.cli.exitcodes import EXIT_OK, EXIT_TIMEOUT, exit_code_for
from vecstore.cli.options import index_option, open_index, positive_float, positive_int
from vecstore.cli.output import (
    dump,
    field_text,
    ns_name,
    print_fields,
    print_json,
    print_table,
    ts,
)
from vecstore.cli.registry import Commands
from vecstore.errors import NotImplementedYet
from vecstore.progress import (
    Display,
    LogDisplay,
    NoDisplay,
    RichDisplay,
    format_bytes,
    format_duration,
)
from vecstore.schemas import ImportJob

LIST_DEFAULT = 20


def register(commands: Commands) -> None:
    p = commands.command(
        "import",
        start,
        "import a directory of Parquet files into an index",
        "Start an import of URI (a directory with one sub-directory per namespace, "
        "__default__ for the default namespace, each holding .parquet files) and block "
        "until it reaches a final status: the import runs inside this process. It "
        "prints the import id at once and the final status at the end. With --wait it "
        "also shows live progress and a summary, and its exit status reflects the "
        "outcome (0 Completed, 1 Failed, 2 Cancelled). Ctrl-C cancels the import "
        "(exit 130).",
    )
    source_options(p, "--integration-id")
    p.add_argument(
        "--wait",
        action="store_true",
        help="show progress and a summary; exit 0 only if the import Completed",
    )
    p.add_argument("--no-progress", action="store_true", help="with --wait: no progress display")
    p.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="cancel the import and exit 3 if it has not finished after S seconds",
    )

    imports = commands.group(
        "imports",
        help="list, describe and cancel imports",
        description="Follow and cancel import jobs.",
    )
    p = imports.command("list", list_, "list imports, newest first")
    index_option(p)
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit",
        type=positive_int,
        default=LIST_DEFAULT,
        metavar="N",
        help=f"show the newest N (default: {LIST_DEFAULT})",
    )
    how_many.add_argument("--all", action="store_true", help="show every import")

    p = imports.command(
        "describe",
        describe,
        "show every field of an import",
        "Show an import's record: status, phase, progress, records imported and skipped "
        "by reason, bytes read, per-namespace progress, the reject report location and "
        "the error.",
    )
    p.add_argument("id", metavar="ID")
    index_option(p)

    p = imports.command(
        "cancel",
        cancel,
        "cancel a running import",
        "Ask a running import to stop. It ends Cancelled, leaving no data visible; "
        "cancelling a finished import changes nothing.",
    )
    p.add_argument("id", metavar="ID")
    index_option(p)


def source_options(p: argparse.ArgumentParser, *integration_flags: str) -> None:
    """The URI, ``--index``, ``--error-mode`` and the integration option of a
    job that reads an import directory (``import``, ``load``)."""
    p.add_argument(
        "uri",
        metavar="URI",
        help="s3://, gs://, az://, https://ACCOUNT.blob.core."
        "windows.net/CONTAINER/DIR, memory:// or a local directory",
    )
    index_option(p)
    p.add_argument(
        "--error-mode",
        choices=["continue", "abort"],
        default="continue",
        help="continue: skip invalid records and report them; abort: fail at the first "
        "(default: continue)",
    )
    p.add_argument(
        *integration_flags,
        dest="integration_id",
        metavar="ID",
        help="credentials for the source, from the integrations config (default: anonymous)",
    )


# ================================================================= commands


def start(args: argparse.Namespace) -> int:
    index = open_index(args)
    return run_to_end(
        args,
        index,
        lambda: index.start_import(
            uri=args.uri, integration_id=args.integration_id, error_mode=args.error_mode
        ),
        "import",
        _summary_rows,
    )


def run_to_end(
    args: argparse.Namespace,
    index: Any,
    begin: Callable[[], Any],
    noun: str,
    summary: Callable[[ImportJob], list[tuple[str, str]]],
) -> int:
    """Start a job (``begin``: an import or a load), follow it as the options
    say (``--wait``, ``--timeout``, ``--json``, progress) and return the exit
    status: the job's with ``--wait``, 128 + the signal on an interrupt."""
    try:
        op = begin()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(("vecstore.pipelines", "dask", "distributed")):
            raise
        raise NotImplementedYet(
            f"The import engine is not available (module {exc.name} is missing)"
        ) from None
    waiting.close_runners_at_exit()
    title = noun.capitalize()
    if not args.json:
        print(f"{title} started: {op.id}", flush=True)

    display = _display_for(args, op.id)
    outcome = waiting.wait_for_final(index, op.id, timeout=args.timeout, display=display)
    job = outcome.job

    if args.json:
        print_json(dump(job))
    elif args.wait:
        print()
        print(f"{title} {job.id}")
        print_fields(summary(job), indent="  ")
    else:
        detail = f": {job.error}" if job.error else ""
        print(f"{title} {job.id} {job.status}{detail}")

    if outcome.signal is not None:
        what = "Terminated" if outcome.signal == signal.SIGTERM else "Interrupted"
        print(f"{what}: {noun} {job.id} is {job.status}", file=sys.stderr)
        return 128 + outcome.signal
    if outcome.timed_out:
        print(
            f"Timed out after {format_duration(args.timeout)}: {noun} {job.id} is {job.status}",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    return exit_code_for(job) if args.wait else EXIT_OK


def list_(args: argparse.Namespace) -> int:
    index = open_index(args)
    jobs_iter = index.list_imports(limit=100 if args.all else min(100, args.limit + 1))
    if args.all:
        jobs = list(jobs_iter)
        more = False
    else:
        jobs = list(islice(jobs_iter, args.limit + 1))
        more = len(jobs) > args.limit
        jobs = jobs[: args.limit]
    if args.json:
        print_json(dump(jobs))
    elif not jobs:
        print(f'No imports in index "{index.name}"')
    else:
        print_table(
            ["ID", "STATUS", "PHASE", "PERCENT", "IMPORTED", "SKIPPED", "CREATED", "URI"],
            [
                [
                    j.id,
                    j.status,
                    j.phase,
                    f"{j.percent_complete:.1f}%",
                    f"{j.records_imported:,}",
                    f"{j.records_skipped_total:,}",
                    ts(j.created_at),
                    j.uri,
                ]
                for j in jobs
            ],
            right=["PERCENT", "IMPORTED", "SKIPPED"],
            caption=f"newest {len(jobs)} shown; --all lists every import" if more else None,
        )
    return EXIT_OK


def describe(args: argparse.Namespace) -> int:
    job = open_index(args).describe_import(args.id)
    if args.json:
        print_json(dump(job))
    else:
        _print_job(job)
    return EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    index = open_index(args)
    before = index.describe_import(args.id)
    job = index.cancel_import(args.id)
    if args.json:
        print_json(dump(job))
    elif before.done:
        print(f"Import {job.id} already {job.status}: nothing to cancel")
    elif job.status == "Cancelled":
        print(f"Import {job.id} Cancelled")
    else:
        print(f"Import {job.id}: cancel requested (status {job.status}); it stops shortly")
    return EXIT_OK


# ================================================================== output


def _display_for(args: argparse.Namespace, job_id: str) -> Display:
    if not args.wait or args.no_progress:
        return NoDisplay()
    if sys.stderr.isatty():
        return RichDisplay(job_id)
    return LogDisplay()


def _skipped_text(job: ImportJob) -> str:
    total = job.records_skipped_total
    if not job.records_skipped:
        return f"{total:,}"
    reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(job.records_skipped.items()))
    return f"{total:,} ({reasons})"


def _duration(job: ImportJob) -> str:
    if job.finished_at is None:
        return "-"
    return format_duration((job.finished_at - job.created_at).total_seconds())


def _summary_rows(job: ImportJob) -> list[tuple[str, str]]:
    rows = [
        ("status", job.status),
        ("uri", job.uri),
        ("duration", _duration(job)),
        ("records imported", f"{job.records_imported:,}"),
        ("records skipped", _skipped_text(job)),
    ]
    if job.records_skipped_total and job.rejects_uri:
        rows.append(("rejects", job.rejects_uri))
    if job.error:
        rows.append(("error", job.error))
    quality = _quality_text(job)
    if quality is not None:
        rows.append(("quality", quality))
    return rows


def _quality(job: ImportJob) -> dict[str, Any] | None:
    q = (job.report or {}).get("quality")
    return q if isinstance(q, dict) else None


def _spread(s: Any) -> str:
    if not isinstance(s, dict):
        return "-"
    if s["min"] == s["max"]:
        return f"{s['min']:.3f}"
    return f"{s['min']:.3f} / {s['median']:.3f} / {s['max']:.3f} (min / median / max)"


def _quality_text(job: ImportJob) -> str | None:
    """One line of the figures in ``report["quality"]`` (docs/quality.md)."""
    q = _quality(job)
    if q is None:
        return None
    if q.get("error"):
        return str(q["error"])
    parts = []
    if q.get("recall_at_10"):
        n = q.get("recall_namespaces", 0)
        parts.append(
            f"recall@10 {_spread(q['recall_at_10'])}, estimated in {n:,} namespace"
            + ("s" if n != 1 else "")
        )
    if q.get("balance_ratio"):
        parts.append(f"largest / mean cluster {_spread(q['balance_ratio'])}")
    return "; ".join(parts) or "-"


def _print_quality(q: dict[str, Any]) -> None:
    shown = q.get("by_namespace") or {}
    if not shown:
        return
    print()
    more = int(q.get("namespaces", 0)) - len(shown)
    print_table(
        ["NAMESPACE", "RECORDS", "CLUSTERS", "LARGEST", "MEAN", "SMALLEST", "RATIO", "RECALL@10"],
        [
            [
                ns_name(ns),
                f"{f.get('records', 0):,}",
                f"{f.get('clusters', 0):,}",
                f"{f.get('largest', 0):,}",
                f"{f.get('mean', 0):,.1f}",
                f"{f.get('smallest', 0):,}",
                f"{f.get('ratio', 0):.3f}",
                _recall_cell(f),
            ]
            for ns, f in shown.items()
        ],
        right=["RECORDS", "CLUSTERS", "LARGEST", "MEAN", "SMALLEST", "RATIO", "RECALL@10"],
        caption=f"the {len(shown)} largest namespaces; {more:,} more" if more > 0 else None,
    )


def _recall_cell(f: dict[str, Any]) -> str:
    r = f.get("recall_at_10")
    if r is None:
        return "-"
    how = "exact scan" if f.get("exact") else f"nprobe {f.get('nprobe')}"
    return f"{r:.3f} ({how})"


def _print_job(job: ImportJob) -> None:
    """Every field of a job record, then its per-namespace progress."""
    rows: list[tuple[str, str]] = []
    for name in type(job).model_fields:
        value = getattr(job, name)
        if name == "records_skipped":
            rows.append((name, _skipped_text(job)))
        elif name == "namespaces":
            rows.append((name, f"{len(value):,}" + (" (below)" if value else "")))
        elif name in ("bytes_read", "bytes_total"):
            rows.append((name, f"{value:,} ({format_bytes(value)})"))
        elif name == "percent_complete":
            rows.append((name, f"{value:.1f}%"))
        elif name == "report" and _quality(job) is not None:
            rest = {k: v for k, v in (value or {}).items() if k != "quality"}
            if rest:
                rows.append((name, field_text(rest)))
            rows.append(("quality", _quality_text(job) or "-"))
        else:
            rows.append((name, field_text(value)))
        if name == "finished_at":
            rows.append(("duration", _duration(job)))
    print_fields(rows)
    if job.namespaces:
        print()
        print_table(
            ["NAMESPACE", "STATUS", "FILES", "BYTES", "READ", "IMPORTED", "SKIPPED"],
            [
                [
                    ns_name(ns),
                    p.status,
                    f"{p.files:,}",
                    f"{format_bytes(p.bytes_read)} / {format_bytes(p.bytes_total)}",
                    f"{p.records_read:,}",
                    f"{p.records_imported:,}",
                    f"{p.records_skipped:,}",
                ]
                for ns, p in sorted(job.namespaces.items())
            ],
            right=["FILES", "BYTES", "READ", "IMPORTED", "SKIPPED"],
        )
    q = _quality(job)
    if q is not None:
        _print_quality(q)
