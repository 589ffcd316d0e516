"""vecstore: an object-storage vector store with a bulk import pipeline.

``import vecstore`` stays light: numpy, pyarrow, dask and the storage
backends load only when used. Everything public is listed in ``__all__``
(a test checks it against the module).
"""

from vecstore.api import Index, ServerlessSpecLike, VecStore
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
    RateLimitedError,
    RecordError,
    SchemaError,
    StorageError,
    VecstoreError,
    WaitTimeoutError,
)
from vecstore.schemas import (
    Cloud,
    FetchResponse,
    ImportJob,
    ImportPage,
    IndexSpec,
    IndexStats,
    ListItem,
    ListResponse,
    NamespaceDescription,
    NamespaceSummary,
    Pagination,
    QueryResponse,
    RecordLayout,
    ScoredVector,
    SparseValues,
    StartImportResponse,
    Usage,
    Vector,
    VectorType,
)
from vecstore.schemas.metrics import Metric
from vecstore.storage import Store

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "CancelledError",
    "Cloud",
    "CommitConflictError",
    "FetchResponse",
    "FilterError",
    "FormatError",
    "ImportJob",
    "ImportPage",
    "Index",
    "IndexSpec",
    "IndexStats",
    "IngestError",
    "InvalidArgumentError",
    "LimitExceededError",
    "ListItem",
    "ListResponse",
    "Metric",
    "MissingExtraError",
    "NamespaceDescription",
    "NamespaceSummary",
    "NotFoundError",
    "NotImplementedYet",
    "Pagination",
    "QueryResponse",
    "RateLimitedError",
    "RecordError",
    "RecordLayout",
    "SchemaError",
    "ScoredVector",
    "ServerlessSpecLike",
    "SparseValues",
    "StartImportResponse",
    "StorageError",
    "Store",
    "Usage",
    "VecStore",
    "VecstoreError",
    "Vector",
    "VectorType",
    "WaitTimeoutError",
    "__version__",
]
