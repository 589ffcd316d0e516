"""Frozen pydantic models: the index spec, import job records, namespace
manifests and the query / fetch / stats responses.

Models are immutable; change them with ``model_copy(update=...)``. JSON field
names are the Python names (snake_case); the REST layer maps them to
Pinecone's camelCase.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from vecstore.schemas.metrics import Metric as Metric  # re-exported: the schemas' field type

FORMAT_VERSION = 1
# Manifests that record the write-ahead-log position they have applied
# (``applied_lsn``, written by the index builder) are format 2; readers take
# both, and a format-1 manifest has applied nothing of the log.
MANIFEST_FORMAT_WAL = 2
MANIFEST_FORMAT_DELTA = 3  # clusters with delta segments / deleted rows


class VectorType(StrEnum):
    """The ``vector_type`` of an index (Pinecone's name)."""

    DENSE = "dense"
    SPARSE = "sparse"


class Cloud(StrEnum):
    """The ``cloud`` an index is hosted on (Pinecone's names)."""

    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class RecordLayout(StrEnum):
    """Which vectors the records of an index carry (its import file layout):
    dense values, sparse values, or both (a dense dotproduct index)."""

    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


ImportStatus = Literal["Pending", "InProgress", "Completed", "Failed", "Cancelled"]
ErrorMode = Literal["continue", "abort"]
# What a job does; its lifecycle is the same for every kind (vecstore/jobs/).
JobKind = Literal["import", "load", "build", "rebuild", "vacuum"]
# an import creates its namespaces (Pinecone's rule); a batch load upserts into
# namespaces that may exist (issue 12, docs/loads-pipeline.md)
ImportMode = Literal["create", "upsert"]
# fields of a load's record, left out of an import's JSON (``mode == "create"``)
LOAD_COUNTS = (
    "records_upserted",
    "ids_deleted",
    "prefixes_deleted",
    "files_loaded",
    "files_skipped",
)
LOAD_FIELDS = ("mode", "force", "history", *LOAD_COUNTS)
NamespaceStatus = Literal["Pending", "InProgress", "Committed", "Failed", "Cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"Completed", "Failed", "Cancelled"})


def utcnow() -> datetime:
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------- index


class IndexSpec(Frozen):
    """``indexes/<name>/index.json``."""

    format_version: int = FORMAT_VERSION
    name: str
    dimension: int | None = None
    metric: Metric = Metric.COSINE
    vector_type: VectorType = VectorType.DENSE
    cloud: Cloud = Cloud.AWS
    region: str = "local"
    created_at: datetime = Field(default_factory=utcnow)
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def record_layout(self) -> RecordLayout:
        """Which vectors the records carry (the import file layout)."""
        if self.vector_type == VectorType.SPARSE:
            return RecordLayout.SPARSE
        return RecordLayout.HYBRID if self.metric.supports_sparse else RecordLayout.DENSE


# ---------------------------------------------------------------------- jobs


class NamespaceProgress(Frozen):
    files: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    records_read: int = 0
    records_imported: int = 0
    records_skipped: int = 0
    status: NamespaceStatus = "Pending"


class Job(Frozen):
    """``indexes/<index>/imports/<id>.json``: one job record (every kind).

    ``kind`` says what the job does; records written before kinds existed
    have none and are imports. An import's record is written without
    ``kind`` (see :meth:`_omit_default_kind`), byte for byte as before, so
    older readers keep reading new records.
    """

    format_version: int = FORMAT_VERSION
    id: str
    kind: JobKind = "import"
    index: str
    uri: str
    status: ImportStatus = "Pending"
    error_mode: ErrorMode = "continue"
    integration_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    percent_complete: float = 0.0
    records_imported: int = 0
    error: str | None = None
    # beyond Pinecone
    phase: str = "pending"
    bytes_total: int = 0
    bytes_read: int = 0
    records_skipped: dict[str, int] = Field(default_factory=dict)
    namespaces: dict[str, NamespaceProgress] = Field(default_factory=dict)
    rejects_uri: str | None = None
    heartbeat_at: datetime | None = None
    runner: str | None = None
    attempt: int = 1
    cancel_requested: bool = False
    # what a job that is not an import reports (a rebuild's balance and recall);
    # left out of the JSON when None
    report: dict[str, Any] | None = None
    # a batch load (start_import(mode="upsert")); every field below is left
    # out of the JSON of an import (mode "create"), which stays byte-identical
    mode: ImportMode = "create"
    force: bool = False  # load files the load history says were loaded already
    history: bool = True  # consult and record the load history (mode "upsert")
    # a load's counts (None: not a load)
    records_upserted: int | None = None
    ids_deleted: int | None = None  # ids the load's delete files named (existing namespaces)
    prefixes_deleted: int | None = None  # id prefixes they named
    files_loaded: int | None = None  # files read: data and delete files
    files_skipped: int | None = None  # files skipped by the load history (loaded before)

    @model_serializer(mode="wrap")
    def _omit_default_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("kind") == "import":
            del data["kind"]
        if data.get("mode", "create") == "create":
            for name in LOAD_FIELDS:
                data.pop(name, None)
        if "report" in data and data["report"] is None:
            del data["report"]
        return data

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def records_skipped_total(self) -> int:
        return sum(self.records_skipped.values())


# Pinecone's name for the record of an import (the same model)
ImportJob = Job


class StartImportResponse(Frozen):
    id: str


class Pagination(Frozen):
    next: str


class ImportPage(Frozen):
    data: list[ImportJob]
    pagination: Pagination | None = None


# ------------------------------------------------------------------ manifest


class FieldStats(Frozen):
    """Statistics of one metadata field within one cluster.

    ``count`` rows carry the field. Numbers: ``min``/``max``. Strings and
    string lists: ``values`` is the exact set when it has at most
    ``STATS_MAX_VALUES`` members, else None (unknown). Booleans: ``true`` /
    ``false`` counts.
    """

    count: int = 0
    num_count: int = 0
    min: float | None = None
    max: float | None = None
    str_count: int = 0
    values: list[str] | None = None
    bool_true: int = 0
    bool_false: int = 0
    list_count: int = 0


STATS_MAX_VALUES = 64


class ClusterEntry(Frozen):
    """One cluster of a namespace version: its segment file and statistics.

    Format 3 (delta segments, written by the index builder): ``deltas`` are
    segment files of rows added since ``segment`` was written; the cluster's
    rows are the segment's then each delta's, numbered as one sequence (the
    id files' ``row``). ``deleted`` is a file of the row numbers no longer
    live (``.npy`` int32). ``row_count`` counts every row of the segment and
    deltas, ``delta_rows`` those of the deltas, ``deleted_count`` the deleted
    ones; ``stats`` cover every row. A cluster without deltas or deletions
    serialises exactly as before.
    """

    id: int
    segment: str  # path relative to the namespace directory
    row_count: int
    byte_size: int
    stats: dict[str, FieldStats] = Field(default_factory=dict)
    deltas: list[str] = Field(default_factory=list)
    delta_rows: int = 0
    deleted: str | None = None
    deleted_count: int = 0

    @model_serializer(mode="wrap")
    def _drop_no_deltas(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        for name in ("deltas", "delta_rows", "deleted", "deleted_count"):
            if not out.get(name, 0):
                out.pop(name, None)
        return out

    def parts(self) -> list[str]:
        """The segment, then its deltas (relative paths)."""
        return [self.segment, *self.deltas]

    def files(self) -> list[str]:
        return self.parts() + ([self.deleted] if self.deleted else [])

    @property
    def live_count(self) -> int:
        return self.row_count - self.deleted_count


class MetadataField(Frozen):
    """A metadata field as stored in segment columns (kinds seen)."""

    name: str
    kinds: list[Literal["num", "str", "bool", "list"]]


class Manifest(Frozen):
    """``namespaces/<ns>/_manifests/<version:020d>.json``.

    A namespace is visible when its newest manifest exists, is not
    ``deleted``, and (if written by an import) that import's commit marker
    exists.
    """

    format_version: int = FORMAT_VERSION
    index: str
    namespace: str
    version: int
    created_at: datetime = Field(default_factory=utcnow)
    import_id: str | None = None
    deleted: bool = False
    vector_type: VectorType = VectorType.DENSE
    metric: Metric = Metric.COSINE
    dimension: int | None = None
    record_count: int = 0
    byte_size: int = 0
    centroids: str | None = None  # relative path of the .centroids file (npy float32, k x d)
    clusters: list[ClusterEntry] = Field(default_factory=list)
    id_files: list[str] = Field(default_factory=list)  # id -> (cluster, row) lookup files
    fields: list[MetadataField] = Field(default_factory=list)
    parent_version: int | None = None
    applied_lsn: int | None = None  # format 2: the last log entry folded in (None: 0)
    # drift (docs/rebuild.md): records when the centroids were trained, records
    # assigned to them since (None: unknown; left out of the JSON)
    trained_records: int | None = None
    added_since_training: int | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_lsn(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a manifest that applied no log entry serialises exactly as format 1
        out: dict[str, Any] = handler(self)
        for key in ("applied_lsn", "trained_records", "added_since_training"):
            if key in out and out[key] is None:
                del out[key]
        return out

    def files(self) -> list[str]:
        """Every data file this version references (relative paths)."""
        out = [f for c in self.clusters for f in c.files()] + list(self.id_files)
        if self.centroids:
            out.append(self.centroids)
        # each once: an id_files entry may name a segment (a small namespace's lookup)
        return list(dict.fromkeys(out))


# ----------------------------------------------------------- query responses


class SparseValues(Frozen):
    indices: list[int]
    values: list[float]


class ScoredVector(Frozen):
    id: str
    score: float
    values: list[float] | None = None
    sparse_values: SparseValues | None = None
    metadata: dict[str, Any] | None = None


class Usage(Frozen):
    read_units: int = 0


class QueryResponse(Frozen):
    matches: list[ScoredVector]
    namespace: str
    usage: Usage = Field(default_factory=Usage)


class UpsertResponse(Frozen):
    """What ``Index.upsert`` returns (the SDK's ``UpsertResponse``)."""

    upserted_count: int


class UpdateResponse(Frozen):
    """What ``Index.update`` returns: the records matched (the SDK's
    ``UpdateResponse.matched_records``; by id: 1, or 0 for an unknown id)."""

    matched_records: int


class Vector(Frozen):
    id: str
    values: list[float] | None = None
    sparse_values: SparseValues | None = None
    metadata: dict[str, Any] | None = None


class FetchResponse(Frozen):
    vectors: dict[str, Vector]
    namespace: str
    usage: Usage = Field(default_factory=Usage)


class NamespaceSummary(Frozen):
    vector_count: int


class IndexStats(Frozen):
    namespaces: dict[str, NamespaceSummary]
    dimension: int | None
    index_fullness: float = 0.0
    total_vector_count: int
    metric: Metric
    vector_type: VectorType


class NamespaceDescription(Frozen):
    name: str
    record_count: int


class ListItem(Frozen):
    id: str


class ListResponse(Frozen):
    vectors: list[ListItem]
    namespace: str
    pagination: Pagination | None = None
