"""One object-store abstraction over fsspec.

A :class:`Store` is a root URL plus ``storage_options``. Keys are
``/``-separated paths relative to the root. Every backend fsspec knows works
(local paths, ``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://`` /
``abfs://``), plus Pinecone's Azure form
``https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR``, translated to
``az://CONTAINER/DIR`` with ``account_name=ACCOUNT`` (the caller's other
options, e.g. a ``connection_string``, are kept).

A Store pickles as ``(uri, storage_options)``, so it reaches a Dask worker as
configuration, never as a live connection. Its ``repr`` and every error
message name only the URL: storage options (credentials) never appear, and
backend messages are scrubbed of the option values before they are quoted.

Errors: a missing object raises :class:`NotFoundError`; refused credentials
:class:`AccessDeniedError`; anything else the backend could not do, after
retries, :class:`StorageError`.

Retries: the Store is the retry layer. Transient failures (HTTP 408/429/5xx,
dropped connections, timeouts) are retried with exponential backoff and
jitter, at most :data:`RETRY_ATTEMPTS` attempts and no new attempt after
:data:`RETRY_DEADLINE` seconds. To keep that bound, the backends' own retries
are turned off unless the caller configured them: botocore gets
``retries={"total_max_attempts": 1}`` and s3fs's own retry loop one try, and the
Azure SDK's retry policy (15 s, 18 s, 24 s backoffs by default) no retries.
The filesystem instances are the Store's own: the options it adds are part of
fsspec's instance-cache key. gcsfs retries internally on a fixed
schedule that cannot be configured (6 tries over ~30 s); the deadline keeps
the Store from stacking its own retries on top. Files returned by
:meth:`Store.open_input` retry their reads too. Listing caches are off
(``use_listings_cache=False``) so every call sees other processes' writes.

``put_if_absent`` is atomic: a hard link on local disks, a lock in memory, and
conditional writes on S3 (``If-None-Match: *``), GCS (``ifGenerationMatch=0``)
and Azure (``If-None-Match: *``). Each conditional write carries a unique id in
the object's metadata, so a retry after a lost response recognises its own
earlier write instead of reporting a conflict. A server at a custom endpoint
(an emulator, an S3-compatible store) is probed once per process: if it
ignores conditional writes (gcp-storage-emulator does), ``put_if_absent``
falls back to check-then-write under a process-wide lock and logs a warning:
atomic between threads of one process only.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar, cast

from vecstore.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    VecstoreError,
)
from vecstore.settings import external

T = TypeVar("T")

logger = logging.getLogger(__name__)

_AZURE_HTTPS = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<rest>[^?#]*)$"
)
# Held by every memory:// operation that lists or changes keys: fsspec's
# MemoryFileSystem is a plain dict, and listing while another thread deletes
# raises KeyError.
_MEMORY_LOCK = threading.Lock()
# Serialises put_if_absent on servers that ignore conditional writes.
_FALLBACK_LOCK = threading.Lock()
_PROBE_LOCK = threading.Lock()
_CONDITIONAL_SUPPORT: dict[tuple[str, str], bool] = {}

RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
RETRY_DEADLINE = 15.0
"""No new attempt starts this many seconds after the first one."""

PUT_ID = "vecstoreputid"
"""Object metadata key carrying a put_if_absent call's unique id."""

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_DENIED_STATUS = frozenset({401, 403})
_TRANSIENT_ERRNO = frozenset(
    {
        errno.EBUSY,  # s3fs: 503 ServiceUnavailable / SlowDown, 409 ConditionalRequestConflict
        getattr(errno, "EREMOTEIO", errno.EIO),  # s3fs: 500 InternalError
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.EPIPE,
        errno.EAGAIN,
    }
)
# Exception classes (by name, so no backend has to be imported) that mean
# the connection failed or the response was lost: botocore, aiohttp,
# azure-core, requests, http.client, fsspec.
_TRANSIENT_TYPES = frozenset(
    {
        "HTTPClientError",
        "ConnectionClosedError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ResponseStreamingError",
        "IncompleteReadError",
        "ResponseParserError",
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        "ServiceRequestError",
        "ServiceResponseError",
        "IncompleteRead",
        "RemoteDisconnected",
        "ChunkedEncodingError",
        "ProxyError",
        "FSTimeoutError",
        "ChecksumError",
    }
)
_TRANSIENT_TEXT = (
    "service unavailable",
    "slow down",
    "slowdown",
    "internal error",
    "internalerror",
    "server disconnected",
    "connection reset",
    "connection aborted",
    "connection closed",
    "remote end closed",
    "conditionalrequestconflict",
    "timed out",
)
_DENIED_TEXT = (
    "accessdenied",
    "access denied",
    "forbidden",
    "authorizationfailure",
    "authenticationfailed",
    "authorizationpermissionmismatch",
    "noauthenticationinformation",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
)
_SECRET_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "account_key",
        "connection_string",
        "sas_token",
        "client_secret",
        "credential",
        "credentials",
        "session_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
    }
)
_SECRETISH = re.compile(
    r"(?i)(sig|signature|accountkey|account_key|sharedaccesssignature|secret|token|password"
    r"|credential|x-amz-security-token|authorization)=([^&\s;]+)"
)


