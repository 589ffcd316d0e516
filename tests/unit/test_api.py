"""The public API on memory:// and local stores: indexes, argument checks,
import job records (without Dask) and namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from segwriter import records_to_table, write_namespace

from vecstore import VecStore, layout, manifests
from vecstore.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    WaitTimeoutError,
)
from vecstore.jobs import JobStore, decode_token, encode_token
from vecstore.schemas import ImportJob, IndexSpec, StartImportResponse
from vecstore.storage import Store

REPO = Path(__file__).resolve().parents[2]
SECRET = "SUPERSECRET-abc123"

# ------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "VECSTORE_CONFIG",
        "VECSTORE_INTEGRATIONS",
        "VECSTORE_RUNNER",
        "VECSTORE_SCHEDULER",
    ):
        monkeypatch.delenv(var, raising=False)


class NoRunner:
    """Stands in for the import runner: these tests never start Dask."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Store, IndexSpec, ImportJob, Store]] = []
        self.recovered: list[str] = []

    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        self.submitted.append((store, spec, job, source))

    def recover(self, store: Store, index: str, source_for: Any = None) -> list[str]:
        self.recovered.append(index)
        return []

    def close(self, *, abandon: bool = False) -> None:
        pass


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> NoRunner:
    r = NoRunner()
    monkeypatch.setattr("vecstore.api.get_runner", lambda *a, **k: r)
    return r


@pytest.fixture
def memory_vs() -> Iterator[VecStore]:
    vs = VecStore(
        f"memory://test-api-{uuid.uuid4().hex}", integrations={"my-s3": {"secret": SECRET}}
    )
    yield vs
    with contextlib.suppress(Exception):
        vs.store.fs.rm(vs.store.root, recursive=True)


@pytest.fixture
def local_vs(tmp_path: Path) -> VecStore:
    return VecStore(str(tmp_path / "data"), integrations={"my-s3": {"secret": SECRET}})


@pytest.fixture(params=["memory", "local"])
def vs(request: pytest.FixtureRequest, runner: NoRunner) -> VecStore:
    return request.getfixturevalue(f"{request.param}_vs")  # type: ignore[no-any-return]


def files(vs: VecStore, prefix: str = "") -> list[str]:
    return [k for k, _ in vs.store.walk_files(prefix)]


# ----------------------------------------------------------------- indexes


def test_create_describe_list_delete(vs: VecStore) -> None:
    dense = vs.create_index(name="docs", dimension=8, metric="euclidean")
    assert (dense.name, dense.dimension, dense.metric, dense.vector_type, dense.cloud) == (
        "docs",
        8,
        "euclidean",
        "dense",
        "aws",
    )
    assert dense.record_layout == "dense" and dense.format_version == 1 and dense.region == "local"
    sparse = vs.create_index(name="sp", vector_type="sparse")
    assert (sparse.dimension, sparse.metric, sparse.record_layout) == (None, "dotproduct", "sparse")
    hybrid = vs.create_index(name="hy-1", dimension=4, metric="dotproduct", cloud="gcp")
    assert hybrid.record_layout == "hybrid" and hybrid.cloud == "gcp"
    default = vs.create_index(name="0", dimension=1)
    assert default.metric == "cosine"

    assert vs.describe_index("docs") == dense
    assert vs.has_index("sp") and not vs.has_index("nope")
    assert [s.name for s in vs.list_indexes()] == ["0", "docs", "hy-1", "sp"]
    assert vs.Index("docs").spec == dense

    vs.delete_index("docs")
    with pytest.raises(NotFoundError, match='Index "docs" not found'):
        vs.describe_index("docs")
    assert [s.name for s in vs.list_indexes()] == ["0", "hy-1", "sp"]
    assert files(vs, layout.index_prefix("docs")) == []
    with pytest.raises(NotFoundError):
        vs.delete_index("docs")
    again = vs.create_index(name="docs", dimension=3)
    assert vs.describe_index("docs") == again


