"""The :class:`Store` interface and what every backend shares: paths, URLs,
retries and error mapping, reads, listings, uploads and deletes. Each
backend (``local.py``, ``memory.py``, ``s3.py``...) overrides only what
differs; ``registry.py`` picks one by URL scheme, so ``Store(uri, options)``
returns the right subclass."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, ClassVar, Self, TypeVar, cast

from vecstore import extras
from vecstore.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    VecstoreError,
)
from vecstore.storage import retry
from vecstore.storage.classify import error_code, is_denied, is_not_found, is_transient
from vecstore.storage.scrub import scrub, secret_values

T = TypeVar("T")

logger = logging.getLogger("vecstore.storage")


def protocol_of(uri: str) -> str:
    """The URL scheme of ``uri`` (``file`` for a plain path)."""
    return uri.split("://", 1)[0] if "://" in uri else "file"


class Store:
    """An object store rooted at ``uri``.

    ``Store(uri, storage_options)`` returns the backend registered for the
    URI's scheme. Capabilities callers may ask about instead of the backend:
    :attr:`is_remote`, :attr:`has_directories`, :attr:`has_buckets` and
    :meth:`local_path`.
    """

    # ------------------------------------------------- backend description
    name: ClassVar[str] = "fsspec"
    """The backend's kind (``local``, ``memory``, ``s3``, ``gcs``, ``azure``)."""
    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this backend serves (the registry matches them)."""
    extra: ClassVar[str | None] = None
    """The pip extra that provides the backend's filesystem, if optional."""
    is_remote: ClassVar[bool] = True
    """Reads are network round trips (worth a disk cache and a manifest TTL)."""
    has_directories: ClassVar[bool] = False
    """Directories exist on their own (an emptied one stays behind)."""
    has_buckets: ClassVar[bool] = False
    """The first component of a backend path is a bucket or container."""
    bucket_word: ClassVar[str] = "bucket"
    """What the provider calls that first component (in messages)."""
    import_source: ClassVar[bool] = True
    """Imports may read from this backend (the generic one: no)."""

    @classmethod
    def claims(cls, uri: str) -> bool:
        """Whether this backend serves ``uri``."""
        return protocol_of(uri) in cls.schemes

    @classmethod
    def kind_of(cls, uri: str) -> str:
        return cls.name

    @classmethod
    def check_import_source(cls, uri: str, cloud: str, index: str) -> None:
        """Raise InvalidArgumentError unless ``uri`` may be read by an import
        into index ``index`` hosted on ``cloud`` (the seeds' cloud rules)."""
        if cls.has_buckets and "://" in uri and not uri.startswith("https://"):
            what = cls.bucket_word
            if not uri.split("://", 1)[1].split("/", 1)[0]:
                raise InvalidArgumentError(
                    f'Import uri "{uri}" names no {what}: expected '
                    f"{uri.split('://', 1)[0]}://{what.upper()}/IMPORT_DIR"
                )

    @classmethod
    def translate(cls, uri: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The fsspec URL and options for ``uri`` (the caller's options copied)."""
        return uri, dict(options)

    @classmethod
    def anonymous_options(cls, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Storage options for anonymous access (public data)."""
        return dict(base or {})

    @classmethod
    def endpoint(cls, options: dict[str, Any]) -> str | None:
        """A custom endpoint (emulator, S3-compatible store), or None for the cloud."""
        return None

    @classmethod
    def backend_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` plus the defaults a Store needs (never stored or pickled)."""
        return dict(options)

    # ------------------------------------------------------- construction
    def __new__(cls, uri: str, storage_options: dict[str, Any] | None = None) -> Self:
        from vecstore.storage.registry import concrete_class

        return cast(Self, object.__new__(concrete_class(cls, uri)))

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        if not uri:
            raise InvalidArgumentError("A store URI is required, got an empty string")
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._secrets = tuple(
            sorted(set(secret_values(self.storage_options)), key=len, reverse=True)
        )
        self.kind = self.kind_of(uri)
        fs_uri, options = self.translate(uri, self.storage_options)
        if "://" not in fs_uri:
            fs_uri = os.path.abspath(os.path.expanduser(fs_uri))
        self._fs_uri = fs_uri.rstrip("/")
        if self.extra is not None:
            extras.require(self.extra, self._described())
        import fsspec.core  # lazy: keeps `import vecstore` light

        try:
            self.fs, root = fsspec.core.url_to_fs(fs_uri, **self.backend_options(options))
        except ImportError as exc:  # pragma: no cover - depends on install
            raise InvalidArgumentError(
                f'No filesystem for "{self.url()}": {scrub(str(exc), self._secrets)}',
                uri=self.url(),
            ) from None
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f'Cannot open store "{self.url()}": {scrub(str(exc), self._secrets)}',
                uri=self.url(),
            ) from None
        self.root: str = str(root).rstrip("/")
        self._endpoint = self.endpoint(options)
        self._cat_kwargs: dict[str, Any] = {}
        self._tune(options)

    def _described(self) -> str:
        """How the install hint names this kind of location."""
        return f"{protocol_of(self.uri)}://"

    def _tune(self, options: dict[str, Any]) -> None:
        """Adjust the new filesystem instance (it is this Store's own)."""

    # ------------------------------------------------------------ identity
    def __reduce__(self) -> tuple[Any, ...]:
        return (Store, (self.uri, self.storage_options))

    def __repr__(self) -> str:
        return f"Store({scrub(self.uri, self._secrets)!r})"

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

    def local_path(self, key: str) -> str | None:
        """The path of ``key`` on this machine's disk, or None (not a local store)."""
        return None

    def _url_base(self) -> str:
        return self.uri

    def url(self, key: str = "") -> str:
        """A URL for ``key`` fit for messages (never contains credentials)."""
        key = key.strip("/")
        base = scrub(self._url_base().rstrip("/"), self._secrets)
        return f"{base}/{key}" if key else base

    def _full_path(self, path: str) -> str:
        """A path from a listing, in the form :attr:`root` has."""
        return path

    def relative(self, path: str) -> str:
        """Inverse of :meth:`path` for a backend path under the root."""
        path = self._full_path(path.rstrip("/"))
        root = self.root
        if path == root:
            return ""
        if root and path.startswith(root + "/"):
            return path[len(root) + 1 :]
        if not root:
            return path
        raise StorageError(f'"{path}" is not under the store root "{self.url()}"')

    # ----------------------------------------------------------- retrying
    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures; map errors to vecstore's."""
        start = time.monotonic()
        delay = retry.RETRY_BASE_DELAY
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except VecstoreError:
                raise
            except FileNotFoundError:
                raise NotFoundError(f'Object not found: "{self.url(key)}"', key=key) from None
            except FileExistsError:
                raise AlreadyExistsError(
                    f'Object "{self.url(key)}" already exists', key=key
                ) from None
            except Exception as exc:
                if is_not_found(exc):
                    raise NotFoundError(f'Object not found: "{self.url(key)}"', key=key) from None
                transient = is_transient(exc)
                if not transient and is_denied(exc):
                    raise self._denied(what, key, exc) from None
                elapsed = time.monotonic() - start
                if (
                    transient
                    and attempt < retry.RETRY_ATTEMPTS
                    and elapsed + delay < retry.RETRY_DEADLINE
                ):
                    logger.debug(
                        "retrying %s of %s after %s (attempt %d)",
                        what,
                        self.url(key),
                        type(exc).__name__,
                        attempt,
                    )
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, retry.RETRY_MAX_DELAY)
                    continue
                detail = scrub(str(exc), self._secrets).strip() or "(no message)"
                tries = f" after {attempt} attempts in {elapsed:.1f} s" if attempt > 1 else ""
                raise StorageError(
                    f'Storage failed to {what} "{self.url(key)}"{tries}: '
                    f"{type(exc).__name__}: {detail}",
                    key=key,
                    transient=transient,
                ) from None

    def _denied(self, what: str, key: str, exc: BaseException) -> AccessDeniedError:
        code = error_code(exc)
        reason = f" ({code})" if code else ""
        anonymous = bool(self.storage_options.get("anon")) or (
            self.storage_options.get("token") == "anon"
        )
        hint = (
            "anonymous access was refused: the location is private, so configure a storage "
            "integration with credentials for it"
            if anonymous
            else "check the storage integration (credentials) for this location"
        )
        return AccessDeniedError(
            f'Access denied to "{self.url(key)}" while trying to {what}{reason}: {hint}',
            key=key,
        )

    def io_threads(self, wanted: int) -> int:
        """Threads worth using for many small independent requests (a pack
        task's files, a commit's manifests): ``wanted`` on a remote store,
        whose latency they overlap; 1 on local disk and in memory, where the
        file system serialises metadata updates and the threads' GIL
        hand-offs cost more CPU than they save (docs/scale.md)."""
        return max(1, wanted) if self.is_remote else 1

    def _listing_lock(self) -> contextlib.AbstractContextManager[Any]:
        """Held around operations that list or change keys (see memory.py)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------ reading
    def read_bytes(self, key: str) -> bytes:
        path = self.path(key)
        kwargs = self._cat_kwargs
        return self._call("read", key, lambda: bytes(self.fs.cat_file(path, **kwargs)))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``key``."""
        if end <= start:
            return b""
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
        """Direct children of ``prefix``: relative keys, files and directories
        (or fsspec info dicts with ``key`` added when ``detail``). A missing
        prefix gives []."""
        own = prefix.strip("/")

        def go() -> list[Any]:
            try:
                with self._listing_lock():
                    entries = self.fs.ls(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            out: list[Any] = []
            for e in entries:
                key = self.relative(e["name"])
                if key == own:
                    continue
                out.append({**e, "key": key} if detail else key)
            return out

        return self._call("list", prefix, go)

    def walk_files(self, prefix: str = "") -> list[tuple[str, int]]:
        """Every file below ``prefix``: (relative key, size), sorted."""

        def go() -> list[tuple[str, int]]:
            try:
                with self._listing_lock():
                    found = self.fs.find(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            return sorted(
                (self.relative(name), int(info.get("size") or 0))
                for name, info in found.items()
                if info.get("type", "file") != "directory"
            )

        return self._call("list", prefix, go)

    def walk_file_infos(self, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """Every file below ``prefix``: (relative key, the backend's info dict:
        ``size`` and what else it lists, e.g. ``ETag``/``etag``, ``mtime``,
        ``LastModified``), sorted by key. One listing, as :meth:`walk_files`."""

        def go() -> list[tuple[str, dict[str, Any]]]:
            try:
                with self._listing_lock():
                    found = self.fs.find(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            return sorted(
                (
                    (self.relative(name), dict(info))
                    for name, info in found.items()
                    if info.get("type", "file") != "directory"
                ),
                key=lambda item: item[0],
            )

        return self._call("list", prefix, go)

    def open_input(self, key: str, *, readahead: bool = True) -> IO[bytes]:
        """A seekable binary file for ``key`` whose reads are retried.

        ``readahead=False`` (remote stores): every read fetches exactly the
        bytes asked for, in one ranged GET, instead of fsspec's default
        readahead of several MB past it. For readers that plan their own
        reads, like pyarrow's Parquet reader (whole column chunks, nearby
        ones coalesced): with readahead, reading a few row groups of a file
        fetches most of it.

        NotFoundError at once if ``key`` does not exist.
        """
        from vecstore.storage.reader import RetryingReader

        return cast(IO[bytes], RetryingReader(self, key, readahead=readahead))

    # ------------------------------------------------------------ writing
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write (or overwrite) ``key`` with ``data``; last writer wins."""
        path = self.path(key)
        self._call("write", key, lambda: self.fs.pipe_file(path, data))

    def write_new(self, key: str, data: bytes) -> None:
        """Write a fresh key that nothing reads yet: a data file under a new
        unique name, which readers reach only through a manifest written
        after this returns. A backend may therefore skip what makes
        :meth:`write_bytes` atomic for readers (a local disk's temporary
        file and rename); a crash may leave a partial file, an orphan like
        any other of a failed write (cleanup removes it by its owner
        prefix). Object stores: a PUT, as :meth:`write_bytes`."""
        self.write_bytes(key, data)

    def _exists_error(self, key: str) -> AlreadyExistsError:
        return AlreadyExistsError(f'Object "{self.url(key)}" already exists', key=key)

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Write ``key`` only if no object exists there; else AlreadyExistsError.

        Atomic on every backend: each backend says how (see the package
        docstring, and :class:`~vecstore.storage.objectstore.ObjectStore`)."""
        raise NotImplementedError

    def _temp_file(self, key: str) -> tuple[int, str]:
        """A local temporary file to write an upload of ``key`` into."""
        return tempfile.mkstemp(prefix="vecstore-upload-")

    def _publish(self, key: str, tmp: str) -> None:
        """Make the finished temporary file ``tmp`` the object ``key``."""
        path = self.path(key)
        self._call("write", key, lambda: self.fs.put_file(tmp, path))

    @contextlib.contextmanager
    def open_output(self, key: str) -> Iterator[IO[bytes]]:
        """A writable binary file at ``key``; visible once the block exits
        without an exception. The bytes go to a local temporary file first
        (next to the target on a local store, then renamed into place), and
        are uploaded whole, with retries. On an exception nothing is written
        and an existing object is left as it was."""
        fd, tmp = self._temp_file(key)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
            self._publish(key, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def delete(self, key: str) -> None:
        """Delete one object; missing is fine."""

        def go() -> None:
            with self._listing_lock(), contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(key))

        self._call("delete", key, go)

    def _delete_files(self, files: list[str], path: str) -> None:
        """Delete the listed objects below ``path`` (one batch)."""
        self.fs.rm(files)

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything below ``prefix``; missing is fine."""
        if not prefix.strip("/"):
            raise InvalidArgumentError("Refusing to delete the whole store root")

        def go() -> None:
            path = self.path(prefix)
            with self._listing_lock(), contextlib.suppress(FileNotFoundError):
                files = self.fs.find(path)
                if files:
                    self._delete_files(files, path)
                if self.has_directories and self.fs.exists(path):
                    self.fs.rm(path, recursive=True)

        self._call("delete", prefix, go)
