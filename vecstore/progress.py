"""What the CLI shows while an import runs: a pure model of polled job snapshots.

The CLI polls ``describe_import`` and hands each snapshot, with the time it was
observed, to a :class:`ProgressTracker`. :func:`progress_fields` turns a window
of such samples into the displayed fields (phase, percent, records/s, ETA).
That model does no IO and reads no clock: tests feed samples with made-up
times.

- *records* processed = records imported + skipped, or the sum of the
  per-namespace ``records_read`` if the runner reports that further along.
- *records/s* and *ETA* are measured over the last ``WINDOW_SECONDS`` of
  samples (all of them when there are fewer), so they follow the current phase
  rather than the average since the start. ETA extrapolates
  ``percent_complete``: it is the runner's overall fraction, and the only
  measure every phase moves.

The renderers at the end draw those fields on stderr: a rich live bar on a
terminal (:class:`RichDisplay`), plain lines for logs (:class:`LogDisplay`),
or nothing (:class:`NoDisplay`).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from vecstore.schemas import ImportJob

WINDOW_SECONDS = 15.0


@dataclass(frozen=True)
class Sample:
    """A job snapshot and when it was observed (seconds on any monotonic clock)."""

    at: float
    job: ImportJob


@dataclass(frozen=True)
class ProgressFields:
    """The displayed state of one import."""

    status: str
    phase: str
    percent: float
    records: int
    records_skipped: int
    records_per_second: float | None
    eta_seconds: float | None
    bytes_read: int
    bytes_total: int
    elapsed_seconds: float

    @property
    def rate_text(self) -> str:
        return format_rate(self.records_per_second)

    @property
    def eta_text(self) -> str:
        return format_duration(self.eta_seconds)


def records_processed(job: ImportJob) -> int:
    """Records the import has got through so far (imported or skipped)."""
    read = sum(ns.records_read for ns in job.namespaces.values())
    return max(job.records_imported + job.records_skipped_total, read)


def progress_fields(
    samples: Sequence[Sample],
    *,
    window_seconds: float = WINDOW_SECONDS,
    started_at: float | None = None,
) -> ProgressFields:
    """Displayed fields from samples in observation order (at least one).

    ``started_at`` is when the wait began (default: the first sample), for
    the elapsed time.
    """
    if not samples:
        raise ValueError("progress_fields needs at least one sample")
    last = samples[-1]
    job = last.job
    # baseline: the earliest sample inside the window, else the latest one before it
    base = samples[0]
    for s in samples[:-1]:
        base = s
        if last.at - s.at <= window_seconds:
            break
    dt = last.at - base.at

    rate: float | None = None
    eta: float | None = None
    if dt > 0:
        rate = max(0.0, (records_processed(job) - records_processed(base.job)) / dt)
        gained = job.percent_complete - base.job.percent_complete
        if gained > 0 and not job.done:
            eta = (100.0 - job.percent_complete) * dt / gained
    if job.status == "Completed":
        eta = 0.0
    return ProgressFields(
        status=job.status,
        phase=job.phase,
        percent=job.percent_complete,
        records=records_processed(job),
        records_skipped=job.records_skipped_total,
        records_per_second=rate,
        eta_seconds=eta,
        bytes_read=job.bytes_read,
        bytes_total=job.bytes_total,
        elapsed_seconds=last.at - (samples[0].at if started_at is None else started_at),
    )


class ProgressTracker:
    """Feeds :func:`progress_fields` a window of samples, not the whole run."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS) -> None:
        self.window_seconds = window_seconds
        self._started_at: float | None = None
        self._recent: deque[Sample] = deque()

    def update(self, at: float, job: ImportJob) -> ProgressFields:
        if self._started_at is None:
            self._started_at = at
        self._recent.append(Sample(at, job))
        # keep one sample older than the window: the baseline after a slow poll
        while len(self._recent) > 2 and at - self._recent[1].at > self.window_seconds:
            self._recent.popleft()
        return progress_fields(
            list(self._recent), window_seconds=self.window_seconds, started_at=self._started_at
        )


def format_rate(records_per_second: float | None) -> str:
    if records_per_second is None:
        return "– rec/s"
    if records_per_second >= 10_000:
        return f"{records_per_second / 1000:,.0f}k rec/s"
    if records_per_second >= 100:
        return f"{records_per_second:,.0f} rec/s"
    return f"{records_per_second:.1f} rec/s"


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# ================================================================ renderers
# What the CLI draws on stderr while it waits; rich is imported only when drawing.

LOG_EVERY_SECONDS = 30.0  # plain progress lines (stderr not a terminal): at most this often


class Display(Protocol):
    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(self, fields: ProgressFields) -> None: ...


class NoDisplay:
    def __enter__(self) -> NoDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, fields: ProgressFields) -> None:
        return None


class LogDisplay(NoDisplay):
    """Plain lines on stderr (logs of cron, Airflow): on a phase change and every 30 s."""

    def __init__(self) -> None:
        self._last_key: tuple[str, str] | None = None
        self._last_at = 0.0

    def update(self, fields: ProgressFields) -> None:
        key = (fields.status, fields.phase)
        now = time.monotonic()
        if key == self._last_key and now - self._last_at < LOG_EVERY_SECONDS:
            return
        self._last_key, self._last_at = key, now
        print(progress_line(fields), file=sys.stderr, flush=True)


def progress_line(f: ProgressFields) -> str:
    line = (
        f"[{format_duration(f.elapsed_seconds):>6}] {f.status:<10} {f.phase:<10} {f.percent:5.1f}%"
    )
    line += f"  {f.records:,} records  {f.rate_text}  ETA {f.eta_text}"
    if f.bytes_total:
        line += f"  {format_bytes(f.bytes_read)} / {format_bytes(f.bytes_total)}"
    return line


class RichDisplay(NoDisplay):
    """A live progress bar on stderr (a terminal)."""

    def __init__(self, job_id: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]{task.fields[phase]:<10}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[records]} rec"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[dim]{task.fields[elapsed]}"),
            console=Console(file=sys.stderr),
        )
        self._task = self._progress.add_task(
            job_id, total=100, phase="pending", records="0", rate="–", eta="–", elapsed="0s"
        )

    def __enter__(self) -> RichDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, fields: ProgressFields) -> None:
        self._progress.update(
            self._task,
            completed=fields.percent,
            phase=fields.phase,
            records=f"{fields.records:,}",
            rate=fields.rate_text,
            eta=fields.eta_text,
            elapsed=format_duration(fields.elapsed_seconds),
        )


__all__ = [
    "LOG_EVERY_SECONDS",
    "WINDOW_SECONDS",
    "Display",
    "LogDisplay",
    "NoDisplay",
    "ProgressFields",
    "ProgressTracker",
    "RichDisplay",
    "Sample",
    "format_bytes",
    "format_duration",
    "format_rate",
    "progress_fields",
    "progress_line",
    "records_processed",
]