def test_create_index_with_a_spec_object(vs: VecStore) -> None:
    spec = vs.create_index(
        name="s", dimension=2, spec={"cloud": "azure", "region": "eastus2"}, tags={"a": "b"}
    )
    assert (spec.cloud, spec.region, spec.tags) == ("azure", "eastus2", {"a": "b"})


def test_limits_are_inclusive(vs: VecStore) -> None:
    assert vs.create_index(name="a" * 45, dimension=20_000).dimension == 20_000
    assert vs.create_index(name="b", dimension=1).dimension == 1


def test_duplicate_create(vs: VecStore) -> None:
    first = vs.create_index(name="docs", dimension=8)
    with pytest.raises(AlreadyExistsError, match='Index "docs" already exists'):
        vs.create_index(name="docs", dimension=16, metric="euclidean")
    assert vs.describe_index("docs") == first


def test_index_of_a_missing_name(vs: VecStore) -> None:
    with pytest.raises(NotFoundError) as info:
        vs.Index("missing")
    assert str(info.value) == 'Index "missing" not found'
    with pytest.raises(NotFoundError):
        vs.Index("Not A Name")


BAD_INDEX_ARGS: list[tuple[dict[str, Any], list[str]]] = [
    ({"name": "Docs", "dimension": 8}, ["'Docs'", "lowercase"]),
    ({"name": "my_index", "dimension": 8}, ["'my_index'", "hyphens"]),
    ({"name": "a" * 46, "dimension": 8}, ["a" * 46, "1-45"]),
    ({"name": "", "dimension": 8}, ["''", "1-45"]),
    ({"name": 7, "dimension": 8}, ["7", "1-45"]),
    ({"name": "docs", "dimension": 0}, ["0", "1 to 20000"]),
    ({"name": "docs", "dimension": 20_001}, ["20001", "1 to 20000"]),
    ({"name": "docs", "dimension": -3}, ["-3", "1 to 20000"]),
    ({"name": "docs", "dimension": True}, ["True", "integer dimension"]),
    ({"name": "docs", "dimension": 8.0}, ["8.0", "integer dimension"]),
    ({"name": "docs", "dimension": None}, ["None", "dense index needs"]),
    ({"name": "docs", "dimension": 8, "vector_type": "sparse"}, ["dimension=8", "no dimension"]),
    ({"name": "docs", "dimension": 8, "metric": "cosin"}, ["'cosin'", "'cosine'"]),
    (
        {"name": "docs", "vector_type": "sparse", "metric": "cosine"},
        ["'cosine'", "'dotproduct'", "sparse"],
    ),
    (
        {"name": "docs", "vector_type": "sparse", "metric": "euclidean"},
        ["'euclidean'", "'dotproduct'"],
    ),
    ({"name": "docs", "dimension": 8, "vector_type": "dens"}, ["'dens'", "'dense'", "'sparse'"]),
    ({"name": "docs", "dimension": 8, "cloud": "aws2"}, ["'aws2'", "'aws'", "'gcp'", "'azure'"]),
]


