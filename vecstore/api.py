"""The public Python API: ``VecStore`` (control plane) and ``Index`` (data plane).

Names follow Pinecone's Python SDK. ``start_import`` raises only for invalid
arguments; every problem with the data or the import directory ends as a
``Failed`` job whose ``error`` says why.
"""

from __future__ import annotations

import builtins
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from vecstore import catalog, layout
from vecstore.errors import (
    AlreadyExistsError,
    FormatError,
    InvalidArgumentError,
    NotFoundError,
    VecstoreError,
    WaitTimeoutError,
)
from vecstore.integrations import Integrations, anonymous_options, from_environment
from vecstore.jobs import JobStore, lifecycle, new_job_id
from vecstore.runners import get_runner
from vecstore.schemas import (
    FINAL_STATUSES,
    Cloud,
    FetchResponse,
    ImportJob,
    ImportPage,
    IndexSpec,
    IndexStats,
    ListResponse,
    NamespaceDescription,
    NamespaceSummary,
    QueryResponse,
    SparseValues,
    StartImportResponse,
    VectorType,
)
from vecstore.schemas.metrics import Metric
from vecstore.storage import BACKEND_KINDS, Store, scheme_of, translate_uri

if TYPE_CHECKING:
    import numpy as np

    from vecstore.reader import Reader

log = logging.getLogger("vecstore")
E = TypeVar("E", Metric, VectorType, Cloud)


class ServerlessSpecLike(Protocol):
    """Pinecone's ``ServerlessSpec``: where an index is hosted."""

    @property
    def cloud(self) -> Any: ...

    @property
    def region(self) -> str: ...


INDEX_NAME = re.compile(r"^[a-z0-9-]{1,45}$")
MAX_DIMENSION = 20_000


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _choice(enum: type[E], what: str, value: Any) -> E:
    """``value`` (a member or its string) as a member of ``enum``."""
    try:
        return enum(_enum_value(value))
    except ValueError:
        names = ", ".join(repr(m.value) for m in enum)
        raise InvalidArgumentError(f"Invalid {what} {value!r}: expected one of {names}") from None


def validate_index_args(
    name: Any, dimension: Any, metric: Any, vector_type: Any, cloud: Any
) -> tuple[str, int | None, Metric, VectorType, Cloud]:
    """Check create_index arguments; return them normalised."""
    if not isinstance(name, str) or not INDEX_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"Invalid index name {name!r}: expected 1-45 lowercase letters, digits or hyphens",
            name=name,
        )
    vtype = _choice(VectorType, "vector_type", vector_type)
    sparse = vtype == VectorType.SPARSE
    if metric is None:
        metric = Metric.default_for(sparse=sparse)
    metric = _choice(Metric, "metric", metric)
    if sparse:
        if not metric.supports_sparse:
            names = " or ".join(repr(m.value) for m in Metric.sparse_metrics())
            raise InvalidArgumentError(
                f"Invalid metric {metric.value!r} for a sparse index: sparse indexes use {names}"
            )
        if dimension is not None:
            raise InvalidArgumentError(
                f"A sparse index takes no dimension, got dimension={dimension!r}"
            )
    else:
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            raise InvalidArgumentError(
                f"A dense index needs an integer dimension from 1 to {MAX_DIMENSION}, "
                f"got {dimension!r}"
            )
        if not 1 <= dimension <= MAX_DIMENSION:
            raise InvalidArgumentError(
                f"Invalid dimension {dimension}: expected 1 to {MAX_DIMENSION}"
            )
    return name, dimension, metric, vtype, _choice(Cloud, "cloud", cloud)