# ------------------------------------------------------------------ URIs
def translate_uri(
    uri: str, storage_options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Map Pinecone's Azure https form to adlfs's ``az://``; return (uri, options).

    The caller's options are kept (copied); ``account_name`` is added from the
    URL unless given.
    """
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
        shown = _scrub(uri)
        raise InvalidArgumentError(
            f'Unsupported URI "{shown}": expected a local path, file://, memory://, s3://, '
            "gs://, az://, abfs:// or https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR",
            uri=shown,
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


# ------------------------------------------------------- classification
def _chain(exc: BaseException, *, context: bool = True) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (bounded, cycle-safe).

    ``context=False`` follows only explicit ``raise ... from`` causes, not the
    exception that happened to be handled when ``exc`` was raised.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(seen) < 8:
        seen.add(id(cur))
        yield cur
        if cur.__cause__ is not None:
            cur = cur.__cause__
        elif context and not cur.__suppress_context__:
            cur = cur.__context__
        else:
            cur = None


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status a backend exception carries, if any."""
    for attr in ("status_code", "status", "code"):  # azure-core, aiohttp, gcsfs
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)  # botocore ClientError
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    return None


def _error_code(exc: BaseException) -> str | None:
    """A backend's short error code (``AccessDenied``, ``AuthorizationFailure``...)."""
    for e in _chain(exc):
        code = getattr(e, "error_code", None)  # azure-core (a str enum)
        code = getattr(code, "value", code)
        if isinstance(code, str) and code:
            return code
        response = getattr(e, "response", None)  # botocore
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if isinstance(code, str) and code:
                return code
    return None


def _is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may succeed (server busy, connection lost, timeout)."""
    for e in _chain(exc):
        if isinstance(e, FileNotFoundError | FileExistsError | PermissionError | VecstoreError):
            return False
        status = _status_of(e)
        if status is not None:
            if status in _TRANSIENT_STATUS:
                return True
            if 400 <= status < 500 and status != 409:
                return False
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNO:
            return True
        if any(t.__name__ in _TRANSIENT_TYPES for t in type(e).__mro__):
            return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _TRANSIENT_TEXT)


def _is_denied(exc: BaseException) -> bool:
    """Whether the backend refused the credentials (or their absence)."""
    for e in _chain(exc):
        if isinstance(e, PermissionError):
            return True
        if _status_of(e) in _DENIED_STATUS:
            return True
        if type(e).__name__ in ("ClientAuthenticationError", "NoCredentialsError"):
            return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _DENIED_TEXT)


def _is_not_found(exc: BaseException) -> bool:
    """A missing object, bucket or container (however the client says it)."""
    for e in _chain(exc, context=False):
        if isinstance(e, FileNotFoundError) or type(e).__name__ == "ResourceNotFoundError":
            return True
        if _status_of(e) == 404:
            return True
    return False


def _is_exists(exc: BaseException) -> bool:
    """A conditional write lost: the object is already there."""
    for e in _chain(exc, context=False):
        if isinstance(e, FileExistsError):
            return True
        if _status_of(e) == 412:
            return True
        if type(e).__name__ == "ResourceExistsError":
            return True
    return False


# -------------------------------------------------------------- secrets
def _secret_values(options: Any, key: str = "") -> list[str]:
    """Every string in ``options`` stored under a credential-like key."""
    out: list[str] = []
    if isinstance(options, dict):
        for k, v in options.items():
            out.extend(_secret_values(v, str(k).lower()))
    elif isinstance(options, list | tuple):
        for v in options:
            out.extend(_secret_values(v, key))
    elif isinstance(options, str) and key in _SECRET_KEYS and options not in ("", "anon"):
        out.append(options)
        if key == "connection_string":
            for part in options.split(";"):
                name, _, value = part.partition("=")
                if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
                    out.append(value.strip())
    return out


def _scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials (given values and anything that looks like one)."""
    for s in secrets:
        if len(s) >= 4:
            text = text.replace(s, "***")
    return _SECRETISH.sub(r"\1=***", text)[:500]