@pytest.mark.parametrize(("kwargs", "needles"), BAD_INDEX_ARGS, ids=lambda v: repr(v)[:40])
def test_create_index_argument_errors(
    vs: VecStore, kwargs: dict[str, Any], needles: list[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        vs.create_index(**kwargs)
    assert isinstance(info.value, ValueError)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert files(vs) == []  # nothing written


def test_index_name_with_trailing_newline_is_refused(vs: VecStore) -> None:
    with pytest.raises(InvalidArgumentError):
        vs.create_index(name="docs\n", dimension=8)


# ------------------------------------------------------ start_import arguments


START_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("aws", {"uri": ""}, "An import uri is required"),
    ("aws", {"uri": "   "}, "An import uri is required"),
    ("aws", {"uri": None}, "An import uri is required"),
    ("aws", {"uri": "http://example.com/data/"}, "Unsupported URI"),
    ("aws", {"uri": "https://example.com/data/"}, "Unsupported URI"),
    ("aws", {"uri": "ftp://host/data/"}, "Unsupported import uri"),
    ("aws", {"uri": "memory://src", "error_mode": "skip"}, "Invalid error_mode 'skip'"),
    ("aws", {"uri": "memory://src", "error_mode": None}, "expected 'continue' or 'abort'"),
    ("aws", {"uri": "s3://bucket/x/", "integration_id": "nope"}, 'Unknown integration_id "nope"'),
    ("gcp", {"uri": "s3://bucket/x/"}, "Cannot import from Amazon S3"),
    ("azure", {"uri": "s3://bucket/x/", "integration_id": "my-s3"}, "GCP or Azure"),
    ("aws", {"uri": "s3://x--x-s3/import/"}, 'S3 Express One Zone bucket "x--x-s3"'),
]


@pytest.mark.parametrize(("cloud", "kwargs", "needle"), START_ERRORS, ids=lambda v: repr(v)[:40])
def test_start_import_argument_errors(
    vs: VecStore, runner: NoRunner, cloud: str, kwargs: dict[str, Any], needle: str
) -> None:
    vs.create_index(name="docs", dimension=4, cloud=cloud)
    index = vs.Index("docs")
    with pytest.raises(InvalidArgumentError) as info:
        index.start_import(**kwargs)
    assert needle in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.context)
    assert runner.submitted == []
    assert index.jobs.ids() == []
    assert files(vs, layout.imports_prefix("docs")) == []


def test_start_import_hands_a_pending_job_to_the_runner(vs: VecStore, runner: NoRunner) -> None:
    vs.create_index(name="docs", dimension=4)
    index = vs.Index("docs")
    op = index.start_import(uri="memory://source-dir/", error_mode="ABORT")
    assert isinstance(op, StartImportResponse)
    job = index.describe_import(op.id)
    assert (job.status, job.uri, job.error_mode, job.index) == (
        "Pending",
        "memory://source-dir/",
        "abort",
        "docs",
    )
    assert (job.percent_complete, job.records_imported, job.error) == (0.0, 0, None)
    assert job.rejects_uri == vs.store.url(layout.rejects_prefix("docs", op.id))
    assert len(runner.submitted) == 1
    store, spec, submitted, source = runner.submitted[0]
    assert (store, spec, submitted) == (vs.store, index.spec, job)
    assert source.uri == "memory://source-dir/"
    assert len(op.id) == 24 and op.id.isalnum()
    # every start first takes over imports of the index whose runner died
    assert runner.recovered == ["docs"]


