"""Read-your-writes across the worker processes of one ``vecstore serve``.

Each process keeps short-lived caches of what it read from the store: the
reader's manifest tracker (re-listed every ``REMOTE_TTL_SECONDS`` on a
remote store), the tail reader (the log is listed for other processes'
writes every ``REFRESH_TTL``) and the server's cached ``Index`` objects
(re-checked every ``REVALIDATE_SECONDS``). Within one process a write is
seen by the next read at once (the Python API's read-your-writes). With
``--workers N`` the next request of the same client may land on another
worker, so the workers share a *generation table*: a small file, mapped
into every worker, of 64-bit counters. A worker bumps the counter of a key
(project, index, namespace) once its write is durable and before it
answers; a worker about to read a key compares the counter with the value
it last saw and, if it moved, drops its cached state of that key first.
Keys are hashed onto ``SLOTS`` counters: a collision only costs a needless
refresh. A read costs one hash and one aligned 8-byte load.

What holds: a write acknowledged by any worker is seen by every request
that any worker *starts* after the acknowledgement (so by the same client's
next request), data plane and control plane alike. Writes by processes
outside the server (another ``vecstore`` process on the same store) are
seen within the caches' ttl, as before.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import threading
from pathlib import Path

import numpy as np

SLOTS = 4096
FILE = "generations.bin"


class Generations:
    """The shared counters (``path``: a file of ``SLOTS`` x 8 bytes; None:
    one process, nothing to share) and what this process last saw."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._seen: dict[int, int] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._table: np.ndarray | None = None
        if path is not None:
            self._fd = os.open(path, os.O_RDWR)
            self._map = mmap.mmap(self._fd, SLOTS * 8, mmap.MAP_SHARED)
            self._table = np.frombuffer(self._map, dtype=np.uint64)

    @staticmethod
    def create(directory: str) -> str:
        """A new zeroed table in ``directory``; its path (for the workers)."""
        path = Path(directory) / FILE
        path.write_bytes(b"\0" * (SLOTS * 8))
        return str(path)

    @property
    def shared(self) -> bool:
        return self._table is not None

    @staticmethod
    def slot(*key: str | None) -> int:
        h = hashlib.blake2b("\x00".join("\x01" if k is None else k for k in key).encode(), digest_size=8)
        return int.from_bytes(h.digest(), "little") % SLOTS

    def bump(self, *key: str | None) -> None:
        """After a durable write of ``key``: tell the other workers."""
        if self._table is None or self._fd is None:
            return
        i = self.slot(*key)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            old = int(self._table[i])
            self._table[i] = old + 1
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        with self._lock:
            if self._seen.get(i, 0) == old:  # nobody else wrote since we looked
                self._seen[i] = old + 1

    def stale(self, *key: str | None) -> tuple[int, int] | None:
        """``(slot, value)`` when another worker wrote ``key`` since this
        process last refreshed it (None: nothing new). The caller refreshes,
        then calls :meth:`refreshed` with it (concurrent callers may both
        refresh: harmless)."""
        if self._table is None:
            return None
        i = self.slot(*key)
        now = int(self._table[i])
        if self._seen.get(i, 0) >= now:
            return None
        return i, now

    def refreshed(self, token: tuple[int, int]) -> None:
        i, value = token
        with self._lock:
            if self._seen.get(i, 0) < value:
                self._seen[i] = value

    def close(self) -> None:
        if self._fd is not None:
            self._table = None
            self._map.close()
            os.close(self._fd)
            self._fd = None
