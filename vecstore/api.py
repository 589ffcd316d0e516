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
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from vecstore import catalog, layout, manifests
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
    Cloud,
    FetchResponse,
    ImportJob,
    ImportPage,
    IndexSpec,
    IndexStats,
    Job,
    ListResponse,
    NamespaceDescription,
    NamespaceSummary,
    QueryResponse,
    SparseValues,
    StartImportResponse,
    UpdateResponse,
    UpsertResponse,
    VectorType,
)
from vecstore.schemas.metrics import Metric
from vecstore.schemas.models import LOAD_COUNTS, ImportMode
from vecstore.storage import Store, backend_for, scheme_of, translate_uri

if TYPE_CHECKING:
    import numpy as np

    from vecstore.jobs.build_kind import BuildResults
    from vecstore.reader import Reader
    from vecstore.vacuum import VacuumReport

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
    backend = backend_for(uri)
    if not backend.import_source:
        raise InvalidArgumentError(
            f'Unsupported import uri "{uri}": expected s3://, gs://, az://, '
            "https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR, memory:// or a local path"
        )
    backend.check_import_source(uri, str(spec.cloud), spec.name)
    return uri


def validate_error_mode(error_mode: Any) -> str:
    value = _enum_value(error_mode)
    if isinstance(value, str) and value.lower() in ("continue", "abort"):
        return value.lower()
    raise InvalidArgumentError(f"Invalid error_mode {error_mode!r}: expected 'continue' or 'abort'")


def validate_import_mode(mode: Any) -> ImportMode:
    """``start_import``'s ``mode``: "create" (an import) or "upsert" (a batch load)."""
    value = _enum_value(mode)
    if isinstance(value, str) and value.lower() in ("create", "upsert"):
        return "create" if value.lower() == "create" else "upsert"
    raise InvalidArgumentError(f"Invalid mode {mode!r}: expected 'create' or 'upsert'")


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
        # from now on every namespace's first write leaves a marker (wal.mark_logged)
        self.store.write_bytes(layout.logged_tracked_key(name), b"")
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
                self.Index(name).cancel_job(job.id)
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


