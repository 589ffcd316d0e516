"""Waiting for an import: poll until final; on timeout, Ctrl-C or SIGTERM cancel it."""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator

from vecstore.api import Index
from vecstore.progress import Display, ProgressTracker
from vecstore.schemas import ImportJob

POLL_INTERVAL = 0.25  # seconds between describe_import calls while waiting (~4 Hz)
CANCEL_GRACE_SECONDS = 30.0  # after cancelling: how long to wait for the job to settle


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
                    pause(POLL_INTERVAL)
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
            pause(POLL_INTERVAL)
            job = index.describe_import(job_id)
    return job


def pause(seconds: float) -> None:
    """The waiting loop's sleep (a seam for tests)."""
    time.sleep(seconds)


_runner_shutdown_registered = False


def close_runners_at_exit() -> None:
    """Stop this process's runners (a LocalCluster) cleanly when it exits.

    Registered after the runner exists, so it runs before Dask's own exit
    hooks (atexit is last-in, first-out).
    """
    global _runner_shutdown_registered
    if not _runner_shutdown_registered:
        from vecstore.runners import close_runners

        atexit.register(close_runners)
        _runner_shutdown_registered = True
