"""Which kind of failure a backend exception is: transient (retry), refused
credentials, a missing object, or a lost conditional write. Exception classes
are recognised by name, so no backend has to be imported."""

from __future__ import annotations

import errno
from collections.abc import Iterator

from vecstore.errors import VecstoreError

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


def chain(exc: BaseException, *, context: bool = True) -> Iterator[BaseException]:
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


def status_of(exc: BaseException) -> int | None:
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


def error_code(exc: BaseException) -> str | None:
    """A backend's short error code (``AccessDenied``, ``AuthorizationFailure``...)."""
    for e in chain(exc):
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


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may succeed (server busy, connection lost, timeout)."""
    for e in chain(exc):
        if isinstance(e, FileNotFoundError | FileExistsError | PermissionError | VecstoreError):
            return False
        status = status_of(e)
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


def is_denied(exc: BaseException) -> bool:
    """Whether the backend refused the credentials (or their absence)."""
    for e in chain(exc):
        if isinstance(e, PermissionError):
            return True
        if status_of(e) in _DENIED_STATUS:
            return True
        if type(e).__name__ in ("ClientAuthenticationError", "NoCredentialsError"):
            return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _DENIED_TEXT)


def is_not_found(exc: BaseException) -> bool:
    """A missing object, bucket or container (however the client says it)."""
    for e in chain(exc, context=False):
        if isinstance(e, FileNotFoundError) or type(e).__name__ == "ResourceNotFoundError":
            return True
        if status_of(e) == 404:
            return True
    return False


def is_exists(exc: BaseException) -> bool:
    """A conditional write lost: the object is already there."""
    for e in chain(exc, context=False):
        if isinstance(e, FileExistsError):
            return True
        if status_of(e) == 412:
            return True
        if type(e).__name__ == "ResourceExistsError":
            return True
    return False