def _endpoint_of(kind: str, options: dict[str, Any]) -> str | None:
    """A custom endpoint (emulator, S3-compatible store), or None for the cloud."""
    if kind == "s3":
        client_kwargs = options.get("client_kwargs") or {}
        ep = (
            options.get("endpoint_url")
            or client_kwargs.get("endpoint_url")
            or external("AWS_ENDPOINT_URL_S3")
            or external("AWS_ENDPOINT_URL")
        )
        return str(ep) if ep else None
    if kind == "gcs":
        ep = options.get("endpoint_url") or external("STORAGE_EMULATOR_HOST")
        if ep and "storage.googleapis.com" not in str(ep):
            return str(ep)
        return None
    if kind == "azure":
        conn = options.get("connection_string") or (
            external("AZURE_STORAGE_CONNECTION_STRING") or ""
        )
        for part in str(conn).split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "blobendpoint" and value.strip():
                ep = value.strip()
                return None if ".blob.core.windows.net" in ep else ep
        host = options.get("account_host")
        if host and ".blob.core.windows.net" not in str(host):
            return str(host)
    return None


def _backend_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus the defaults a Store needs (never stored or pickled)."""
    opts = dict(options)
    if kind in ("s3", "gcs", "azure"):
        opts.setdefault("use_listings_cache", False)
    if kind == "s3":
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        opts["config_kwargs"] = config
    return opts


def _whole_object_kwargs(fs: Any) -> dict[str, Any]:
    """``cat_file`` options for reading a whole object in one GET. Recent
    s3fs sends a HEAD first, to decide whether to download a large object in
    concurrent parts: a round trip more for every manifest, job record,
    centroid and segment file read; ``max_concurrency=1`` skips it."""
    import inspect

    try:
        params = inspect.signature(fs._cat_file).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - other s3fs
        return {}
    return {"max_concurrency": 1} if "max_concurrency" in params else {}


def _tune_azure(fs: Any) -> None:
    """Turn off the Azure SDK's own retries (the Store retries, on its schedule)."""
    client = getattr(fs, "service_client", None)
    policy = getattr(getattr(client, "_config", None), "retry_policy", None)
    if policy is not None and hasattr(policy, "total_retries"):
        policy.total_retries = 0


