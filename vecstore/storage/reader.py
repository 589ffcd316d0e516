"""Files returned by :meth:`Store.open_input`: reads retried like every
other Store call."""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecstore.storage.base import Store


class RetryingReader(io.RawIOBase):
    """A read-only, seekable view of one object whose reads go through
    :meth:`Store._call`: a transient failure reopens the object at the
    current position and tries again."""

    def __init__(self, store: Store, key: str, *, readahead: bool = True) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._path = store.path(key)
        self._pos = 0
        exact = not readahead and store.is_remote
        self._open_kwargs: dict[str, Any] = {"cache_type": "none"} if exact else {}
        self._file: Any = None
        self._file = store._call("open", key, self._open)
        size = getattr(self._file, "size", None)
        self.size = int(size) if isinstance(size, int) else store.size(key)

    def _open(self) -> Any:
        return self._store.fs.open(self._path, "rb", **self._open_kwargs)

    def _read(self, n: int) -> bytes:
        def go() -> bytes:
            if self._file is None:
                self._file = self._open()
            try:
                self._file.seek(self._pos)
                return bytes(self._file.read(n))
            except Exception:
                f, self._file = self._file, None
                with contextlib.suppress(Exception):
                    f.close()
                raise

        data = self._store._call("read", self._key, go)
        self._pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        remaining = max(self.size - self._pos, 0)
        n = remaining if size is None or size < 0 else min(size, remaining)
        return self._read(n) if n else b""

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        super().close()

    def __repr__(self) -> str:
        return f"<vecstore file {self._store.url(self._key)!r}>"