def validate_import_uri(uri: Any, spec: IndexSpec) -> str:
    """Argument checks of an import URI (the cloud rules included)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgumentError(f"An import uri is required, got {uri!r}")
    translate_uri(uri)  # raises on unsupported forms
    kind = scheme_of(uri)
    if kind not in BACKEND_KINDS:
        raise InvalidArgumentError(
            f'Unsupported import uri "{uri}": expected s3://, gs://, az://, '
            "https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR, memory:// or a local path"
        )
    if kind in ("s3", "gcs", "azure") and not uri.startswith("https://"):
        # (the https form of Azure was checked by translate_uri)
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        if not bucket:
            what = "container" if kind == "azure" else "bucket"
            raise InvalidArgumentError(
                f'Import uri "{uri}" names no {what}: expected '
                f"{uri.split('://', 1)[0]}://{what.upper()}/IMPORT_DIR"
            )
    if kind == "s3":
        if spec.cloud in ("gcp", "azure"):
            raise InvalidArgumentError(
                f'Cannot import from Amazon S3 ("{uri}") into index "{spec.name}" hosted on '
                f"{spec.cloud.upper() if spec.cloud == 'gcp' else 'Azure'}: an index on GCP or "
                "Azure imports only from Google Cloud Storage or Azure Blob Storage"
            )
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        if bucket.endswith("--x-s3"):
            raise InvalidArgumentError(
                f'Cannot import from S3 Express One Zone bucket "{bucket}": directory buckets '
                "(names ending in --x-s3) are not supported; use a general purpose bucket"
            )
    return uri


def validate_error_mode(error_mode: Any) -> str:
    value = _enum_value(error_mode)
    if isinstance(value, str) and value.lower() in ("continue", "abort"):
        return value.lower()
    raise InvalidArgumentError(f"Invalid error_mode {error_mode!r}: expected 'continue' or 'abort'")


class VecStore:
    """A vector store rooted at any fsspec URL (default: a local folder)."""

    def __init__(
        self,
        uri: str = "./vecstore-data",
        *,
        storage_options: dict[str, Any] | None = None,
        integrations: Mapping[str, dict[str, Any]] | None = None,
        source_options: Mapping[str, dict[str, Any]] | None = None,
        scheduler_address: str | None = None,
        config_path: str | None = None,
    ) -> None:
        self.store = Store(uri, storage_options)
        self.integrations = Integrations(integrations).merged(
            dict(_items(from_environment(config_path)))
        )
        # non-secret per-kind options for sources, e.g. {"s3": {"endpoint_url": ...}}
        self.source_options: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (source_options or {}).items()
        }
        self.scheduler_address = scheduler_address

    def __repr__(self) -> str:
        return f"VecStore({self.store.uri!r})"

    # ------------------------------------------------------------ indexes
    def create_index(
        self,
        name: str,
        *,
        dimension: int | None = None,
        metric: Metric | str | None = None,
        vector_type: VectorType | str = VectorType.DENSE,
        cloud: Cloud | str | None = None,
        region: str | None = None,
        spec: ServerlessSpecLike | Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: float | None = None,
        deletion_protection: str = "disabled",
    ) -> IndexSpec:
        """Create an index (Pinecone's ``create_index``); raises AlreadyExistsError.

        ``spec`` is Pinecone's ``ServerlessSpec(cloud=..., region=...)`` or a
        mapping with those keys; ``cloud`` / ``region`` may also be given
        directly. ``timeout`` is accepted for compatibility: the index is
        ready when this returns. ``deletion_protection`` must be "disabled"
        (vecstore has no protected indexes)."""
        del timeout  # ready at once
        if _enum_value(deletion_protection) != "disabled":
            raise InvalidArgumentError(
                f"Invalid deletion_protection {deletion_protection!r}: vecstore supports only "
                "'disabled'"
            )
        if spec is not None:
            cloud = cloud or _enum_value(_get(spec, "cloud"))
            region = region or _get(spec, "region")
        name, dimension, valid_metric, valid_type, valid_cloud = validate_index_args(
            name, dimension, metric, vector_type, cloud or Cloud.AWS
        )
        index = IndexSpec(
            name=name,
            dimension=dimension,
            metric=valid_metric,
            vector_type=valid_type,
            cloud=valid_cloud,
            region=region or "local",
            tags=dict(tags or {}),
        )
        try:
            self.store.put_if_absent(
                layout.index_spec_key(name), index.model_dump_json(indent=1).encode()
            )
        except AlreadyExistsError:
            raise AlreadyExistsError(f'Index "{name}" already exists', index=name) from None
        return index

    def describe_index(self, name: str) -> IndexSpec:
        if not isinstance(name, str) or not INDEX_NAME.fullmatch(name):
            raise NotFoundError(f'Index "{name}" not found', index=name)
        try:
            raw = self.store.read_bytes(layout.index_spec_key(name))
        except NotFoundError:
            raise NotFoundError(f'Index "{name}" not found', index=name) from None
        try:
            return IndexSpec.model_validate_json(raw)
        except ValueError as exc:
            raise FormatError(f'index.json of "{name}" is not valid: {exc}') from exc

    def has_index(self, name: str) -> bool:
        try:
            self.describe_index(name)
        except NotFoundError:
            return False
        return True

    def list_indexes(self) -> list[IndexSpec]:
        out = []
        for key in self.store.ls(layout.INDEX_ROOT):
            name = key.rsplit("/", 1)[-1]
            try:
                out.append(self.describe_index(name))
            except NotFoundError:
                continue
        return sorted(out, key=lambda s: s.name)

    def delete_index(self, name: str) -> None:
        self.describe_index(name)
        for job in JobStore(self.store, name).iter_all():
            if not job.done:
                self.Index(name).cancel_import(job.id)
        # index.json goes first: the index disappears at once for readers.
        self.store.delete(layout.index_spec_key(name))
        self.store.delete_prefix(layout.index_prefix(name))

    def Index(self, name: str) -> Index:  # noqa: N802 - Pinecone's spelling
        """The data-plane handle of an existing index (raises NotFoundError)."""
        return Index(self, self.describe_index(name))

    # ----------------------------------------------------------- sources
    def source_store(self, uri: str, integration_id: str | None) -> Store:
        """The store an import reads from, with its integration's credentials."""
        kind = scheme_of(uri)
        base = dict(self.source_options.get(kind, {}))
        if integration_id:
            opts = {**base, **self.integrations.options(integration_id)}
        else:  # (local and memory stores take no credentials: base unchanged)
            opts = anonymous_options(kind, base)
        return Store(uri, opts)


def _items(integrations: Integrations) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in integrations.ids():
        yield i, integrations.options(i)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


class Index:
    """One index: imports, queries, namespaces."""

    def __init__(self, vs: VecStore, spec: IndexSpec) -> None:
        self._vs = vs
        self.spec = spec
        self.name = spec.name
        self.store = vs.store
        self.jobs = JobStore(vs.store, spec.name)
        self._reader: Reader | None = None

    def __repr__(self) -> str:
        return f"Index({self.name!r})"

    # ------------------------------------------------------------ imports
    # The job lifecycle (take-over of jobs whose runner is lost, cancel,
    # recovery) is vecstore.jobs.lifecycle; these methods only call it.
    def start_import(
        self,
        uri: str,
        integration_id: str | None = None,
        error_mode: str | Enum = "continue",
    ) -> StartImportResponse:
        """Start an import of ``uri`` (Pinecone's arguments; ``error_mode``
        "continue" or "abort", any case, or an enum with such a value)."""
        uri = validate_import_uri(uri, self.spec)
        mode = validate_error_mode(error_mode)
        if integration_id is not None:
            self._vs.integrations.options(integration_id)  # unknown id -> argument error
        source = self._vs.source_store(uri, integration_id)
        runner = get_runner(self._vs.scheduler_address)  # before any record: no orphan job
        self._recover_quietly()
        job_id = new_job_id()
        job = self.jobs.create(
            ImportJob(
                id=job_id,
                index=self.name,
                uri=uri,
                error_mode=mode,
                integration_id=integration_id,
                rejects_uri=self.store.url(layout.rejects_prefix(self.name, job_id)),
            )
        )
        runner.submit(self.store, self.spec, job, source)
        return StartImportResponse(id=job.id)

    def describe_import(self, id: str) -> ImportJob:  # noqa: A002 - Pinecone's name
        """The import's record; a job whose runner is lost is taken over first
        (resumed, or finished), so polling this always reaches a final status."""
        return lifecycle.settle(self.store, self.name, self.jobs.get(id), resume=self._resume)

    def list_imports(
        self, *, limit: int = 100, pagination_token: str | None = None
    ) -> Iterator[ImportJob]:
        """Every import, newest first (fetched ``limit`` per page), starting
        after ``pagination_token`` when given."""
        return self.jobs.iter_all(limit, pagination_token)

    def list_imports_paginated(
        self, *, limit: int | None = None, pagination_token: str | None = None
    ) -> ImportPage:
        return self.jobs.page(limit, pagination_token)

    def cancel_import(self, id: str) -> ImportJob:  # noqa: A002
        """Stop a running import; a no-op on a finished one. A job whose runner
        is lost (stale heartbeat) or never started is cancelled at once."""
        return lifecycle.cancel(self.store, self.name, id)

    def wait_for_import(
        self,
        id: str,  # noqa: A002
        *,
        timeout: float | None = None,
        poll_interval: float = 0.2,
    ) -> ImportJob:
        """Block until the import reaches a final status; return its record.
        A job whose runner died is taken over while waiting (see describe_import)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.describe_import(id)
            if job.status in FINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"Import {id} still {job.status} ({job.percent_complete:.1f}%) after {timeout} s",
                    id=id,
                )
            time.sleep(poll_interval)

    def _recover_quietly(self) -> None:
        """Take over imports of this index whose runner died (on every start)."""
        try:
            self.recover_imports()
        except VecstoreError as exc:  # a new import must not fail for an old one
            log.warning("recovering stale imports of %s failed: %s", self.name, exc.message)

    def _source_for(self, job: ImportJob) -> Store:
        """A job's source, with this VecStore's integration of its
        ``integration_id``: credentials are never stored with the job."""
        return self._vs.source_store(job.uri, job.integration_id)

    def _resume(self, job: ImportJob) -> None:
        """Start a new attempt of ``job`` in this process's runner of its kind."""
        source = self._source_for(job)
        get_runner(self._vs.scheduler_address, kind=job.kind).submit(
            self.store, self.spec, job, source
        )

    def recover_imports(self) -> list[str]:
        """Resume or fail imports whose runner died; returns their ids.

        A resumed import reads its source with this VecStore's integration
        of the job's ``integration_id`` (and its ``source_options``)."""
        return get_runner(self._vs.scheduler_address).recover(
            self.store, self.name, source_for=self._source_for
        )

    # ------------------------------------------------------------- reading
    @property
    def reader(self) -> Reader:
        """The query engine of this index (created on first use)."""
        if self._reader is None:
            from vecstore.reader import Reader

            self._reader = Reader(self.store, self.spec)
        return self._reader

    def query(
        self,
        *,
        top_k: int,
        vector: Sequence[float] | np.ndarray | None = None,
        id: str | None = None,  # noqa: A002 - Pinecone's name
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
        include_values: bool = False,
        include_metadata: bool = False,
        sparse_vector: SparseValues | Mapping[str, Sequence[Any]] | None = None,
        nprobe: int | None = None,
    ) -> QueryResponse:
        """The ``top_k`` nearest records of ``vector`` / ``sparse_vector`` / the
        stored record ``id`` (Pinecone's ``query``). ``nprobe`` (beyond
        Pinecone): how many clusters to scan; more is slower and more exact."""
        return self.reader.query(
            top_k=top_k,
            vector=vector,
            id=id,
            namespace=namespace,
            filter=filter,
            include_values=include_values,
            include_metadata=include_metadata,
            sparse_vector=sparse_vector,
            nprobe=nprobe,
        )

    def fetch(self, ids: Sequence[str], namespace: str | None = None) -> FetchResponse:
        """The stored records of ``ids``; absent ids are left out."""
        return self.reader.fetch(ids, namespace=namespace)

    def list_paginated(
        self,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        pagination_token: str | None = None,
        namespace: str | None = None,
    ) -> ListResponse:
        """One page of ids in ascending order; ``pagination`` is None on the last page."""
        return self.reader.list_paginated(
            prefix=prefix, limit=limit, pagination_token=pagination_token, namespace=namespace
        )

    def describe_index_stats(self, *, filter: Mapping[str, Any] | None = None) -> IndexStats:  # noqa: A002
        """Record counts per namespace. ``filter`` is not supported (as on
        Pinecone serverless indexes): passing one is an InvalidArgumentError."""
        if filter is not None:
            raise InvalidArgumentError(
                "describe_index_stats does not take a filter on a serverless index"
            )
        nss = catalog.namespaces(self.store, self.name)
        counts = {ns: NamespaceSummary(vector_count=m.record_count) for ns, m in nss.items()}
        return IndexStats(
            namespaces=counts,
            dimension=self.spec.dimension,
            total_vector_count=sum(c.vector_count for c in counts.values()),
            metric=self.spec.metric,
            vector_type=self.spec.vector_type,
        )

    def list_namespaces(
        self, *, prefix: str | None = None, limit: int | None = None
    ) -> list[NamespaceDescription]:
        """The namespaces of the index (those starting with ``prefix``), by name;
        at most ``limit`` of them."""
        from vecstore.query import args

        pre = args.list_prefix(prefix)
        lim = None if limit is None else args.list_limit(limit)
        nss = catalog.namespaces(self.store, self.name)
        found = [
            NamespaceDescription(name=ns, record_count=m.record_count)
            for ns, m in sorted(nss.items())
            if ns.startswith(pre)
        ]
        return found if lim is None else found[:lim]

    def describe_namespace(self, namespace: str) -> NamespaceDescription:
        """Name and record count of one namespace (raises NotFoundError)."""
        m = catalog.namespace(self.store, self.name, namespace)
        if m is None:
            raise NotFoundError(
                f'Namespace "{namespace}" not found in index "{self.name}"', namespace=namespace
            )
        return NamespaceDescription(name=namespace, record_count=m.record_count)

    def delete_namespace(self, namespace: str) -> None:
        from vecstore import commit

        commit.apply(self.store, self.name, commit.DeleteNamespace(namespace=namespace))

    # defined last: the name shadows the builtin in the class body
    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        pagination_token: str | None = None,
        namespace: str | None = None,
    ) -> Iterator[builtins.list[str]]:
        """Every id (with ``prefix``), one list of ids per page, like Pinecone's SDK."""
        return self.reader.list(
            prefix=prefix, limit=limit, pagination_token=pagination_token, namespace=namespace
        )
