"""One object-store abstraction over fsspec.

A :class:`Store` is a root URL plus ``storage_options``. Keys are
``/``-separated paths relative to the root. Every backend fsspec knows works
(local paths, ``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://`` /
``abfs://``), plus Pinecone's Azure form
``https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR``, translated to
``az://CONTAINER/DIR`` with ``account_name=ACCOUNT``.

A Store pickles as ``(uri, storage_options)``, so it reaches a Dask worker as
configuration, never as a live connection. Its ``repr`` and every error
message name only the URL: storage options (credentials) never appear.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from vecstore.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
)

T = TypeVar("T")

_AZURE_HTTPS = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<rest>[^?#]*)$"
)
_MEMORY_LOCK = threading.Lock()

RETRY_ATTEMPTS = 5
RETRY_BASE_DELAY = 0.1


def translate_uri(
    uri: str, storage_options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Map Pinecone's Azure https form to adlfs's ``az://``; return (uri, options)."""
    options = dict(storage_options or {})
    m = _AZURE_HTTPS.match(uri)
    if m:
        options.setdefault("account_name", m.group("account"))
        rest = m.group("rest").strip("/")
        if not rest:
            raise InvalidArgumentError(
                f'Azure URI "{uri}" names no container: expected '
                "https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR",
                uri=uri,
            )
        return f"az://{rest}", options
    if uri.startswith(("http://", "https://")):
        raise InvalidArgumentError(
            f'Unsupported URI "{uri}": expected a local path, file://, memory://, s3://, '
            "gs://, az://, abfs:// or https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR",
            uri=uri,
        )
    return uri, options


def scheme_of(uri: str) -> str:
    """The storage kind of a URI: ``local``, ``memory``, ``s3``, ``gcs`` or ``azure``."""
    if _AZURE_HTTPS.match(uri):
        return "azure"
    proto = uri.split("://", 1)[0] if "://" in uri else "file"
    return {
        "file": "local",
        "local": "local",
        "memory": "memory",
        "s3": "s3",
        "s3a": "s3",
        "gs": "gcs",
        "gcs": "gcs",
        "az": "azure",
        "abfs": "azure",
        "abfss": "azure",
    }.get(proto, proto)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, FileNotFoundError | FileExistsError | PermissionError | NotFoundError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    markers = (
        "500",
        "502",
        "503",
        "504",
        "internal error",
        "service unavailable",
        "slow down",
        "slowdown",
        "connection reset",
        "connection aborted",
        "server disconnected",
        "serverdisconnected",
        "connection closed",
        "clientpayloaderror",
        "clientoserror",
        "remote end closed",
        "timed out",
        "timeout",
        "incompleteread",
        "broken pipe",
    )
    return any(m in text for m in markers)


def _is_denied(exc: BaseException) -> bool:
    if isinstance(exc, PermissionError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        m in text
        for m in (
            "accessdenied",
            "access denied",
            "forbidden",
            "403",
            "401",
            "noauthenticationinformation",
            "authorizationfailure",
        )
    )