def _wait_final(
    describe: Callable[[str], Job],
    id: str,
    what: str,
    timeout: float | None,
    poll: float,  # noqa: A002
) -> Job:
    """Poll ``describe(id)`` until the job is final (describing takes over a
    job whose runner died); WaitTimeoutError after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = describe(id)
        if job.done:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"{what} {id} still {job.status} ({job.percent_complete:.1f}%) after {timeout} s",
                id=id,
            )
        time.sleep(poll)


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
        *,
        mode: str | Enum = "create",
        force: bool = False,
        history: bool = True,
    ) -> StartImportResponse:
        """Start an import of ``uri`` (Pinecone's arguments; ``error_mode``
        "continue" or "abort", any case, or an enum with such a value).

        ``mode="create"`` (the default, Pinecone's rule): every namespace must
        be new. ``mode="upsert"``: a batch load (docs/loads-pipeline.md); its
        namespaces may exist, a record replaces the record of the same id, and
        the whole load commits at once. A load consults the index's load
        history unless ``history=False`` (files already loaded are skipped);
        ``force=True`` loads them again (and records them)."""
        uri = validate_import_uri(uri, self.spec)
        err_mode = validate_error_mode(error_mode)
        load_mode = validate_import_mode(mode)
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
                error_mode=err_mode,
                integration_id=integration_id,
                rejects_uri=self.store.url(layout.rejects_prefix(self.name, job_id)),
                mode=load_mode,
                force=bool(force),
                history=bool(history),
                **(dict.fromkeys(LOAD_COUNTS, 0) if load_mode == "upsert" else {}),
            )
        )
        runner.submit(self.store, self.spec, job, source)
        return StartImportResponse(id=job.id)

    def describe_import(self, id: str) -> ImportJob:  # noqa: A002 - Pinecone's name
        """The import's record; a job whose runner is lost is taken over first
        (resumed, or finished), so polling this always reaches a final status."""
        job = self.jobs.get(id)
        if job.kind != "import":
            raise NotFoundError(f"Import {id} not found (it is a {job.kind} job)", id=id)
        return lifecycle.settle(self.store, self.name, job, resume=self._resume)

    def list_imports(
        self, *, limit: int = 100, pagination_token: str | None = None
    ) -> Iterator[ImportJob]:
        """Every import, newest first (fetched ``limit`` per page), starting
        after ``pagination_token`` when given."""
        return self.jobs.iter_all(limit, pagination_token, kind="import")

    def list_imports_paginated(
        self, *, limit: int | None = None, pagination_token: str | None = None
    ) -> ImportPage:
        return self.jobs.page(limit, pagination_token, kind="import")

    # --------------------------------------------------------------- jobs
    # Jobs of every kind (imports, builds) on the common lifecycle.
    def list_jobs(self, *, kind: str | None = None, limit: int = 100) -> Iterator[Job]:
        """Every job (of ``kind``: "import", "build"), newest first."""
        return self.jobs.iter_all(limit, kind=kind)

    def describe_job(self, id: str) -> Job:  # noqa: A002
        """A job's record; one whose runner is lost is taken over first
        (rerun in this process, or finished), as ``describe_import`` does."""
        return lifecycle.settle(self.store, self.name, self.jobs.get(id), resume=self._resume)

    def cancel_job(self, id: str) -> Job:  # noqa: A002
        """Cancel a job of any kind (a no-op on a finished one)."""
        return lifecycle.cancel(self.store, self.name, id)

    def wait_for_job(
        self,
        id: str,  # noqa: A002
        *,
        timeout: float | None = None,
        poll_interval: float = 0.2,
    ) -> Job:
        """Block until a job of any kind is final (taking it over if its runner died)."""
        return _wait_final(self.describe_job, id, "Job", timeout, poll_interval)

    def recover_jobs(self) -> builtins.list[str]:
        """Take over jobs of every kind whose runner died (rerun or finished); their ids."""
        return lifecycle.recover_stale(self.store, self.name, resume=self._resume)

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
        return _wait_final(self.describe_import, id, "Import", timeout, poll_interval)

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
        if job.kind != "import":  # builds and rebuilds read this index's own store
            self._kind_runner(job.kind).submit(self.store, self.spec, job, self.store)
            return
        source = self._source_for(job)
        get_runner(self._vs.scheduler_address, kind=job.kind).submit(
            self.store, self.spec, job, source
        )

    def _kind_runner(self, kind: str) -> Any:
        """The runner of jobs of ``kind`` (VECSTORE_RUNNER overrides the import runner only)."""
        from vecstore.jobs.kinds import kind_of

        return get_runner(self._vs.scheduler_address, kind_of(kind).runner)

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
        """Live record counts per namespace (clusters plus logged writes not
        yet built, minus deletes). ``filter`` is not supported (as on
        Pinecone serverless indexes): passing one is an InvalidArgumentError."""
        if filter is not None:
            raise InvalidArgumentError(
                "describe_index_stats does not take a filter on a serverless index"
            )
        nss = catalog.namespaces(self.store, self.name)
        logged = self._logged()
        counts = {
            ns: NamespaceSummary(vector_count=self._count(ns, m.record_count, logged))
            for ns, m in nss.items()
        }
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
        logged = self._logged()
        found = [
            NamespaceDescription(name=ns, record_count=self._count(ns, m.record_count, logged))
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
        logged = self._logged()
        count = self._count(namespace, m.record_count, logged)
        return NamespaceDescription(name=namespace, record_count=count)

    def _logged(self) -> set[str] | None:
        """Namespaces that have (had) a write log (one listing; None: unknown)."""
        from vecstore import wal  # (pyarrow: not loaded by ``import vecstore``)

        return wal.logged_namespaces(self.store, self.name)

    def _count(self, namespace: str, built: int, logged: set[str] | None) -> int:
        """Live records of a namespace: ``built`` (the catalog's count of its
        visible manifest) for a namespace that never had a write log, else
        the reader's count with the log's tail (docs/catalog.md)."""
        if logged is not None and namespace not in logged:
            return built
        count = self.reader.record_count(namespace)
        return built if count is None else count

    # ------------------------------------------------------------- writing
    def upsert(
        self,
        vectors: Any,
        *,
        namespace: str | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> UpsertResponse:
        """Insert or replace records (Pinecone's ``upsert``): dicts, tuples
        ``(id, values[, metadata])``, objects with ``.id``, or a pyarrow Table /
        pandas DataFrame. Creates the namespace if needed. Durable and visible
        to this process's reads when it returns; an invalid record anywhere
        writes nothing. ``batch_size`` splits the call into requests (one log
        entry each)."""
        ns = self._write_ns(namespace)
        from vecstore import writes

        count = writes.upsert(self.store, self.spec, ns, vectors, batch_size, show_progress)
        self._written(ns)
        return UpsertResponse(upserted_count=count)

    def upsert_from_dataframe(
        self,
        df: Any,
        *,
        namespace: str | None = None,
        batch_size: int = 500,
        show_progress: bool = True,
    ) -> UpsertResponse:
        """Upsert the rows of a pandas DataFrame (or pyarrow Table) with columns
        ``id``, ``values`` and optionally ``sparse_values``, ``metadata``."""
        return self.upsert(
            df, namespace=namespace, batch_size=batch_size, show_progress=show_progress
        )

    def update(
        self,
        id: str | None = None,  # noqa: A002 - Pinecone's name
        *,
        values: Sequence[float] | None = None,
        sparse_values: SparseValues | Mapping[str, Sequence[Any]] | None = None,
        set_metadata: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
        dry_run: bool = False,
    ) -> UpdateResponse:
        """Update one record (values replaced, ``set_metadata`` keys merged), or
        the metadata of every record matching ``filter``; returns the records
        matched (``dry_run``: counted, not changed)."""
        ns = self._write_ns(namespace)
        from vecstore import writes

        n = writes.update(
            self.store,
            self.spec,
            ns,
            id=id,
            values=values,
            sparse_values=sparse_values,
            set_metadata=set_metadata,
            filter=filter,
            dry_run=dry_run,
        )
        if n and not dry_run:
            self._written(ns)
        return UpdateResponse(matched_records=n)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        *,
        delete_all: bool | None = None,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
    ) -> None:
        """Delete ``ids`` (unknown ids are no error), every record
        (``delete_all=True``; the namespace stays) or the records matching
        ``filter``."""
        ns = self._write_ns(namespace)
        from vecstore import writes

        if writes.delete(self.store, self.spec, ns, ids, bool(delete_all), filter):
            self._written(ns)

    @overload
    def build(
        self, *, namespace: str | None = None, wait: Literal[True] = True
    ) -> BuildResults: ...

    @overload
    def build(self, *, namespace: str | None = None, wait: Literal[False]) -> Job: ...

    @overload
    def build(self, *, namespace: str | None = None, wait: bool) -> BuildResults | Job: ...

    def build(self, *, namespace: str | None = None, wait: bool = True) -> BuildResults | Job:
        """Fold logged writes into the clusters now, as a build job (listed by
        ``list_jobs``, cancellable, recovered after a crash): of ``namespace``,
        or of every namespace with unfolded writes. With ``wait`` the job runs
        in this thread and each namespace's :class:`~vecstore.builder.BuildResult`
        is returned (the job's record as ``.job``; a failed job raises why);
        without, the job runs on a thread of this process and its record is
        returned at once. An unknown ``namespace`` is a NotFoundError."""
        from vecstore import background
        from vecstore.jobs import build_kind

        if namespace is None:
            targets = background.namespaces_with_tail(self.store, self.spec)
        else:
            ns = self._write_ns(namespace)
            if manifests.load_namespace(self.store, self.name, ns) is None:
                raise NotFoundError(
                    f'Namespace "{ns}" not found in index "{self.name}"', namespace=ns
                )
            targets = [ns]
        job = build_kind.create(self.store, self.spec, targets)
        if not wait:
            self._kind_runner("build").submit(self.store, self.spec, job, self.store)
            return job
        try:
            return build_kind.run(self.store, self.spec, job)
        finally:
            if self._reader is not None:
                for ns in targets:
                    self._reader.tracker.invalidate(ns)

    def _write_ns(self, namespace: str | None) -> str:
        from vecstore.query import args

        return args.namespace(namespace)

    def _written(self, namespace: str) -> None:
        """After an acknowledged write: the background builder watches the namespace."""
        from vecstore.settings import settings

        if settings().build_in_background:
            from vecstore.background import builder_for

            builder_for(self.store, self.spec).notify(namespace)

    def delete_namespace(self, namespace: str) -> None:
        from vecstore import commit

        commit.apply(self.store, self.name, commit.DeleteNamespace(namespace=namespace))

    # ------------------------------------------- rebuild, retention, drift (docs/rebuild.md)
    def rebuild(
        self,
        namespace: str | None = None,
        records_per_cluster: int | None = None,
        *,
        wait: bool = True,
    ) -> builtins.list[ImportJob]:
        """Re-cluster ``namespace`` (None: every namespace) offline, one job of
        kind ``rebuild`` each; ``wait``: run them here and return their final
        records (balance and recall in ``report``), else return them started."""
        from vecstore.jobs.rebuild_kind import run_rebuild

        if records_per_cluster is not None and int(records_per_cluster) < 1:
            raise InvalidArgumentError(
                f"Invalid records_per_cluster {records_per_cluster!r}: expected a positive integer"
            )
        if namespace is None:
            targets = builtins.list(manifests.list_namespaces(self.store, self.name))
        else:
            ns = self._write_ns(namespace)
            if manifests.load_namespace(self.store, self.name, ns) is None:
                raise NotFoundError(
                    f'Namespace "{ns}" not found in index "{self.name}"', namespace=ns
                )
            targets = [ns]
        out = []
        for ns in targets:
            job = self.jobs.create(
                ImportJob(
                    id=new_job_id(),
                    kind="rebuild",
                    index=self.name,
                    uri=self.store.uri,
                    report={"namespace": ns, "records_per_cluster": records_per_cluster},
                )
            )
            if wait:
                job = run_rebuild(self.store, self.spec, job)
                if self._reader is not None:
                    self._reader.tracker.invalidate(ns)
            else:
                from vecstore.jobs.rebuild_kind import KIND

                get_runner(self._vs.scheduler_address, KIND.runner).submit(
                    self.store, self.spec, job, self.store
                )
            out.append(job)
        return out

    def vacuum(self, older_than: float | None = None, *, dry_run: bool = False) -> VacuumReport:
        """Delete files no version a reader may still hold needs, once older than
        ``older_than`` seconds (default ``VECSTORE_RETENTION_SECONDS``, 1 hour)."""
        from vecstore.vacuum import vacuum

        if older_than is not None and float(older_than) < 0:
            raise InvalidArgumentError(f"Invalid older_than {older_than!r}: expected seconds >= 0")
        return vacuum(self.store, self.spec, older_than, dry_run=dry_run)

    def drift(self, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """How far namespaces drifted from their clusters (all, or ``namespace``):
        ``added_fraction``, ``largest_ratio``, ``rebuild_advised`` and why."""
        from vecstore import drift

        if namespace is None:
            found = manifests.list_namespaces(self.store, self.name)
        else:
            ns = self._write_ns(namespace)
            m = manifests.load_namespace(self.store, self.name, ns)
            if m is None:
                raise NotFoundError(
                    f'Namespace "{ns}" not found in index "{self.name}"', namespace=ns
                )
            found = {ns: m}
        return {ns: drift.describe(m) for ns, m in found.items()}

    # defined last: the name shadows the builtin in the class body
    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        pagination_token: str | None = None,
        namespace: str | None = None,
    ) -> Iterator[builtins.list[str]]:
        """Every id (with ``prefix``), one list of ids per page, like Pinecone's SDK
        (logged writes included: ids not yet built appear, deleted ones do not)."""
        return self.reader.list(
            prefix=prefix, limit=limit, pagination_token=pagination_token, namespace=namespace
        )
