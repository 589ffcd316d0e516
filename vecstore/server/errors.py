"""Pinecone's error body and status for every failure.

The body is ``{"error": {"code": "NOT_FOUND", "message": "..."}, "status": 404}``
(the SDKs show it as ``[404 NOT_FOUND] ...``). Deterministic errors are 4xx:
the SDKs retry 408/429/5xx three times, so a 5xx for bad input would be sent
four times. Only a storage outage (503, retryable) and a server bug (500)
are 5xx.
"""

from __future__ import annotations

from typing import Any

from vecstore import errors as ve


class ApiError(Exception):
    """An error answered with Pinecone's body; ``status`` is the HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "status": status}


def from_vecstore(exc: ve.VecstoreError) -> ApiError:
    """The HTTP answer to an error of the Python API."""
    msg = exc.message
    if isinstance(exc, ve.RateLimitedError):  # the write tail is over its cap
        return ApiError(429, "RESOURCE_EXHAUSTED", msg, {"Retry-After": "1"})
    if isinstance(exc, ve.InvalidArgumentError):
        return ApiError(400, "INVALID_ARGUMENT", msg)
    if isinstance(exc, ve.NotFoundError):
        return ApiError(404, "NOT_FOUND", msg)
    if isinstance(exc, ve.AlreadyExistsError):
        return ApiError(409, "ALREADY_EXISTS", msg)
    if isinstance(exc, ve.LimitExceededError):
        return ApiError(400, "OUT_OF_RANGE", msg)
    if isinstance(exc, ve.NotImplementedYet):
        return ApiError(400, "UNIMPLEMENTED", msg)
    if isinstance(exc, ve.CancelledError):
        return ApiError(409, "ABORTED", msg)
    if isinstance(exc, ve.AccessDeniedError):
        return ApiError(403, "PERMISSION_DENIED", msg)
    if isinstance(exc, ve.StorageError | ve.WaitTimeoutError):
        return ApiError(503, "UNAVAILABLE", msg)
    if isinstance(exc, ve.IngestError):
        return ApiError(400, "INVALID_ARGUMENT", msg)
    return ApiError(500, "INTERNAL", msg)