class Store:
    """An object store rooted at ``uri``."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        if not uri:
            raise InvalidArgumentError("A store URI is required, got an empty string")
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        fs_uri, options = translate_uri(uri, self.storage_options)
        if "://" not in fs_uri:
            fs_uri = os.path.abspath(os.path.expanduser(fs_uri))
        import fsspec.core  # lazy: keeps `import vecstore` light

        try:
            self.fs, root = fsspec.core.url_to_fs(fs_uri, **options)
        except ImportError as exc:  # pragma: no cover - depends on install
            raise InvalidArgumentError(
                f'No filesystem for "{uri}": {exc}. Install s3fs, gcsfs or adlfs.', uri=uri
            ) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(f'Cannot open store "{uri}": {exc}', uri=uri) from exc
        self.root: str = str(root).rstrip("/")
        self.kind = scheme_of(uri)
        self._fs_uri = fs_uri.rstrip("/")

    # ------------------------------------------------------------ identity
    def __reduce__(self) -> tuple[Any, ...]:
        return (Store, (self.uri, self.storage_options))

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and (self.uri, self.storage_options) == (
            other.uri,
            other.storage_options,
        )

    def __hash__(self) -> int:
        return hash(self.uri)

    def child(self, key: str) -> Store:
        """A store rooted at ``key`` below this one (same options)."""
        key = key.strip("/")
        base = self.uri.rstrip("/")
        return Store(f"{base}/{key}" if key else base, self.storage_options)

    # --------------------------------------------------------------- paths
    def path(self, key: str) -> str:
        """The backend path of ``key`` (what fsspec calls take)."""
        key = key.strip("/")
        if not key:
            return str(self.root)
        return f"{self.root}/{key}" if self.root else key

    def url(self, key: str = "") -> str:
        """A URL for ``key`` fit for messages (never contains credentials)."""
        key = key.strip("/")
        base = self.uri.rstrip("/")
        return f"{base}/{key}" if key else base

    def relative(self, path: str) -> str:
        """Inverse of :meth:`path` for a backend path under the root."""
        path = path.rstrip("/")
        root = self.root
        if self.kind == "local" and not path.startswith("/"):
            path = "/" + path
        if path == root:
            return ""
        if root and path.startswith(root + "/"):
            return path[len(root) + 1 :]
        if not root:
            return path
        raise StorageError(f'"{path}" is not under the store root "{self.uri}"')

    # ----------------------------------------------------------- retrying
    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        delay = RETRY_BASE_DELAY
        for attempt in range(RETRY_ATTEMPTS):
            try:
                return fn()
            except FileNotFoundError as exc:
                raise NotFoundError(f'Object not found: "{self.url(key)}"', key=key) from exc
            except FileExistsError:
                raise
            except (AlreadyExistsError, NotFoundError):
                raise
            except Exception as exc:
                if _is_denied(exc) and not _is_transient(exc):
                    raise AccessDeniedError(
                        f'Access denied to "{self.url(key)}" while trying to {what}: check the '
                        "storage integration (credentials) for this location",
                        key=key,
                    ) from None
                if attempt + 1 < RETRY_ATTEMPTS and _is_transient(exc):
                    time.sleep(delay * (1 + random.random()))
                    delay *= 2
                    continue
                raise StorageError(
                    f'Storage failed to {what} "{self.url(key)}": {type(exc).__name__}: '
                    f"{_scrub(str(exc))}",
                    key=key,
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ reading
    def read_bytes(self, key: str) -> bytes:
        return self._call("read", key, lambda: bytes(self.fs.cat_file(self.path(key))))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        return self._call(
            "read", key, lambda: bytes(self.fs.cat_file(self.path(key), start=start, end=end))
        )

    def exists(self, key: str) -> bool:
        return self._call("check", key, lambda: bool(self.fs.exists(self.path(key))))

    def size(self, key: str) -> int:
        return int(self._call("stat", key, lambda: self.fs.size(self.path(key))))

    def isdir(self, key: str) -> bool:
        return self._call("check", key, lambda: bool(self.fs.isdir(self.path(key))))

    def ls(self, prefix: str = "", *, detail: bool = False) -> list[Any]:
        """Direct children of ``prefix``: relative keys (or fsspec info dicts
        with ``key`` added when ``detail``). Missing prefix -> []."""

        def go() -> list[Any]:
            try:
                self.fs.invalidate_cache(self.path(prefix))
                entries = self.fs.ls(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            out: list[Any] = []
            for e in entries:
                key = self.relative(e["name"])
                if key == prefix.strip("/"):
                    continue
                if detail:
                    out.append({**e, "key": key})
                else:
                    out.append(key)
            return out

        return self._call("list", prefix, go)

    def walk_files(self, prefix: str = "") -> list[tuple[str, int]]:
        """Every file below ``prefix``: (relative key, size), sorted."""

        def go() -> list[tuple[str, int]]:
            try:
                self.fs.invalidate_cache(self.path(prefix))
                found = self.fs.find(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            return sorted(
                (self.relative(name), int(info.get("size") or 0))
                for name, info in found.items()
                if info.get("type", "file") != "directory"
            )

        return self._call("list", prefix, go)

    def open_input(self, key: str) -> IO[bytes]:
        return self._call("open", key, lambda: self.fs.open(self.path(key), "rb"))

    # ------------------------------------------------------------ writing
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write (or overwrite) ``key`` with ``data``; last writer wins."""
        path = self.path(key)
        if self.kind == "local":
            self._call("write", key, lambda: _local_atomic_write(path, data))
        else:
            self._call("write", key, lambda: self.fs.pipe_file(path, data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Write ``key`` only if no object exists there; else AlreadyExistsError.

        Atomic on every backend: a hard link on local disks, a lock in
        memory, and conditional writes (If-None-Match / ifGenerationMatch=0 /
        overwrite=False) on S3, GCS and Azure.
        """
        path = self.path(key)

        def go() -> None:
            try:
                if self.kind == "local":
                    _local_put_if_absent(path, data)
                elif self.kind == "memory":
                    with _MEMORY_LOCK:
                        if self.fs.exists(path):
                            raise FileExistsError(path)
                        self.fs.pipe_file(path, data)
                else:
                    self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                raise AlreadyExistsError(
                    f'Object "{self.url(key)}" already exists', key=key
                ) from None
            except Exception as exc:
                if _precondition_failed(exc):
                    raise AlreadyExistsError(
                        f'Object "{self.url(key)}" already exists', key=key
                    ) from None
                raise

        self._call("create", key, go)

    @contextlib.contextmanager
    def open_output(self, key: str) -> Iterator[IO[bytes]]:
        """A writable binary file at ``key``; visible once closed."""
        path = self.path(key)
        if self.kind == "local":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        f = self.fs.open(path, "wb")
        try:
            yield f
        except BaseException:
            with contextlib.suppress(Exception):
                f.close()
            with contextlib.suppress(Exception):
                self.fs.rm(path)
            raise
        else:
            self._call("write", key, f.close)

    def delete(self, key: str) -> None:
        """Delete one object; missing is fine."""

        def go() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(key))

        self._call("delete", key, go)

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything below ``prefix``; missing is fine."""
        if not prefix.strip("/"):
            raise InvalidArgumentError("Refusing to delete the whole store root")

        def go() -> None:
            path = self.path(prefix)
            with contextlib.suppress(FileNotFoundError):
                files = self.fs.find(path)
                if files:
                    self.fs.rm(files)
                if self.kind in ("local", "memory") and self.fs.exists(path):
                    self.fs.rm(path, recursive=True)

        self._call("delete", prefix, go)


def _precondition_failed(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        m in text
        for m in ("precondition", "412", "conditionalrequestconflict", "blobalreadyexists", "409")
    )


_SECRETISH = re.compile(
    r"(?i)(sig|signature|accountkey|account_key|secret|token|password|credential|x-amz-security-token|authorization)=([^&\s;]+)"
)


def _scrub(text: str) -> str:
    """Remove anything that looks like a credential from a backend message."""
    return _SECRETISH.sub(r"\1=***", text)[:500]


def _local_atomic_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _local_put_if_absent(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        os.link(tmp, path)  # atomic; fails if path exists
    finally:
        os.unlink(tmp)
