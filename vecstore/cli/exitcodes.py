"""The exit statuses of ``vecstore``: defined once, here.

``vecstore --help`` and the table in ``docs/cli.md`` are rendered from
:data:`TABLE` (a test checks the doc); ``{planned}`` in a text stands for the
commands that are not available yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vecstore.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYet,
    VecstoreError,
    WaitTimeoutError,
)
from vecstore.schemas import ImportJob

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_TIMEOUT = 3
EXIT_USAGE = 64  # EX_USAGE
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


@dataclass(frozen=True)
class ExitCode:
    code: int
    help: str  # its line in `vecstore --help`
    doc: str  # its row in docs/cli.md (Markdown)


TABLE: tuple[ExitCode, ...] = (
    ExitCode(
        EXIT_OK,
        "success; import/load --wait: the job Completed",
        "success; `import --wait`, `load --wait`: the job Completed; without `--wait`: it "
        "reached a final status",
    ),
    ExitCode(
        EXIT_FAILED,
        "error; import/load --wait: the job Failed",
        "an error (storage unreachable, stored data invalid…); `import --wait`, `load --wait`: "
        "the job Failed; a declined confirmation",
    ),
    ExitCode(
        EXIT_CANCELLED,
        "import/load --wait: the job was Cancelled",
        "`import --wait`, `load --wait`: the job was Cancelled (by someone else, e.g. "
        "`imports cancel`)",
    ),
    ExitCode(
        EXIT_TIMEOUT,
        "import/load --timeout: the deadline passed (the job was cancelled)",
        "`import --timeout`, `load --timeout`: the deadline passed; the CLI cancelled the job",
    ),
    ExitCode(
        EXIT_USAGE,
        "invalid arguments, unknown index / import / namespace, index exists",
        "invalid arguments or options (`EX_USAGE`), unknown index, import or namespace, "
        "index already exists, unknown integration, a malformed `VECSTORE_*` variable, a "
        "destructive command without `--yes` and without a terminal",
    ),
    ExitCode(
        EXIT_UNAVAILABLE,
        "not available{planned}",
        "not available (`EX_UNAVAILABLE`): {planned}an engine that is not installed",
    ),
    ExitCode(
        EXIT_INTERRUPTED,
        "interrupted by Ctrl-C (a running import or load is cancelled first)",
        "interrupted by Ctrl-C; a running import or load was cancelled first",
    ),
    ExitCode(
        EXIT_TERMINATED,
        "import/load: terminated by SIGTERM (the job is cancelled first)",
        "`import`, `load`: terminated by SIGTERM; the job was cancelled first",
    ),
)


def help_text(planned: Sequence[str]) -> str:
    """The ``exit codes:`` section of ``vecstore --help``."""
    names = f" yet ({', '.join(planned)})" if planned else " (an engine that is not installed)"
    lines = [f"  {e.code:<4} {e.help.format(planned=names)}" for e in TABLE]
    return "exit codes:\n" + "\n".join(lines) + "\n"


def markdown(planned: Sequence[str]) -> str:
    """The exit-code table of ``docs/cli.md``."""
    names = "".join(f"`{name}`, " for name in planned)
    if names:
        names = f"not yet: {names}or "
    rows = [f"| {e.code} | {e.doc.format(planned=names)} |" for e in TABLE]
    return "\n".join(["| code | meaning |", "| --- | --- |", *rows]) + "\n"


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
