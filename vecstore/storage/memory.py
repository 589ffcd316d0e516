"""fsspec's in-process ``memory://`` filesystem. It is a plain dict:
listing while another thread deletes raises KeyError, so every operation that
lists or changes keys holds one process-wide lock (which also makes
``put_if_absent`` atomic)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, ClassVar

from vecstore.storage.base import Store

_MEMORY_LOCK = threading.Lock()


class MemoryStore(Store):
    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)
    is_remote: ClassVar[bool] = False
    has_directories: ClassVar[bool] = True

    def _listing_lock(self) -> contextlib.AbstractContextManager[Any]:
        return _MEMORY_LOCK

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)

        def go() -> None:
            with _MEMORY_LOCK:
                self.fs.pipe_file(path, data)

        self._call("write", key, go)

    def put_if_absent(self, key: str, data: bytes) -> None:
        path = self.path(key)

        def go() -> None:
            with _MEMORY_LOCK:
                if self.fs.exists(path):
                    raise self._exists_error(key)
                self.fs.pipe_file(path, data)

        self._call("create", key, go)

    def _publish(self, key: str, tmp: str) -> None:
        path = self.path(key)

        def go() -> None:
            with _MEMORY_LOCK:
                self.fs.put_file(tmp, path)

        self._call("write", key, go)