# ---------------------------------------------------------------- Store
class Store:
    """An object store rooted at ``uri``."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        if not uri:
            raise InvalidArgumentError("A store URI is required, got an empty string")
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._secrets = tuple(
            sorted(set(_secret_values(self.storage_options)), key=len, reverse=True)
        )
        self.kind = scheme_of(uri)
        fs_uri, options = translate_uri(uri, self.storage_options)
        if "://" not in fs_uri:
            fs_uri = os.path.abspath(os.path.expanduser(fs_uri))
        import fsspec.core  # lazy: keeps `import vecstore` light

        try:
            self.fs, root = fsspec.core.url_to_fs(fs_uri, **_backend_options(self.kind, options))
        except ImportError as exc:  # pragma: no cover - depends on install
            raise InvalidArgumentError(
                f'No filesystem for "{self.url()}": {_scrub(str(exc), self._secrets)}. '
                "Install s3fs, gcsfs or adlfs.",
                uri=self.url(),
            ) from None
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f'Cannot open store "{self.url()}": {_scrub(str(exc), self._secrets)}',
                uri=self.url(),
            ) from None
        if self.kind == "s3" and "retries" not in (options.get("config_kwargs") or {}):
            # s3fs retries dropped connections 5 times on its own; the Store
            # retries them (the instance is the Store's own: the options it
            # adds are part of fsspec's instance-cache key).
            self.fs.retries = 1
        if self.kind == "azure":
            _tune_azure(self.fs)
        self.root: str = str(root).rstrip("/")
        self._fs_uri = fs_uri.rstrip("/")
        self._endpoint = _endpoint_of(self.kind, options)
        self._cat_kwargs = _whole_object_kwargs(self.fs) if self.kind == "s3" else {}

    # ------------------------------------------------------------ identity
    def __reduce__(self) -> tuple[Any, ...]:
        return (Store, (self.uri, self.storage_options))

    def __repr__(self) -> str:
        return f"Store({_scrub(self.uri, self._secrets)!r})"

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
        # local paths are made absolute: a URL recorded in a job must not
        # depend on the reader's working directory
        uri = self._fs_uri if self.kind == "local" and "://" not in self.uri else self.uri
        base = _scrub(uri.rstrip("/"), self._secrets)
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
        raise StorageError(f'"{path}" is not under the store root "{self.url()}"')

    # ----------------------------------------------------------- retrying
    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures; map errors to vecstore's."""
        start = time.monotonic()
        delay = RETRY_BASE_DELAY
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
                if _is_not_found(exc):
                    raise NotFoundError(f'Object not found: "{self.url(key)}"', key=key) from None
                transient = _is_transient(exc)
                if not transient and _is_denied(exc):
                    raise self._denied(what, key, exc) from None
                elapsed = time.monotonic() - start
                if transient and attempt < RETRY_ATTEMPTS and elapsed + delay < RETRY_DEADLINE:
                    logger.debug(
                        "retrying %s of %s after %s (attempt %d)",
                        what,
                        self.url(key),
                        type(exc).__name__,
                        attempt,
                    )
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, RETRY_MAX_DELAY)
                    continue
                detail = _scrub(str(exc), self._secrets).strip() or "(no message)"
                tries = f" after {attempt} attempts in {elapsed:.1f} s" if attempt > 1 else ""
                raise StorageError(
                    f'Storage failed to {what} "{self.url(key)}"{tries}: '
                    f"{type(exc).__name__}: {detail}",
                    key=key,
                    transient=transient,
                ) from None

    def _denied(self, what: str, key: str, exc: BaseException) -> AccessDeniedError:
        code = _error_code(exc)
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
                with self._memory_lock():
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
                with self._memory_lock():
                    found = self.fs.find(self.path(prefix), detail=True)
            except FileNotFoundError:
                return []
            return sorted(
                (self.relative(name), int(info.get("size") or 0))
                for name, info in found.items()
                if info.get("type", "file") != "directory"
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
        return cast(IO[bytes], _RetryingReader(self, key, readahead=readahead))

    # ------------------------------------------------------------ writing
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write (or overwrite) ``key`` with ``data``; last writer wins."""
        path = self.path(key)
        if self.kind == "local":
            self._call("write", key, lambda: _local_atomic_write(path, data))
        elif self.kind == "memory":

            def go() -> None:
                with _MEMORY_LOCK:
                    self.fs.pipe_file(path, data)

            self._call("write", key, go)
        else:
            self._call("write", key, lambda: self.fs.pipe_file(path, data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Write ``key`` only if no object exists there; else AlreadyExistsError.

        Atomic on every backend (see the module docstring for how, and for
        servers that ignore conditional writes).
        """
        path = self.path(key)

        def exists() -> AlreadyExistsError:
            return AlreadyExistsError(f'Object "{self.url(key)}" already exists', key=key)

        if self.kind == "local":

            def local() -> None:
                try:
                    _local_put_if_absent(path, data)
                except FileExistsError:
                    raise exists() from None

            self._call("create", key, local)
            return
        if self.kind == "memory":

            def memory() -> None:
                with _MEMORY_LOCK:
                    if self.fs.exists(path):
                        raise exists()
                    self.fs.pipe_file(path, data)

            self._call("create", key, memory)
            return

        put_id = uuid.uuid4().hex
        atomic = self._self_conditional(key)

        def remote() -> None:
            with contextlib.nullcontext() if atomic else _FALLBACK_LOCK:
                try:
                    if not atomic and self.fs.exists(path):
                        raise FileExistsError(path)
                    self._create(path, data, put_id)
                except Exception as exc:
                    if not _is_exists(exc):
                        raise
                    # Our own earlier attempt may have landed (lost response).
                    if self._put_id(path) == put_id:
                        return
                    raise exists() from None

        self._call("create", key, remote)

    def _create(self, path: str, data: bytes, put_id: str) -> None:
        """One conditional write, tagged with ``put_id``."""
        if self.kind == "s3":
            self.fs.pipe_file(path, data, mode="create", Metadata={PUT_ID: put_id})
        elif self.kind == "gcs":
            self.fs.pipe_file(path, data, mode="create", metadata={PUT_ID: put_id})
        elif self.kind == "azure":
            _azure_create(self.fs, path, data, {PUT_ID: put_id})
        else:  # another fsspec backend: its own "create" mode, untagged
            self.fs.pipe_file(path, data, mode="create")

    def _put_id(self, path: str) -> str | None:
        """The put id stored with the object at ``path``, if any."""
        try:
            if self.kind == "s3":
                meta = self.fs.metadata(path, refresh=True)
            else:
                self.fs.invalidate_cache(path)
                meta = self.fs.info(path).get("metadata") or {}
        except FileNotFoundError:
            return None
        value = meta.get(PUT_ID)
        return str(value) if value is not None else None

    def _self_conditional(self, key: str) -> bool:
        """Whether this Store's server honours conditional writes (probed once)."""
        if self._endpoint is None:
            return True
        cache_key = (self.kind, self._endpoint)
        with _PROBE_LOCK:
            known = _CONDITIONAL_SUPPORT.get(cache_key)
        if known is not None:
            return known
        parent = key.strip("/").rpartition("/")[0]
        probe = f"{parent}/.vecstore-probe-{uuid.uuid4().hex}".lstrip("/")
        path = self.path(probe)

        def go() -> bool:
            try:
                self._create(path, b"", "probe")
                try:
                    self._create(path, b"", "probe")
                except Exception as exc:
                    if _is_exists(exc):
                        return True
                    raise
                return False
            finally:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(path)

        try:
            supported = self._call("probe conditional writes at", probe, go)
        except AlreadyExistsError:  # a lost response on the first write: it landed
            supported = True
        with _PROBE_LOCK:
            _CONDITIONAL_SUPPORT[cache_key] = supported
        if not supported:
            logger.warning(
                "The %s server at %s ignores conditional writes: put_if_absent falls back to "
                "check-then-write under a lock, atomic only between threads of this process",
                self.kind,
                _scrub(self._endpoint, self._secrets),
            )
        return supported

    @contextlib.contextmanager
    def open_output(self, key: str) -> Iterator[IO[bytes]]:
        """A writable binary file at ``key``; visible once the block exits
        without an exception. The bytes go to a local temporary file first
        (next to the target on a local store, then renamed into place), and
        are uploaded whole, with retries. On an exception nothing is written
        and an existing object is left as it was."""
        path = self.path(key)
        if self.kind == "local":
            directory = os.path.dirname(path) or "."
            self._call("write", key, lambda: os.makedirs(directory, exist_ok=True))
            fd, tmp = tempfile.mkstemp(prefix=".vecstore-", suffix=".tmp", dir=directory)
        else:
            fd, tmp = tempfile.mkstemp(prefix="vecstore-upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
            if self.kind == "local":
                self._call("write", key, lambda: os.replace(tmp, path))
            elif self.kind == "memory":

                def memory() -> None:
                    with _MEMORY_LOCK:
                        self.fs.put_file(tmp, path)

                self._call("write", key, memory)
            else:
                self._call("write", key, lambda: self.fs.put_file(tmp, path))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def delete(self, key: str) -> None:
        """Delete one object; missing is fine."""

        def go() -> None:
            with self._memory_lock(), contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(key))

        self._call("delete", key, go)

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything below ``prefix``; missing is fine."""
        if not prefix.strip("/"):
            raise InvalidArgumentError("Refusing to delete the whole store root")

        def go() -> None:
            path = self.path(prefix)
            with self._memory_lock(), contextlib.suppress(FileNotFoundError):
                files = self.fs.find(path)
                if files and self.kind == "azure":
                    # adlfs would first check each file's existence, one request
                    # after the other; and when one delete of the batch finds its
                    # blob gone (a retry after a lost response) it returns without
                    # reporting the others' failures: check what is left instead
                    self.fs.rm(files, expand_path=False)
                    left = self.fs.find(path)
                    if left:
                        raise ConnectionError(f"{len(left)} objects were not deleted")
                elif files:
                    self.fs.rm(files)
                if self.kind in ("local", "memory") and self.fs.exists(path):
                    self.fs.rm(path, recursive=True)

        self._call("delete", prefix, go)

    def _memory_lock(self) -> contextlib.AbstractContextManager[Any]:
        return _MEMORY_LOCK if self.kind == "memory" else contextlib.nullcontext()


class _RetryingReader(io.RawIOBase):
    """A read-only, seekable view of one object whose reads go through
    :meth:`Store._call`: a transient failure reopens the object at the
    current position and tries again."""

    def __init__(self, store: Store, key: str, *, readahead: bool = True) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._path = store.path(key)
        self._pos = 0
        exact = not readahead and store.kind not in ("local", "memory")
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


def _azure_create(fs: Any, path: str, data: bytes, metadata: dict[str, str]) -> None:
    """A conditional (If-None-Match: *) blob upload with metadata; adlfs's
    pipe_file cannot take metadata."""
    from fsspec.asyn import sync

    container, blob, _ = fs.split_path(path)

    async def go() -> None:
        from azure.core.exceptions import ResourceExistsError

        async with fs.service_client.get_blob_client(container=container, blob=blob) as bc:
            try:
                await bc.upload_blob(
                    data=data,
                    overwrite=False,
                    metadata={"is_directory": "false", **metadata},
                )
            except ResourceExistsError:
                raise FileExistsError(path) from None

    sync(fs.loop, go)
    fs.invalidate_cache(path)


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
