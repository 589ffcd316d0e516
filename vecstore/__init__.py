"""vecstore: an object-storage vector store with a bulk import pipeline.

``import vecstore`` stays light: dask and the backends load only when used.
"""

from __future__ import annotations

from vecstore.api import Index, VecStore
from vecstore.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    CancelledError,
    CommitConflictError,
    FilterError,
    FormatError,
    IngestError,
    InvalidArgumentError,
    LimitExceededError,
    MissingExtraError,
    NotFoundError,
    NotImplementedYet,
    RecordError,
    SchemaError,
    StorageError,
    VecstoreError,
    WaitTimeoutError,
)
from vecstore.storage import Store

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "CancelledError",
    "CommitConflictError",
    "FilterError",
    "FormatError",
    "Index",
    "IngestError",
    "InvalidArgumentError",
    "LimitExceededError",
    "MissingExtraError",
    "NotFoundError",
    "NotImplementedYet",
    "RecordError",
    "SchemaError",
    "StorageError",
    "Store",
    "VecStore",
    "VecstoreError",
    "WaitTimeoutError",
    "__version__",
]
