"""The stale / recovery / cancel policy of every job, in one place.

*Stale* has one definition: the age of a job's heartbeat (or, before its
first heartbeat, of its record) is greater than :func:`stale_seconds`. A
job that is not final and stale has lost its runner: whoever sees it first
(a waiter, ``describe_import``, a cancel, a new start, ``recover_imports``)
takes it over (:mod:`vecstore.jobs.lifecycle`).

The knobs are read through :mod:`vecstore.settings` when used, never at
import time; these functions are the one place the rest of the code asks.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime

from vecstore.schemas import Job
from vecstore.settings import settings

# A Pending job that no runner has started may be cancelled by anyone once
# it is this old: its runner (if any) picks a job up within moments.
UNSTARTED_GRACE_SECONDS = 5.0


def stale_seconds() -> float:
    """``VECSTORE_STALE_SECONDS``: heartbeat age past which a runner is presumed dead."""
    return settings().stale_seconds


def max_attempts() -> int:
    """``VECSTORE_MAX_ATTEMPTS``: attempts of a job whose runners keep dying."""
    return settings().max_attempts


def heartbeat_seconds() -> float:
    """``VECSTORE_HEARTBEAT_SECONDS``: how often a running job's heartbeat is written."""
    return settings().heartbeat_seconds


def record_retry_seconds() -> float:
    """``VECSTORE_RECORD_RETRY_SECONDS``: how long a runner keeps retrying to
    write a final job record (or clean up) while the store refuses writes."""
    return settings().record_retry_seconds


def runner_name() -> str:
    """Who runs (or took over) a job: ``host:pid:thread``."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def heartbeat_age(job: Job, now: datetime | None = None) -> float:
    """Seconds since the job's runner was last seen (its record's age before that)."""
    now = now or datetime.now(UTC)
    seen = job.heartbeat_at or job.created_at
    return (now - seen).total_seconds()


def is_stale(job: Job, now: datetime | None = None) -> bool:
    """The one definition: not final, and no heartbeat for :func:`stale_seconds`."""
    return not job.done and heartbeat_age(job, now) > stale_seconds()


def cancellable_now(job: Job, now: datetime | None = None) -> bool:
    """Whether a cancel may finish the job itself instead of asking its runner:
    the runner is lost (stale), or no runner has started the job after a grace."""
    if job.done:
        return False
    if is_stale(job, now):
        return True
    unstarted = job.status == "Pending" and job.runner is None
    return unstarted and heartbeat_age(job, now) > UNSTARTED_GRACE_SECONDS


__all__ = [
    "UNSTARTED_GRACE_SECONDS",
    "cancellable_now",
    "heartbeat_age",
    "heartbeat_seconds",
    "is_stale",
    "max_attempts",
    "record_retry_seconds",
    "runner_name",
    "stale_seconds",
]
