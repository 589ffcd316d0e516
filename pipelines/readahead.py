"""Whole-file reads of small source files, issued ahead on remote sources.

A task that reads many small files one after another (footer inspection,
the k-means sample, the scan, a packed task) waits one request latency per
file on an object store: 10-50 ms on S3, so 100,000 files cost minutes per
pass whatever the cluster. :class:`ReadAhead` stands in for the task's
source: it knows the keys the task will read whole, in order, and keeps up
to ``window`` of those reads in flight on a small thread pool, so their
latencies overlap. The task's code is unchanged: it calls ``read_bytes``
as before and gets the bytes (or the error) the plain call would have
given, in its own order, so errors, cancel checks and results stay the
same. Retries stay inside each ``read_bytes``.

On local disk (``Store.is_remote`` false) nothing changes: reads there are
served in tens of microseconds, and a thread hand-off costs more than it
saves (docs/scale.md "Remote small files read ahead").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from vecstore.storage import Store

__all__ = ["ReadAhead", "read_ahead"]


class ReadAhead:
    """``source``, with ``read_bytes`` of ``keys`` issued ahead (see module).

    A key read that is not the next expected one is served from its pending
    read if there is one, else read directly; reads issued and never asked
    for (a caller that fell back to another path) are dropped at
    :meth:`close`. Not shared between threads: one task's reads."""

    def __init__(self, source: Store, keys: Iterable[str], threads: int) -> None:
        self._source = source
        self._keys = deque(keys)
        self._threads = threads
        self._window = 2 * threads
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, deque[Future[bytes]]] = {}
        self._in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def read_bytes(self, key: str) -> bytes:
        queued = self._pending.get(key)
        if not queued:
            self._fill()
            queued = self._pending.get(key)
        if not queued:
            if key in self._keys:  # asked out of order: not read twice
                self._keys.remove(key)
            return self._source.read_bytes(key)
        fut = queued.popleft()
        if not queued:
            del self._pending[key]
        self._in_flight -= 1
        self._fill()
        return fut.result()

    def _fill(self) -> None:
        while self._keys and self._in_flight < self._window:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="vecstore-read")
            key = self._keys.popleft()
            self._pending.setdefault(key, deque()).append(
                self._pool.submit(self._source.read_bytes, key)
            )
            self._in_flight += 1

    def close(self) -> None:
        """Drop what is still queued (reads already running finish on their
        own, bounded by the store's timeouts)."""
        self._keys.clear()
        self._pending.clear()
        self._in_flight = 0
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_ahead(source: Store, keys: Iterable[str], threads: int) -> ReadAhead | None:
    """A :class:`ReadAhead` over ``source`` when it is remote and ``threads``
    is above 1, else None (read as before)."""
    if threads <= 1 or not getattr(source, "is_remote", False):
        return None
    return ReadAhead(source, keys, threads)
