"""The ``vecstore`` command line (entry point ``vecstore.cli:main``).

Every command goes through the public API (:class:`vecstore.VecStore`); the
CLI adds argument parsing, output (tables, ``--json``) and exit codes::

    0    success; with ``import --wait``: the import Completed
    1    an error (storage, format...); with ``import --wait``: the import Failed
    2    ``import --wait``: the import was Cancelled (by someone else)
    3    ``import --timeout``: still running at the deadline (the CLI cancelled it)
    64   invalid arguments, unknown index, import or namespace, index already exists
    69   not available yet (``rebuild``, ``serve``, an engine not installed)
    130  interrupted (Ctrl-C); during an import the CLI cancelled it first
    143  terminated (SIGTERM) during an import; the CLI cancelled it first

``vecstore import`` always blocks until the import reaches a final status:
the import runs in this process's runner (the job's driver lives here even
when ``--scheduler`` names an external Dask cluster), so it ends with the
process. ``--wait`` adds the live progress display, a summary and an exit
status that reflects the outcome. See ``docs/cli.md``.

rich is imported inside the functions that draw, so importing this module
stays light. Storage options and integration credentials are never printed.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NoReturn

from vecstore import __version__
from vecstore.api import Index, VecStore
from vecstore.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYet,
    VecstoreError,
    WaitTimeoutError,
)
from vecstore.metrics import Metric
from vecstore.progress import (
    Display,
    LogDisplay,
    NoDisplay,
    ProgressTracker,
    RichDisplay,
    format_bytes,
    format_duration,
)
from vecstore.schemas import Cloud, ImportJob, VectorType

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_TIMEOUT = 3
EXIT_USAGE = 64  # EX_USAGE
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

STORE_ENV = "VECSTORE_STORE"
DEFAULT_STORE = "./vecstore-data"
DEFAULT_NAMESPACE_NAME = "__default__"  # how the default namespace "" is typed and shown

POLL_INTERVAL = 0.25  # seconds between describe_import calls while waiting (~4 Hz)
CANCEL_GRACE_SECONDS = 30.0  # after cancelling: how long to wait for the job to settle
IMPORTS_LIST_DEFAULT = 20

Handler = Callable[[argparse.Namespace], int]


# ================================================================= exit codes


def exit_code_for(job: ImportJob) -> int:
    """The exit status of ``import --wait`` for the job it waited for."""
    return {
        "Completed": EXIT_OK,
        "Failed": EXIT_FAILED,
        "Cancelled": EXIT_CANCELLED,
    }.get(job.status, EXIT_TIMEOUT)  # not final: the wait ended before the job did


def exit_code_for_error(exc: VecstoreError) -> int:
    if isinstance(exc, InvalidArgumentError | NotFoundError | AlreadyExistsError):
        return EXIT_USAGE
    if isinstance(exc, NotImplementedYet):
        return EXIT_UNAVAILABLE
    if isinstance(exc, WaitTimeoutError):
        return EXIT_TIMEOUT
    return EXIT_FAILED


# ===================================================================== parser


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 64 (EX_USAGE) for argument errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _storage_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        # the text may hold a secret: never echo it
        raise argparse.ArgumentTypeError("expected KEY=VALUE (the value is not shown)")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _json_value(text: str) -> Any:
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _namespace(text: str) -> str:
    return "" if text == DEFAULT_NAMESPACE_NAME else text


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
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
        type=_storage_option,
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
        "(default: $VECSTORE_CONFIG)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=default(None),
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: "
        "$VECSTORE_SCHEDULER, else a LocalCluster started by this process)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable JSON on stdout",
    )


EPILOG = """\
examples:
  vecstore indexes create docs --dimension 384 --metric cosine
  vecstore import s3://my-bucket/embeddings/ --index docs --integration-id my-s3 --wait
  vecstore imports list --index docs
  vecstore imports describe 17352000000000001a2b3c4d --index docs --json
  vecstore query --index docs --namespace articles --vector @query.json --top-k 5 \\
      --filter '{"genre": {"$eq": "drama"}}' --include-metadata
  vecstore --store s3://my-bucket/vecstore stats --index docs

