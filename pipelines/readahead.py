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

On local disk no thread is used: a thread hand-off costs more than a read
from the page cache (tens of microseconds). :class:`HintAhead` instead asks
the kernel to read the next files ahead (``posix_fadvise(WILLNEED)``), so
that files not yet in the page cache (the first pass over an import's
files) arrive while the task works on the previous ones (docs/scale.md
"Session 7").
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from vecstore.storage import Store

__all__ = ["HintAhead", "ReadAhead", "read_ahead"]


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


class HintAhead:
    """``source`` (a local disk), the kernel asked to read the next ``window``
    of ``keys`` ahead of the task's ``read_bytes`` calls. A hint costs an
    open and a close (a few microseconds on a file already cached; a cold
    small file read here: 106 us one at a time, 57 us hinted in batches)."""

    def __init__(self, source: Store, keys: Iterable[str], window: int) -> None:
        self._source = source
        self._keys = deque(keys)
        self._window = window
        self._ahead = 0  # hinted and not yet read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def read_bytes(self, key: str) -> bytes:
        if self._ahead <= self._window // 2:
            self._hint()
        self._ahead = max(0, self._ahead - 1)
        return self._source.read_bytes(key)

    def _hint(self) -> None:
        while self._keys and self._ahead < self._window:
            path = self._source.local_path(self._keys.popleft())
            self._ahead += 1
            if path is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # the read itself reports it
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    def close(self) -> None:
        self._keys.clear()

    def __enter__(self) -> HintAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_ahead(
    source: Store, keys: Iterable[str], threads: int
) -> ReadAhead | HintAhead | None:
    """How ``source`` reads ``keys`` ahead: a :class:`ReadAhead` when it is
    remote, a :class:`HintAhead` on a local disk (where the kernel takes
    hints), else None; None too when ``threads`` is 1 (one file at a time
    asked for)."""
    if threads <= 1:
        return None
    if getattr(source, "is_remote", False):
        return ReadAhead(source, keys, threads)
    if hasattr(os, "posix_fadvise") and source.local_path("") is not None:
        return HintAhead(source, keys, 4 * threads)
    return None
