"""The one error hierarchy of vecstore.

Every error raised on purpose by vecstore, schemas or pipelines derives from
:class:`VecstoreError`. Errors carry their context as keyword arguments
(``file``, ``row``, ``column``, ``index``, ``namespace``...) and pickle, so they
survive crossing from a Dask worker to the driver::

    VecstoreError
    ├── InvalidArgumentError          bad argument to an API call (also a ValueError)
    │   └── FilterError               a malformed metadata filter
    ├── NotFoundError                 index, namespace, import or object missing (also a KeyError)
    ├── AlreadyExistsError            index or object already there
    │   └── CommitConflictError       lost a write-if-absent race on a manifest or marker
    ├── StorageError                  the object store failed (after retries)
    │   └── AccessDeniedError         credentials missing or refused
    ├── FormatError                   stored data does not match the on-storage format
    ├── IngestError                   an import failed; ``message`` is what the job record shows
    │   ├── SchemaError               a whole file is unusable (columns, types, footer)
    │   ├── RecordError               one record is invalid (``file``, ``row``, ``reason``)
    │   └── LimitExceededError        an import exceeds a system limit
    ├── RateLimitedError              writes refused until the index builder catches up
    ├── CancelledError                a job was cancelled
    ├── MissingExtraError             an optional dependency is not installed (also an ImportError)
    ├── WaitTimeoutError              waiting for a job timed out (also a TimeoutError)
    └── NotImplementedYet             an engine that a later release provides (also NotImplementedError)

Messages say what was expected and what was found. They never contain
credentials: storage options are not part of any message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "CancelledError",
    "CommitConflictError",
    "FilterError",
    "FormatError",
    "IngestError",
    "InvalidArgumentError",
    "LimitExceededError",
    "MissingExtraError",
    "NotFoundError",
    "NotImplementedYet",
    "RateLimitedError",
    "RecordError",
    "SchemaError",
    "StorageError",
    "VecstoreError",
    "WaitTimeoutError",
]


class VecstoreError(Exception):
    """Root of every vecstore error. ``context`` holds the keyword arguments."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context

    def __getattr__(self, name: str) -> Any:
        # Context keys read as attributes (err.file, err.row) without a
        # hand-written property per subclass.
        context = self.__dict__.get("context", {})
        if name in context:
            return context[name]
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[VecstoreError], message: str, context: dict[str, Any]) -> VecstoreError:
    return cls(message, **context)


class InvalidArgumentError(VecstoreError, ValueError):
    """An argument to an API call is invalid."""


class FilterError(InvalidArgumentError):
    """A metadata filter is malformed; the message names the bad part."""


class NotFoundError(VecstoreError, KeyError):
    """An index, namespace, import or object does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AlreadyExistsError(VecstoreError):
    """An index or object already exists."""


class CommitConflictError(AlreadyExistsError):
    """Another writer committed the same version first."""


class StorageError(VecstoreError):
    """The object store failed, after retries."""


class AccessDeniedError(StorageError):
    """The object store refused the credentials (or their absence)."""


class FormatError(VecstoreError):
    """Stored data does not match the on-storage format."""


class IngestError(VecstoreError):
    """An import failed. ``message`` is the job record's ``error``."""


class SchemaError(IngestError):
    """A whole import file is unusable: columns, types or footer."""


class RecordError(IngestError):
    """One record is invalid. Context: ``file``, ``row``, ``reason``, ``code``."""


class LimitExceededError(IngestError):
    """An import exceeds a system limit."""


class RateLimitedError(VecstoreError):
    """A write refused for now (the namespace's unfolded log is at its cap)."""


class CancelledError(VecstoreError):
    """A job was cancelled."""


class MissingExtraError(VecstoreError, ImportError):
    """A feature needs an optional dependency: the message is the one-line
    ``pip install "vecstore[EXTRA]"`` hint. Context: ``extra``, ``module``."""


class NotImplementedYet(VecstoreError, NotImplementedError):
    """An engine that a later release provides."""


class WaitTimeoutError(VecstoreError, TimeoutError):
    """``wait_for_import`` gave up before the job finished."""