Global options may also follow the command (vecstore indexes list --json).

exit codes:
  0    success; import --wait: the import Completed
  1    error; import --wait: the import Failed
  2    import --wait: the import was Cancelled
  3    import --timeout: the deadline passed (the import was cancelled)
  64   invalid arguments, unknown index / import / namespace, index exists
  69   not available yet (rebuild, serve)
  130  interrupted by Ctrl-C (a running import is cancelled first)
  143  import: terminated by SIGTERM (the import is cancelled first)

environment:
  VECSTORE_STORE        store root (instead of --store)
  VECSTORE_SCHEDULER    Dask scheduler address (instead of --scheduler)
  VECSTORE_CONFIG       integrations config file (instead of --config)
  VECSTORE_INTEGRATIONS integrations as inline JSON

See docs/cli.md for details.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vecstore",
        description="Bulk-import Parquet files from object storage into vector indexes,\n"
        "follow the import jobs, and query the indexes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vecstore {__version__}")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def leaf(
        group: Any, name: str, handler: Handler, help: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(
            name, help=help, description=description or help
        )
        p.set_defaults(handler=handler)
        return p

    def finish(p: argparse.ArgumentParser) -> None:
        _add_global_options(p, top=False)

    def index_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", required=True, metavar="NAME", help="the index")

    # ------------------------------------------------------------- indexes
    indexes = commands.add_parser(
        "indexes", help="create, list, describe and delete indexes", description="Manage indexes."
    ).add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    p = leaf(
        indexes,
        "create",
        cmd_indexes_create,
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
    finish(p)

    finish(leaf(indexes, "list", cmd_indexes_list, "list the indexes of the store"))

    p = leaf(indexes, "describe", cmd_indexes_describe, "show an index's settings")
    p.add_argument("name", metavar="NAME")
    finish(p)

    p = leaf(
        indexes,
        "delete",
        cmd_indexes_delete,
        "delete an index and all its data",
        "Delete an index, its namespaces and its import records. Running imports are "
        "cancelled first. Asks for confirmation unless --yes is given.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    finish(p)

    # -------------------------------------------------------------- import
    p = leaf(
        commands,
        "import",
        cmd_import,
        "import a directory of Parquet files into an index",
        "Start an import of URI (a directory with one sub-directory per namespace, "
        "__default__ for the default namespace, each holding .parquet files) and block "
        "until it reaches a final status: the import runs inside this process. It "
        "prints the import id at once and the final status at the end. With --wait it "
        "also shows live progress and a summary, and its exit status reflects the "
        "outcome (0 Completed, 1 Failed, 2 Cancelled). Ctrl-C cancels the import "
        "(exit 130).",
    )
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
        "--integration-id",
        metavar="ID",
        help="credentials for the source, from the integrations config (default: anonymous)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="show progress and a summary; exit 0 only if the import Completed",
    )
    p.add_argument("--no-progress", action="store_true", help="with --wait: no progress display")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="S",
        help="cancel the import and exit 3 if it has not finished after S seconds",
    )
    finish(p)

    # ------------------------------------------------------------- imports
    imports = commands.add_parser(
        "imports",
        help="list, describe and cancel imports",
        description="Follow and cancel import jobs.",
    ).add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    p = leaf(imports, "list", cmd_imports_list, "list imports, newest first")
    index_option(p)
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit",
        type=_positive_int,
        default=IMPORTS_LIST_DEFAULT,
        metavar="N",
        help=f"show the newest N (default: {IMPORTS_LIST_DEFAULT})",
    )
    how_many.add_argument("--all", action="store_true", help="show every import")
    finish(p)

    p = leaf(
        imports,
        "describe",
        cmd_imports_describe,
        "show every field of an import",
        "Show an import's record: status, phase, progress, records imported and skipped "
        "by reason, bytes read, per-namespace progress, the reject report location and "
        "the error.",
    )
    p.add_argument("id", metavar="ID")
    index_option(p)
    finish(p)

    p = leaf(
        imports,
        "cancel",
        cmd_imports_cancel,
        "cancel a running import",
        "Ask a running import to stop. It ends Cancelled, leaving no data visible; "
        "cancelling a finished import changes nothing.",
    )
    p.add_argument("id", metavar="ID")
    index_option(p)
    finish(p)

    # --------------------------------------------------------------- query
    p = leaf(
        commands,
        "query",
        cmd_query,
        "find the nearest records to a vector or a record id",
        "Query a namespace by a dense vector, a sparse vector (both: a hybrid query) or "
        "the id of a stored record. JSON arguments may be given as @PATH to read a file.",
    )
    index_option(p)
    p.add_argument(
        "--namespace",
        type=_namespace,
        default="",
        metavar="NS",
        help=f"default: the default namespace ({DEFAULT_NAMESPACE_NAME})",
    )
    p.add_argument("--vector", type=_json_value, metavar="JSON", help="dense vector: [0.1, ...]")
    p.add_argument(
        "--sparse",
        type=_json_value,
        metavar="JSON",
        help='sparse vector: {"indices": [1, 7], "values": [0.5, 0.2]}',
    )
    p.add_argument("--id", metavar="ID", help="query by the vector of this record")
    p.add_argument("--top-k", type=_positive_int, default=10, metavar="K", help="default: 10")
    p.add_argument(
        "--filter",
        type=_json_value,
        metavar="JSON",
        help='metadata filter: {"genre": {"$in": ["drama", "comedy"]}}',
    )
    p.add_argument("--include-values", action="store_true", help="show the vectors")
    p.add_argument("--include-metadata", action="store_true", help="show the metadata")
    p.add_argument(
        "--nprobe",
        type=_positive_int,
        metavar="N",
        help="clusters to search (default: chosen for high recall)",
    )
    finish(p)

    # ---------------------------------------------------------- namespaces
    namespaces = commands.add_parser(
        "namespaces",
        help="list and delete namespaces",
        description="Manage the namespaces of an index.",
    ).add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    p = leaf(namespaces, "list", cmd_namespaces_list, "list namespaces and record counts")
    index_option(p)
    finish(p)

    p = leaf(
        namespaces,
        "delete",
        cmd_namespaces_delete,
        "delete a namespace and its records",
        "Delete a namespace and its records. Asks for confirmation unless --yes is given.",
    )
    p.add_argument(
        "namespace", type=_namespace, metavar="NS", help=f"{DEFAULT_NAMESPACE_NAME}: the default"
    )
    index_option(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    finish(p)

    # --------------------------------------------------------------- stats
    p = leaf(commands, "stats", cmd_stats, "show record counts per namespace")
    index_option(p)
    finish(p)

    # ----------------------------------------------------- not yet available
    for name, what in (
        ("rebuild", "rebuild an index's clusters offline (not available yet)"),
        ("serve", "serve the Pinecone-compatible REST API (not available yet)"),
    ):
        leaf(commands, name, cmd_unavailable, what)  # any arguments: see main()

    return parser


# ===================================================================== output


def _print_json(value: Any) -> None:
    """One line of JSON: the last line of stdout is the whole document (Airflow XCom)."""
    print(json.dumps(value, ensure_ascii=False, default=str))


def _dump(obj: Any) -> Any:
    """A model (or a list of models) as JSON-ready data."""
    if isinstance(obj, list):
        return [_dump(o) for o in obj]
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if callable(dump) else obj


def _ts(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _without_userinfo(url: str) -> str:
    """``s3://KEY:SECRET@bucket`` -> ``s3://bucket``: a URL may carry credentials."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def _ns_name(namespace: str) -> str:
    return DEFAULT_NAMESPACE_NAME if namespace == "" else namespace


def _print_fields(rows: Sequence[tuple[str, str]], indent: str = "") -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        print(f"{indent}{key:<{width}}  {value}")


def _print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[str] = (),
    caption: str | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = sys.stdout
    console = Console(file=out, highlight=False, width=None if out.isatty() else 200)
    table = Table(box=None, header_style="bold", pad_edge=False, caption=caption)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


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


def _job_summary_rows(job: ImportJob) -> list[tuple[str, str]]:
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
    return rows


def _field_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


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
        else:
            rows.append((name, _field_text(value)))
        if name == "finished_at":
            rows.append(("duration", _duration(job)))
    _print_fields(rows)
    if job.namespaces:
        print()
        _print_table(
            ["NAMESPACE", "STATUS", "FILES", "BYTES", "READ", "IMPORTED", "SKIPPED"],
            [
                [
                    _ns_name(ns),
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


# ==================================================================== helpers


def open_store(args: argparse.Namespace) -> VecStore:
    """The VecStore the global options describe."""
    uri = args.store or os.environ.get(STORE_ENV) or DEFAULT_STORE
    options = dict(args.storage_options + getattr(args, "more_storage_options", []))
    return VecStore(
        uri,
        storage_options=options or None,
        scheduler_address=args.scheduler,
        config_path=args.config,
    )


def _open_index(args: argparse.Namespace) -> Index:
    return open_store(args).Index(args.index)


def _confirm(question: str) -> bool:
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise InvalidArgumentError(f"{question} Pass --yes to confirm (stdin is not a terminal).")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _pause(seconds: float) -> None:
    """The waiting loop's sleep (a seam for tests)."""
    time.sleep(seconds)


_runner_shutdown_registered = False


def _close_runners_at_exit() -> None:
    """Stop this process's runners (a LocalCluster) cleanly when it exits.

    Registered after the runner exists, so it runs before Dask's own exit
    hooks (atexit is last-in, first-out).
    """
    global _runner_shutdown_registered
    if not _runner_shutdown_registered:
        from vecstore.runners import close_runners

        atexit.register(close_runners)
        _runner_shutdown_registered = True


# =================================================================== commands


def cmd_indexes_create(args: argparse.Namespace) -> int:
    spec = open_store(args).create_index(
        name=args.name,
        dimension=args.dimension,
        metric=args.metric,
        vector_type=args.vector_type,
        cloud=args.cloud,
    )
    if args.json:
        _print_json(_dump(spec))
    else:
        dim = f"dimension {spec.dimension}, " if spec.dimension is not None else ""
        print(
            f'Created index "{spec.name}": {spec.kind}, {dim}metric {spec.metric}, '
            f"cloud {spec.cloud}"
        )
    return EXIT_OK


def cmd_indexes_list(args: argparse.Namespace) -> int:
    vs = open_store(args)
    specs = vs.list_indexes()
    if args.json:
        _print_json(_dump(specs))
    elif not specs:
        print(f"No indexes in {_without_userinfo(vs.store.url())}")
    else:
        _print_table(
            ["NAME", "KIND", "DIMENSION", "METRIC", "CLOUD", "CREATED"],
            [
                [s.name, s.kind, _field_text(s.dimension), s.metric, s.cloud, _ts(s.created_at)]
                for s in specs
            ],
            right=["DIMENSION"],
        )
    return EXIT_OK


def cmd_indexes_describe(args: argparse.Namespace) -> int:
    spec = open_store(args).describe_index(args.name)
    if args.json:
        _print_json(_dump(spec))
    else:
        rows = [(name, _field_text(getattr(spec, name))) for name in type(spec).model_fields]
        rows.insert(1, ("kind", spec.kind))
        _print_fields(rows)
    return EXIT_OK


def cmd_indexes_delete(args: argparse.Namespace) -> int:
    vs = open_store(args)
    vs.describe_index(args.name)  # unknown index: exit 64 before asking
    if not args.yes and not _confirm(f'Delete index "{args.name}" and all its data?'):
        print("Aborted: nothing deleted.", file=sys.stderr)
        return EXIT_FAILED
    vs.delete_index(args.name)
    if args.json:
        _print_json({"deleted": args.name})
    else:
        print(f'Deleted index "{args.name}"')
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    index = _open_index(args)
    try:
        op = index.start_import(
            uri=args.uri, integration_id=args.integration_id, error_mode=args.error_mode
        )
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(("vecstore.pipelines", "dask", "distributed")):
            raise
        raise NotImplementedYet(
            f"The import engine is not available (module {exc.name} is missing)"
        ) from None
    _close_runners_at_exit()
    if not args.json:
        print(f"Import started: {op.id}", flush=True)

    display = _display_for(args, op.id)
    outcome = wait_for_final(index, op.id, timeout=args.timeout, display=display)
    job = outcome.job

    if args.json:
        _print_json(_dump(job))
    elif args.wait:
        print()
        print(f"Import {job.id}")
        _print_fields(_job_summary_rows(job), indent="  ")
    else:
        detail = f": {job.error}" if job.error else ""
        print(f"Import {job.id} {job.status}{detail}")

    if outcome.signal is not None:
        what = "Terminated" if outcome.signal == signal.SIGTERM else "Interrupted"
        print(f"{what}: import {job.id} is {job.status}", file=sys.stderr)
        return 128 + outcome.signal
    if outcome.timed_out:
        print(
            f"Timed out after {format_duration(args.timeout)}: import {job.id} is {job.status}",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    return exit_code_for(job) if args.wait else EXIT_OK


def cmd_imports_list(args: argparse.Namespace) -> int:
    index = _open_index(args)
    jobs_iter = index.list_imports(limit=100 if args.all else min(100, args.limit + 1))
    if args.all:
        jobs = list(jobs_iter)
        more = False
    else:
        jobs = list(islice(jobs_iter, args.limit + 1))
        more = len(jobs) > args.limit
        jobs = jobs[: args.limit]
    if args.json:
        _print_json(_dump(jobs))
    elif not jobs:
        print(f'No imports in index "{index.name}"')
    else:
        _print_table(
            ["ID", "STATUS", "PHASE", "PERCENT", "IMPORTED", "SKIPPED", "CREATED", "URI"],
            [
                [
                    j.id,
                    j.status,
                    j.phase,
                    f"{j.percent_complete:.1f}%",
                    f"{j.records_imported:,}",
                    f"{j.records_skipped_total:,}",
                    _ts(j.created_at),
                    j.uri,
                ]
                for j in jobs
            ],
            right=["PERCENT", "IMPORTED", "SKIPPED"],
            caption=f"newest {len(jobs)} shown; --all lists every import" if more else None,
        )
    return EXIT_OK


def cmd_imports_describe(args: argparse.Namespace) -> int:
    job = _open_index(args).describe_import(args.id)
    if args.json:
        _print_json(_dump(job))
    else:
        _print_job(job)
    return EXIT_OK


def cmd_imports_cancel(args: argparse.Namespace) -> int:
    index = _open_index(args)
    before = index.describe_import(args.id)
    job = index.cancel_import(args.id)
    if args.json:
        _print_json(_dump(job))
    elif before.done:
        print(f"Import {job.id} already {job.status}: nothing to cancel")
    elif job.status == "Cancelled":
        print(f"Import {job.id} Cancelled")
    else:
        print(f"Import {job.id}: cancel requested (status {job.status}); it stops shortly")
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
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
    result = _open_index(args).query(**kwargs)
    if args.json:
        _print_json(_dump(result))
        return EXIT_OK
    matches = list(getattr(result, "matches", []))
    if not matches:
        print(f'No matches in namespace "{_ns_name(args.namespace)}"')
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
            row.append(_field_text(getattr(m, "metadata", None)))
        rows.append(row)
    _print_table(columns, rows, right=["#", "SCORE"])
    return EXIT_OK


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


def cmd_namespaces_list(args: argparse.Namespace) -> int:
    index = _open_index(args)
    namespaces = sorted(index.list_namespaces(), key=lambda n: n.name)
    if args.json:
        _print_json(_dump(namespaces))
    elif not namespaces:
        print(f'No namespaces in index "{index.name}"')
    else:
        _print_table(
            ["NAMESPACE", "RECORDS"],
            [[_ns_name(n.name), f"{n.record_count:,}"] for n in namespaces],
            right=["RECORDS"],
        )
    return EXIT_OK


def cmd_namespaces_delete(args: argparse.Namespace) -> int:
    index = _open_index(args)
    index.describe_namespace(args.namespace)  # unknown namespace: exit 64 before asking
    shown = _ns_name(args.namespace)
    if not args.yes and not _confirm(
        f'Delete namespace "{shown}" of index "{index.name}" and its records?'
    ):
        print("Aborted: nothing deleted.", file=sys.stderr)
        return EXIT_FAILED
    index.delete_namespace(args.namespace)
    if args.json:
        _print_json({"deleted": args.namespace, "index": index.name})
    else:
        print(f'Deleted namespace "{shown}" of index "{index.name}"')
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    index = _open_index(args)
    stats = index.describe_index_stats()
    if args.json:
        _print_json(_dump(stats))
        return EXIT_OK
    _print_fields(
        [
            ("index", index.name),
            ("kind", index.spec.kind),
            ("dimension", _field_text(stats.dimension)),
            ("metric", stats.metric),
            ("records", f"{stats.total_vector_count:,}"),
            ("namespaces", f"{len(stats.namespaces):,}"),
        ]
    )
    if stats.namespaces:
        print()
        _print_table(
            ["NAMESPACE", "RECORDS"],
            [[_ns_name(ns), f"{s.vector_count:,}"] for ns, s in sorted(stats.namespaces.items())],
            right=["RECORDS"],
        )
    return EXIT_OK


def cmd_unavailable(args: argparse.Namespace) -> int:
    raise NotImplementedYet(f"`vecstore {args.command}` is not available yet")


# ================================================================ waiting


class WaitOutcome:
    """How waiting for an import ended: ``signal`` is SIGINT or SIGTERM if one stopped it."""

    __slots__ = ("job", "signal", "timed_out")

    def __init__(
        self, job: ImportJob, *, timed_out: bool = False, signal: int | None = None
    ) -> None:
        self.job = job
        self.timed_out = timed_out
        self.signal = signal


class Terminated(KeyboardInterrupt):
    """SIGTERM while an import runs: handled like Ctrl-C (cancel, then exit)."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for_final(
    index: Index, job_id: str, *, timeout: float | None, display: Display
) -> WaitOutcome:
    """Poll the import until it is final; on timeout, Ctrl-C or SIGTERM cancel it.

    The job's driver lives in this process, so the CLI never leaves it
    running behind: it cancels the import and waits (up to
    ``CANCEL_GRACE_SECONDS``; a second signal stops that wait) for it to settle.
    """
    tracker = ProgressTracker()
    deadline = None if timeout is None else time.monotonic() + timeout
    with _sigterm_interrupts():
        try:
            with display:
                while True:
                    job = index.describe_import(job_id)
                    display.update(tracker.update(time.monotonic(), job))
                    if job.done:
                        return WaitOutcome(job)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    _pause(POLL_INTERVAL)
        except KeyboardInterrupt as exc:
            signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            what = "Terminated" if signum == signal.SIGTERM else "Interrupted"
            print(f"\n{what}: cancelling import {job_id} ...", file=sys.stderr)
            return WaitOutcome(_cancel_and_settle(index, job_id), signal=signum)
        print(f"Deadline reached: cancelling import {job_id} ...", file=sys.stderr)
        return WaitOutcome(_cancel_and_settle(index, job_id), timed_out=True)


def _cancel_and_settle(index: Index, job_id: str) -> ImportJob:
    job = index.cancel_import(job_id)
    deadline = time.monotonic() + CANCEL_GRACE_SECONDS
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C / SIGTERM: stop waiting
        while not job.done and time.monotonic() < deadline:
            _pause(POLL_INTERVAL)
            job = index.describe_import(job_id)
    return job


def _display_for(args: argparse.Namespace, job_id: str) -> Display:
    if not args.wait or args.no_progress:
        return NoDisplay()
    if sys.stderr.isatty():
        return RichDisplay(job_id)
    return LogDisplay()


# ======================================================================= main


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.handler is not cmd_unavailable:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, argument errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except VecstoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_for_error(exc)
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


__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "exit_code_for_error",
    "main",
    "wait_for_final",
]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