def test_import_does_not_load_heavy_modules(tmp_path: Path) -> None:
    """`import vecstore` stays light, and argument errors of start_import raise
    before a job record is written or Dask is touched (in a fresh interpreter)."""
    code = textwrap.dedent(
        """
        import json, sys
        import vecstore
        HEAVY = ("dask", "distributed", "pyarrow", "s3fs", "gcsfs", "adlfs", "sklearn")
        on_import = [m for m in HEAVY if m in sys.modules]
        vs = vecstore.VecStore(sys.argv[1], integrations={"my-s3": {}})
        vs.create_index(name="a", dimension=2, cloud="aws")
        vs.create_index(name="g", dimension=2, cloud="gcp")
        cases = [
            ("a", {"uri": ""}),
            ("a", {"uri": "http://example.com/x"}),
            ("a", {"uri": "memory://src", "error_mode": "bad"}),
            ("a", {"uri": "s3://bucket/x", "integration_id": "unknown"}),
            ("g", {"uri": "s3://bucket/x"}),
            ("a", {"uri": "s3://x--x-s3/x"}),
        ]
        errors = []
        for name, kwargs in cases:
            try:
                vs.Index(name).start_import(**kwargs)
            except vecstore.InvalidArgumentError as exc:
                errors.append(type(exc).__name__)
        jobs = [j.id for n in ("a", "g") for j in vs.Index(n).list_imports()]
        after = [m for m in HEAVY if m in sys.modules]
        print(json.dumps({"on_import": on_import, "errors": errors, "jobs": jobs, "after": after}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "on_import": [],
        "errors": ["InvalidArgumentError"] * 6,
        "jobs": [],
        "after": [],
    }


# ----------------------------------------------------------- job records

BASE = datetime(2025, 6, 1, tzinfo=UTC)


def _job_id(i: int) -> str:
    return f"{1_748_736_000_000_000 + i:016d}{i:08x}"


def _make_jobs(vs: VecStore, n: int, **fields: Any) -> list[ImportJob]:
    jobs = JobStore(vs.store, "docs")
    out = []
    for i in range(n):
        job = ImportJob(
            id=_job_id(i),
            index="docs",
            uri=f"memory://src/{i}",
            created_at=BASE + timedelta(seconds=i),
            **fields,
        )
        out.append(jobs.create(job))
    return out


@pytest.fixture
def index_with_jobs(vs: VecStore) -> tuple[VecStore, list[ImportJob]]:
    vs.create_index(name="docs", dimension=4)
    return vs, _make_jobs(vs, 7, status="Completed", finished_at=BASE, percent_complete=100.0)


def test_list_imports_paginated_newest_first(
    index_with_jobs: tuple[VecStore, list[ImportJob]],
) -> None:
    vs, jobs = index_with_jobs
    index = vs.Index("docs")
    newest_first = [j.id for j in reversed(jobs)]
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = index.list_imports_paginated(limit=3, pagination_token=token)
        pages += 1
        seen.extend(j.id for j in page.data)
        if page.pagination is None:
            break
        assert page.pagination.next  # never an empty token
        assert len(page.data) == 3
        token = page.pagination.next
    assert pages == 3
    assert seen == newest_first
    assert [j.id for j in index.list_imports(limit=2)] == newest_first
    assert [j.id for j in index.list_imports()] == newest_first
    full = index.list_imports_paginated()
    assert [j.id for j in full.data] == newest_first and full.pagination is None
    exact = index.list_imports_paginated(limit=7)
    assert len(exact.data) == 7 and exact.pagination is None
    assert index.list_imports_paginated(limit=100).pagination is None


def test_pagination_is_stable_when_new_imports_arrive(
    index_with_jobs: tuple[VecStore, list[ImportJob]],
) -> None:
    vs, jobs = index_with_jobs
    index = vs.Index("docs")
    first = index.list_imports_paginated(limit=4)
    assert first.pagination is not None
    JobStore(vs.store, "docs").create(ImportJob(id=_job_id(99), index="docs", uri="memory://new"))
    second = index.list_imports_paginated(limit=4, pagination_token=first.pagination.next)
    assert [j.id for j in second.data] == [j.id for j in reversed(jobs[:3])]
    assert second.pagination is None


@pytest.mark.parametrize("limit", [0, 101, -1, True, "5", 2.0])
def test_list_imports_bad_limit(
    index_with_jobs: tuple[VecStore, list[ImportJob]], limit: Any
) -> None:
    vs, _ = index_with_jobs
    with pytest.raises(InvalidArgumentError, match="limit must be an integer from 1 to 100"):
        vs.Index("docs").list_imports_paginated(limit=limit)


@pytest.mark.parametrize("token", ["!!!", "not-a-token", "Li4vZXRj", "////", "%%"])
def test_list_imports_bad_token(
    index_with_jobs: tuple[VecStore, list[ImportJob]], token: str
) -> None:
    vs, _ = index_with_jobs
    with pytest.raises(InvalidArgumentError, match="Invalid pagination token"):
        vs.Index("docs").list_imports_paginated(limit=2, pagination_token=token)


def test_token_round_trip() -> None:
    for job_id in (_job_id(0), _job_id(12345), "a"):
        token = encode_token(job_id)
        assert token and "=" not in token
        assert decode_token(token) == job_id


def test_no_imports(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    page = vs.Index("docs").list_imports_paginated(limit=5)
    assert page.data == [] and page.pagination is None
    assert list(vs.Index("docs").list_imports()) == []


def test_describe_unknown_import(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    with pytest.raises(NotFoundError) as info:
        vs.Index("docs").describe_import("12345")
    assert str(info.value) == "Import 12345 not found"
    with pytest.raises(InvalidArgumentError):
        vs.Index("docs").describe_import("../docs")
    with pytest.raises(InvalidArgumentError):
        vs.Index("docs").describe_import("")


@pytest.mark.parametrize("status", ["Completed", "Failed", "Cancelled"])
def test_cancel_finished_import_is_a_no_op(vs: VecStore, status: str) -> None:
    vs.create_index(name="docs", dimension=4)
    (job,) = _make_jobs(
        vs, 1, status=status, finished_at=BASE, error="x" if status == "Failed" else None
    )
    key = layout.job_key("docs", job.id)
    before = vs.store.read_bytes(key)
    index = vs.Index("docs")
    assert index.cancel_import(job.id) == job
    assert vs.store.read_bytes(key) == before
    assert not vs.store.exists(layout.cancel_marker_key("docs", job.id))
    assert index.describe_import(job.id) == job
    assert index.wait_for_import(job.id, timeout=0) == job


def _uncommitted_namespace(vs: VecStore, job_id: str) -> Any:
    spec = vs.describe_index("docs")
    rng = np.random.default_rng(3)
    records = [{"id": str(i), "values": rng.normal(size=4).tolist()} for i in range(6)]
    return write_namespace(
        vs.store, spec, "ns", records_to_table(records, spec), import_id=job_id, owner=job_id
    )


def test_cancel_pending_job_without_runner_finalises_it(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    old = datetime.now(UTC) - timedelta(minutes=10)
    (job,) = _make_jobs(vs, 1)
    job = job.model_copy(update={"created_at": old, "heartbeat_at": old})
    JobStore(vs.store, "docs").save(job)
    m = _uncommitted_namespace(vs, job.id)
    staging = f"{layout.staging_prefix('docs', job.id)}/part-0"
    rejects = f"{layout.rejects_prefix('docs', job.id)}/ns/bad.parquet"
    vs.store.write_bytes(staging, b"x")
    vs.store.write_bytes(rejects, b"x")
    assert manifests.load_namespace(vs.store, "docs", "ns") is None

    index = vs.Index("docs")
    cancelled = index.cancel_import(job.id)

    assert cancelled.status == "Cancelled"
    assert cancelled.cancel_requested and cancelled.phase == "cancelled"
    assert cancelled.finished_at is not None and cancelled.finished_at >= old
    assert index.describe_import(job.id) == cancelled
    assert index.wait_for_import(job.id, timeout=0) == cancelled
    ns_prefix = layout.namespace_prefix("docs", "ns")
    assert not any(vs.store.exists(f"{ns_prefix}/{f}") for f in m.files())
    assert manifests.manifest_versions(vs.store, "docs", "ns") == []
    assert not vs.store.exists(staging)
    assert vs.store.exists(rejects)  # the reject report of a cancelled job is kept
    assert index.cancel_import(job.id) == cancelled  # now final: a no-op


def test_cancel_of_a_just_submitted_job_leaves_it_to_its_runner(
    vs: VecStore, runner: NoRunner
) -> None:
    vs.create_index(name="docs", dimension=4)
    index = vs.Index("docs")
    op = index.start_import(uri="memory://source-dir/")
    assert len(runner.submitted) == 1  # a runner owns the job and may start it any moment
    after = index.cancel_import(op.id)
    assert after.status == "Pending" and after.cancel_requested
    assert not index.describe_import(op.id).done


def test_cancel_running_job_asks_the_runner(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    now = datetime.now(UTC)
    (job,) = _make_jobs(vs, 1, status="InProgress", runner="runner-x", heartbeat_at=now)
    index = vs.Index("docs")
    after = index.cancel_import(job.id)
    assert after.status == "InProgress" and after.cancel_requested
    assert vs.store.exists(layout.cancel_marker_key("docs", job.id))
    assert index.describe_import(job.id).cancel_requested
    with pytest.raises(WaitTimeoutError) as info:
        index.wait_for_import(job.id, timeout=0.05, poll_interval=0.01)
    assert isinstance(info.value, TimeoutError)
    assert job.id in str(info.value) and "InProgress" in str(info.value)


def test_cancel_job_with_a_dead_runner_finalises_it(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    stale = datetime.now(UTC) - timedelta(minutes=5)
    (job,) = _make_jobs(vs, 1, status="InProgress", runner="runner-x", heartbeat_at=stale)
    cancelled = vs.Index("docs").cancel_import(job.id)
    assert cancelled.status == "Cancelled"
    assert vs.Index("docs").describe_import(job.id).status == "Cancelled"


def test_delete_index_cancels_pending_jobs_and_removes_everything(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    vs.create_index(name="keep", dimension=4)
    old = datetime.now(UTC) - timedelta(minutes=10)
    _make_jobs(vs, 2, heartbeat_at=old)
    vs.delete_index("docs")
    assert files(vs, layout.index_prefix("docs")) == []
    assert [s.name for s in vs.list_indexes()] == ["keep"]


# --------------------------------------------------------------- namespaces


def _records(n: int, d: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "id": f"r{i}",
            "values": rng.normal(size=d).tolist(),
            "metadata": {"i": i, "even": i % 2 == 0},
        }
        for i in range(n)
    ]


def test_namespaces_stats_and_delete(vs: VecStore) -> None:
    spec = vs.create_index(name="docs", dimension=4, metric="euclidean")
    write_namespace(vs.store, spec, "", records_to_table(_records(5, 4, 1), spec))
    write_namespace(vs.store, spec, "books", records_to_table(_records(3, 4, 2), spec))
    write_namespace(vs.store, spec, "bikes", records_to_table(_records(2, 4, 3), spec))
    # an import in flight: not visible anywhere
    write_namespace(
        vs.store, spec, "pending", records_to_table(_records(4, 4, 4), spec), import_id="in-flight"
    )
    index = vs.Index("docs")

    stats = index.describe_index_stats()
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {
        "": 5,
        "bikes": 2,
        "books": 3,
    }
    assert stats.total_vector_count == 10
    assert (stats.dimension, stats.metric, stats.vector_type) == (4, "euclidean", "dense")
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [
        ("", 5),
        ("bikes", 2),
        ("books", 3),
    ]
    assert [n.name for n in index.list_namespaces(prefix="b")] == ["bikes", "books"]
    assert index.describe_namespace("books").record_count == 3
    with pytest.raises(NotFoundError):
        index.describe_namespace("pending")

    index.delete_namespace("books")
    assert [n.name for n in index.list_namespaces()] == ["", "bikes"]
    assert index.describe_index_stats().total_vector_count == 7
    with pytest.raises(NotFoundError, match='Namespace "books" not found'):
        index.delete_namespace("books")
    with pytest.raises(NotFoundError):
        index.describe_namespace("books")
    with pytest.raises(NotFoundError):
        index.delete_namespace("never-existed")
    index.delete_namespace("")
    assert [n.name for n in index.list_namespaces()] == ["bikes"]

    manifests.mark_import_committed(vs.store, "docs", "in-flight")
    assert [n.name for n in index.list_namespaces()] == ["bikes", "pending"]


def test_sparse_index_stats(vs: VecStore) -> None:
    spec = vs.create_index(name="sp", vector_type="sparse")
    records = [
        {"id": str(i), "sparse_values": {"indices": [i, i + 10], "values": [1.0, 0.5]}}
        for i in range(5)
    ]
    m = write_namespace(vs.store, spec, "ns", records_to_table(records, spec), target_per_cluster=2)
    assert m.centroids is None and [c.row_count for c in m.clusters] == [2, 2, 1]
    stats = vs.Index("sp").describe_index_stats()
    assert stats.dimension is None and stats.vector_type == "sparse"
    assert stats.metric == "dotproduct" and stats.total_vector_count == 5


def test_empty_index_stats(vs: VecStore) -> None:
    vs.create_index(name="docs", dimension=4)
    stats = vs.Index("docs").describe_index_stats()
    assert stats.namespaces == {} and stats.total_vector_count == 0
    assert vs.Index("docs").list_namespaces() == []
