"""Caches of the query executors.

- :class:`ByteLRU`: an in-memory least-recently-used cache bounded by bytes,
  thread-safe, loading each key at most once at a time (concurrent misses on
  one key wait for the first loader instead of reading the object again).
- :class:`DiskCache`: a local directory of downloaded objects for remote
  stores (S3, GCS, Azure). Data files are immutable and named by UUID, so a
  cached copy is never stale; the directory is trimmed to a byte budget,
  oldest first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from vecstore.storage import Store

V = TypeVar("V")

DEFAULT_CACHE_BYTES = 2 << 30
DEFAULT_DISK_CACHE_BYTES = 20 << 30


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    loaded_bytes: int = 0


class ByteLRU:
    """LRU of values with known sizes; ``max_bytes`` bounds the total."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.stats = CacheStats()

    @property
    def current_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return item[0]

    def get_or_load(self, key: Hashable, load: Callable[[], tuple[V, int]]) -> V:
        """The cached value of ``key``, else ``load()`` -> (value, nbytes), cached."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.stats.hits += 1
                return item[0]  # type: ignore[no-any-return]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                item = self._items.get(key)
                if item is not None:  # loaded by the thread we waited for
                    self._items.move_to_end(key)
                    self.stats.hits += 1
                    return item[0]  # type: ignore[no-any-return]
                self.stats.misses += 1
            try:
                value, size = load()
                self.put(key, value, size)
            finally:
                with self._lock:
                    if self._loading.get(key) is key_lock:
                        del self._loading[key]
            return value

    def put(self, key: Hashable, value: Any, size: int) -> None:
        with self._lock:
            self.stats.loaded_bytes += size
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return  # larger than the whole cache: used once, not kept
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class DiskCache:
    """Downloaded copies of immutable objects under ``directory``."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_DISK_CACHE_BYTES) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None
        os.makedirs(self.directory, exist_ok=True)

    def path_for(self, store: Store, key: str) -> str:
        digest = hashlib.sha256(f"{store.uri}\0{key}".encode()).hexdigest()[:40]
        return os.path.join(self.directory, digest[:2], digest)

    def cached_path(self, store: Store, key: str) -> str | None:
        """The local copy of ``key`` if one was downloaded already (no download)."""
        path = self.path_for(store, key)
        return path if os.path.exists(path) else None

    def local_path(self, store: Store, key: str) -> str:
        """A local file with the bytes of ``key`` (downloaded on first use)."""
        path = self.path_for(store, key)
        if os.path.exists(path):
            with contextlib.suppress(OSError):
                os.utime(path)
            return path
        data = store.read_bytes(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        self._grew(len(data))
        return path

    def _grew(self, size: int) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = sum(s for _, s, _ in self._entries())
            else:
                self._bytes += size
            if self._bytes <= self.max_bytes:
                return
            entries = sorted(self._entries(), key=lambda e: e[2])  # oldest first
            for path, size_, _ in entries:
                if self._bytes <= self.max_bytes * 0.9:
                    break
                with contextlib.suppress(OSError):
                    os.remove(path)
                    self._bytes -= size_

    def _entries(self) -> list[tuple[str, int, float]]:
        out = []
        for root, _, files in os.walk(self.directory):
            for name in files:
                if name.endswith(".tmp"):
                    continue
                p = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    st = os.stat(p)
                    out.append((p, st.st_size, st.st_mtime))
        return out
