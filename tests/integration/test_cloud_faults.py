"""Transient and persistent faults during imports, injected by a seeded
proxy between vecstore (driver and Dask workers) and the emulator: 500/503
answers, connections dropped before the server sees the request, responses
lost after it acted.

- Transient faults on both the source and the store: the import completes
  with exactly the records of a clean run (the Store retries).
- A persistent fault (every request refused) on the source once the scan is
  under way, or on the store's segment writes: the job fails with a message
  naming the object and the attempts, and leaves nothing visible and no
  orphan file; the same import then succeeds once the fault is gone."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cloudgen import (
    CountingProxy,
    Place,
    counting_proxy,
    new_place,
    ns_of,
    records_of,
    seed_import,
    store_files,
)
from datagen import IMPORT_TIMEOUT

from vecstore import VecStore, layout
from vecstore.storage import Store

pytestmark = pytest.mark.dask

# gcsfs retries 5xx on its own fixed schedule (1, 2, 4... s): lower rates
# keep the GCS case quick; S3 and Azure take more.
RATES = {
    "s3": {"fail_rate": 0.06, "drop_rate": 0.03, "lose_rate": 0.02},
    "azure": {"fail_rate": 0.06, "drop_rate": 0.03, "lose_rate": 0.02},
    "gcs": {"fail_rate": 0.02, "drop_rate": 0.01, "lose_rate": 0.01},
}
# S3 and GCS runs of the slower cases are marked slow: the default run keeps
# one backend per case (the whole cloud suite stays under ~3 minutes)
SLOW = pytest.mark.slow


def kinds(fast: tuple[str, ...]) -> list[Any]:
    return [pytest.param(k, marks=[getattr(pytest.mark, k)] + ([] if k in fast else [SLOW]),
                         id=k) for k in ("s3", "gcs", "azure")]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VECSTORE_RECORDS_PER_CLUSTER", "300")
    monkeypatch.setenv("VECSTORE_QUERY_CACHE_DIR", str(tmp_path / "query-cache"))


def _via(place: Place, proxy: CountingProxy) -> dict[str, Any]:
    assert place.server is not None
    opts = place.server.options_via(proxy.endpoint)
    opts.pop("skip_instance_cache", None)
    return opts


def _import(vs: VecStore, name: str, uri: str, integration: str | None = "src") -> Any:
    vs.create_index(name=name, dimension=8, metric="euclidean")
    index = vs.Index(name)
    op = index.start_import(uri=uri, integration_id=integration)
    return index, index.wait_for_import(op.id, timeout=IMPORT_TIMEOUT)


@pytest.mark.parametrize("kind", kinds(fast=("azure",)))
def test_transient_faults_on_source_and_store(
    dask_runner: Any, request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    place = new_place(kind, request, tmp_path)
    assert place.server is not None
    uri, tables, _ = seed_import(place, tmp_path, {"a": 900, "b": 600, "__default__": 300},
                                 files=3, row_group_size=100)
    clean_vs = VecStore(str(tmp_path / "clean"), integrations={"src": place.options})
    clean_index, clean = _import(clean_vs, "docs", uri)
    assert clean.status == "Completed", clean

    proxy = counting_proxy(place.server, seed=20240611, **RATES[kind]).start()
    try:
        flaky = _via(place, proxy)
        vs = VecStore(place.uri("flaky"), storage_options=flaky, integrations={"src": flaky})
        index, job = _import(vs, "docs", uri)
        proxy.set_rates()  # read the result back without faults
    finally:
        proxy.stop()
    faults = proxy.faults()
    assert faults >= 5, proxy.stats  # the import did meet faults
    assert (job.status, job.error) == ("Completed", None), (job.error, job.phase)
    assert (job.records_imported, job.records_skipped) == (1800, {})
    direct = VecStore(place.uri("flaky"), storage_options=place.options).Index("docs")
    got, want = records_of(direct, tables), records_of(clean_index, tables)
    assert got.keys() == want.keys() == {ns_of(d) for d in tables}
    for ns, records in want.items():
        assert sorted(got[ns]) == sorted(records)
        for rid, values in records.items():
            np.testing.assert_array_equal(got[ns][rid], values)
    assert {ns: len(r) for ns, r in got.items()} == {ns_of(d): t.num_rows
                                                     for d, t in tables.items()}
    # and what the store holds is what a clean import leaves: no scratch,
    # one manifest per namespace
    files = store_files(direct.store, layout.index_prefix("docs"))
    assert [f for f in files if "/staging/" in f] == []
    assert sorted(f for f in files if "/_manifests/" in f) == sorted(
        f"{layout.manifests_prefix('docs', ns_of(d))}/{1:020d}.json" for d in tables
    )
    print(f"\n[{kind}] flaky import: {dict(proxy.stats)}")


def _fault_when(proxy: CountingProxy, armed: threading.Event, test: Any) -> None:
    """Refuse every request for which ``test(method, path)`` holds, once armed."""
    proxy.set_rates(fail_rate=1.0)
    proxy.should_fault = lambda method, path: armed.is_set() and test(method, path)


@pytest.mark.parametrize("kind", [k for k in kinds(fast=("azure",)) if k.id != "gcs"])
def test_source_failing_during_the_scan_fails_the_job_cleanly(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The source becomes unreachable once the scan is under way (its first
    scratch file was written): the job fails naming the source object; the
    scratch files are deleted, no namespace shows. The store is local."""
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", "1")  # one scan task per row group
    monkeypatch.setenv("VECSTORE_PACK_ROWS", "0")  # the scan path with scratch files
    place = new_place(kind, request, tmp_path)
    assert place.server is not None
    uri, tables, _ = seed_import(place, tmp_path, {"a": 1500}, files=2, row_group_size=100)
    root = tmp_path / "store"
    proxy = counting_proxy(place.server).start()
    armed = threading.Event()
    scratch_written = threading.Event()
    source_dir = uri.split("://", 1)[1].split("/", 1)[1]  # "import"
    _fault_when(proxy, armed, lambda method, path: f"/{source_dir}/" in path)
    try:
        vs = VecStore(str(root), integrations={"src": _via(place, proxy)})
        vs.create_index(name="docs", dimension=8)
        index = vs.Index("docs")

        def watch() -> None:  # arm at the first scratch file of the scan
            while not scratch_written.is_set():
                if any("/shuffle/" in k for k in _local_files(root)):
                    armed.set()
                    scratch_written.set()
                scratch_written.wait(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        op = index.start_import(uri=uri, integration_id="src")
        job = index.wait_for_import(op.id, timeout=IMPORT_TIMEOUT)
        scratch_written.set()
        watcher.join(5)
    finally:
        proxy.stop()
    assert armed.is_set(), "the scan did not start"
    assert job.status == "Failed", job
    assert job.error is not None
    assert job.error.startswith("Storage failed to "), job.error
    assert f'"{uri}/a/part-00' in job.error and "attempts" in job.error, job.error
    assert "Service Unavailable" in job.error or "Internal Server Error" in job.error
    assert index.describe_index_stats().total_vector_count == 0
    assert index.list_namespaces() == []
    left = _local_files(root / layout.index_prefix("docs"))
    assert [k for k in left if "/staging/" in k or "/namespaces/" in k] == [], left

    # the source is reachable again: the same import succeeds
    vs2 = VecStore(str(root), integrations={"src": place.options})
    again = vs2.Index("docs").wait_for_import(
        vs2.Index("docs").start_import(uri=uri, integration_id="src").id, timeout=IMPORT_TIMEOUT
    )
    assert (again.status, again.records_imported) == ("Completed", 1500), again


def _local_files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", [k for k in kinds(fast=("s3",)) if k.id != "gcs"])
def test_store_refusing_segment_writes_fails_the_job_cleanly(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every write of a segment file to the store is refused (the store keeps
    answering everything else): the job fails naming the segment, and its
    data files, manifests and scratch are gone; after the fault, the same
    import succeeds."""
    monkeypatch.setenv("VECSTORE_BUCKET_BYTES", "1")  # one write task per cluster
    place = new_place(kind, request, tmp_path)
    assert place.server is not None
    uri, _, _ = seed_import(place, tmp_path, {"a": 1200, "b": 600}, files=1)
    proxy = counting_proxy(place.server).start()
    armed = threading.Event()
    armed.set()
    seen: list[str] = []

    def segment_write(method: str, path: str) -> bool:
        hit = method == "PUT" and "/namespaces/" in path and "/data/" in path \
            and ".ids." not in path and "comp=" not in path
        if hit:
            seen.append(path)
        # let the first segment through: a failure must clean it up
        return hit and len(seen) > 1

    _fault_when(proxy, armed, segment_write)
    try:
        vs = VecStore(place.uri("vs"), storage_options=_via(place, proxy),
                      integrations={"src": place.options})
        index, job = _import(vs, "docs", uri)
    finally:
        proxy.stop()
    assert job.status == "Failed", job
    assert job.error is not None and job.error.startswith("Storage failed to write"), job.error
    assert "/namespaces/" in job.error and "/data/" in job.error and "attempts" in job.error
    direct = VecStore(place.uri("vs"), storage_options=place.options)
    assert direct.Index("docs").describe_index_stats().total_vector_count == 0
    left = store_files(direct.store, layout.index_prefix("docs"))
    assert [k for k in left if "/namespaces/" in k or "/staging/" in k] == [], left
    assert len(seen) > 1

    again = direct.Index("docs").wait_for_import(
        VecStore(place.uri("vs"), storage_options=place.options,
                 integrations={"src": place.options}).Index("docs")
        .start_import(uri=uri, integration_id="src").id,
        timeout=IMPORT_TIMEOUT,
    )
    assert (again.status, again.records_imported) == ("Completed", 1800), again


@pytest.mark.parametrize("kind", kinds(fast=("s3", "azure")))
def test_delete_prefix_survives_transient_faults(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """Cleanup deletes scratch prefixes of many objects; under faults every
    attempt must make progress (adlfs used to check each file's existence,
    one request after the other, before deleting any: one fault among them
    and the attempt deleted nothing, so the cleanup of a flaky import failed)."""
    place = new_place(kind, request, tmp_path)
    assert place.server is not None
    direct = place.store("root")
    for i in range(60):
        direct.write_bytes(f"staging/{i % 3}/{i:03d}.arrow", b"x")
    direct.write_bytes("keep/a.bin", b"a")
    proxy = counting_proxy(place.server, seed=11, plan=["fail", "drop"], **RATES[kind]).start()
    try:
        Store(place.uri("root"), _via(place, proxy)).delete_prefix("staging")
    finally:
        proxy.stop()
    assert direct.walk_files() == [("keep/a.bin", 1)]
    assert proxy.faults() > 0, proxy.stats


@pytest.mark.slow
@pytest.mark.s3
def test_store_outage_longer_than_the_retries_is_recovered(
    dask_runner: Any, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store refuses every request for 20 s from the first segment write,
    far longer than the Store's retries (~3-5 s): the driver cannot even
    write its heartbeat, so the job goes stale, and nothing becomes visible.
    Once the store is back, whoever looks first (here ``describe_import`` or
    ``recover_imports()``; docs/jobs.md) takes the stale job over and resumes
    it (attempt 2): it completes, and no file of attempt 1 is left."""
    monkeypatch.setenv("VECSTORE_BUCKET_BYTES", "1")
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "3")
    place = new_place("s3", request, tmp_path)
    assert place.server is not None
    uri, _, _ = seed_import(place, tmp_path, {"a": 1200, "b": 600}, files=1)
    proxy = counting_proxy(place.server).start()
    armed, done = threading.Event(), threading.Event()

    def outage(method: str, path: str) -> bool:
        if not done.is_set() and method == "PUT" and "/data/" in path:
            done.set()
            armed.set()
            threading.Timer(20.0, armed.clear).start()
        return armed.is_set()

    proxy.set_rates(fail_rate=1.0)
    proxy.should_fault = outage
    direct = VecStore(place.uri("vs"), storage_options=place.options,
                      integrations={"src": place.options})
    try:
        vs = VecStore(place.uri("vs"), storage_options=_via(place, proxy),
                      integrations={"src": place.options})
        vs.create_index(name="docs", dimension=8)
        op = vs.Index("docs").start_import(uri=uri, integration_id="src")
        index = direct.Index("docs")
        deadline = time.monotonic() + 120
        recovered: list[str] = []
        while time.monotonic() < deadline:
            assert index.describe_index_stats().total_vector_count in (0, 1800)
            if not armed.is_set():
                job = index.describe_import(op.id)
                if job.done:
                    break
                if done.is_set():
                    recovered += index.recover_imports()
            time.sleep(0.5)
    finally:
        armed.clear()
        proxy.stop()
    assert done.is_set()
    assert recovered in ([], [op.id])  # describe_import may have taken it over first
    assert (job.status, job.attempt, job.records_imported) == ("Completed", 2, 1800), job
    # the data files are exactly those the manifests name: attempt 1 left none
    from vecstore import manifests

    for ns in ("a", "b"):
        m = manifests.load_namespace(direct.store, "docs", ns)
        assert m is not None
        on_store = {k.rsplit("/", 1)[1] for k in store_files(
            direct.store, layout.data_prefix("docs", ns))}
        assert on_store == {f.rsplit("/", 1)[1] for f in m.files()}
    assert [k for k in store_files(direct.store, layout.index_prefix("docs"))
            if "/staging/" in k] == []
