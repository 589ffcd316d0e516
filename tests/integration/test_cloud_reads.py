"""Remote reads are economical, counted at the HTTP level (a pass-through
proxy in front of the emulator logs every request and its response size):

- discovery lists the import directory and reads no object; the schema
  check reads each file's footer (one ranged GET of the file's tail; a file
  of at most 64 KiB, the tail pyarrow reads anyway, in one whole GET);
- an import reads its source about once: the validating scan streams the
  row groups in one pass, the k-means sample reads a fraction of them;
- a query on a remote store reads the manifest, the centroids and only the
  probed segments; a repeated (warm) query reads nothing, and after the
  manifest TTL only lists the manifests directory.

The figures are printed (``pytest -s``) for the record."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cloudgen import (
    CountingProxy,
    Place,
    bytes_read,
    counting_proxy,
    is_data_get,
    is_listing,
    marks_for,
    new_place,
    object_of,
    seed_import,
    summary,
)
from datagen import IMPORT_TIMEOUT
from servers import Emulator

from vecstore import VecStore
from vecstore.pipelines.discover import discover, inspect_file
from vecstore.query.planner import REMOTE_TTL_SECONDS
from vecstore.storage import Store

pytestmark = pytest.mark.dask

FOOTER_READ = 64 * 1024  # pyarrow reads a file's last 64 KiB to find its footer
KINDS = ["s3", "gcs", "azure"]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VECSTORE_QUERY_CACHE_DIR", str(tmp_path / "query-cache"))


@pytest.fixture
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Place, CountingProxy]]:
    """A bucket of the parametrised kind, and a counting proxy in front of its server."""
    place = new_place(request.param, request, tmp_path)
    assert place.server is not None
    proxy = counting_proxy(place.server).start()
    try:
        yield place, proxy
    finally:
        proxy.stop()


def via(place: Place, proxy: CountingProxy) -> dict[str, Any]:
    assert place.server is not None
    opts = place.server.options_via(proxy.endpoint)
    opts.pop("skip_instance_cache", None)
    return opts


def _kinds() -> list[Any]:
    return [pytest.param(k, marks=marks_for(k), id=k) for k in KINDS]


# ----------------------------------------------------- discovery and footers
@pytest.mark.parametrize("proxied", _kinds(), indirect=True)
def test_discovery_lists_and_inspect_reads_only_footers(
    proxied: tuple[Place, CountingProxy], tmp_path: Path
) -> None:
    place, proxy = proxied
    _, _, sizes = seed_import(place, tmp_path, {"a": 40_000, "b": 20_000}, dim=16,
                              files=2, row_group_size=2_000, metadata=False)
    source = Store(place.uri("import"), via(place, proxy))

    start = proxy.mark()
    disc = discover(source, source.uri, set())
    listed = proxy.since(start)
    assert disc.num_files == 4 and disc.total_bytes == sum(sizes.values())
    assert all(is_listing(r) or r.method in ("HEAD", "GET") for r in listed), listed
    assert bytes_read(listed) == 0  # no object was read
    assert sum(is_listing(r) for r in listed) <= 2

    start = proxy.mark()
    for f in disc.files:
        info = inspect_file(source, f, "dense", 16)
        assert info.num_rows == sum(info.row_groups) and len(info.row_groups) >= 5
    inspected = proxy.since(start)
    gets = [r for r in inspected if is_data_get(r)]
    assert len(gets) == 4, summary(inspected)  # one GET per file
    # plus the object's metadata when the file is opened: a HEAD (S3, Azure),
    # gcsfs's info() (two metadata GETs and a one-key LIST)
    assert len(inspected) <= 4 * 4, summary(inspected)
    for r in gets:  # each reads the file's tail only
        size = sizes[object_of(r).split("import/", 1)[1]]
        assert r.length is not None and r.length <= min(FOOTER_READ, size)
        if r.range is not None:
            assert r.range == f"bytes={size - r.length}-{size - 1}", r
    total = sum(sizes.values())
    footer_bytes = bytes_read(inspected)
    print(f"\n[{place.kind}] discovery: {summary(listed)}; inspect: {summary(inspected)}, "
          f"{footer_bytes} B of {total} B ({footer_bytes / total:.1%})")
    assert footer_bytes <= 0.15 * total


@pytest.mark.parametrize("proxied", _kinds(), indirect=True)
def test_inspect_reads_a_small_file_in_one_get(
    proxied: tuple[Place, CountingProxy], tmp_path: Path
) -> None:
    """A file no larger than pyarrow's footer read (64 KiB) is inspected with
    one whole-object GET and no metadata request: the same bytes pyarrow's
    tail read would fetch, in one request (100,000 small files)."""
    place, proxy = proxied
    _, _, sizes = seed_import(place, tmp_path, {"a": 40, "b": 30}, dim=16, files=2)
    assert max(sizes.values()) <= FOOTER_READ
    source = Store(place.uri("import"), via(place, proxy))
    disc = discover(source, source.uri, set())
    start = proxy.mark()
    infos = [inspect_file(source, f, "dense", 16) for f in disc.files]
    inspected = proxy.since(start)
    assert sum(i.num_rows for i in infos) == 70
    assert len(inspected) == len(disc.files) == 4, summary(inspected)
    assert all(is_data_get(r) for r in inspected), summary(inspected)
    assert bytes_read(inspected) == sum(sizes.values())


# -------------------------------------------------------------- an import
@pytest.mark.parametrize("proxied", _kinds(), indirect=True)
def test_import_reads_the_source_about_once(
    dask_runner: Any,
    proxied: tuple[Place, CountingProxy],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Source through the proxy, store on local disk: the bytes the workers
    fetch from the source are one pass (the scan) plus the k-means sample
    (a fraction of the row groups, values only) plus footers."""
    place, proxy = proxied
    # 4,096 records per cluster (the default target for ~1M records; small
    # imports get smaller clusters and so a larger sample): k = 29, a sample of
    # 7,424 rows, 6% of the rows, drawn from ~19% of the row groups
    monkeypatch.setenv("VECSTORE_RECORDS_PER_CLUSTER", "16384")
    uri, tables, sizes = seed_import(place, tmp_path, {"a": 120_000}, dim=16, files=3,
                                     row_group_size=5_000, metadata=False)
    total = sum(sizes.values())
    vs = VecStore(str(tmp_path / "store"), integrations={"src": via(place, proxy)})
    vs.create_index(name="docs", dimension=16, metric="euclidean", cloud="aws")
    index = vs.Index("docs")
    start = proxy.mark()
    job = index.wait_for_import(index.start_import(uri=uri, integration_id="src").id,
                                timeout=IMPORT_TIMEOUT)
    assert (job.status, job.records_imported) == ("Completed", 120_000), job
    requests = proxy.since(start)
    got = bytes_read(requests)
    per_file = {k: bytes_read(requests, suffix=k) for k in sizes}
    print(f"\n[{place.kind}] import of {total} B read {got} B ({got / total:.2f}x): "
          f"{summary(requests)}")
    assert all(n >= sizes[k] * 0.95 for k, n in per_file.items()), per_file  # all data read
    # one pass + the values of ~19% of the row groups + 3 footers per file
    # (measured 1.32x); reading a file twice (as when a readahead turned the
    # sample into a full read) is ~2x
    assert got <= 1.4 * total, (got, total, per_file)


@pytest.mark.parametrize("proxied", _kinds(), indirect=True)
def test_small_files_are_read_ahead(
    dask_runner: Any,
    proxied: tuple[Place, CountingProxy],
    tmp_path: Path,
) -> None:
    """Many small files behind a store with 40 ms of latency per request: a
    task keeps several whole-file reads in flight (footer inspection, the
    k-means sample and the scan of a namespace of 80 small files, a packed
    task of 24 tiny namespaces), so their latencies overlap; one at a time,
    2 workers would have at most 2 requests out. Each file is fetched once:
    the big namespace's by its inspection, which decodes them for the sample
    and the scan (pipelines/decoded.py); the tiny ones by the fold task that
    inspects and packs them."""
    place, proxy = proxied
    uri, _, big = seed_import(place, tmp_path, {"big": 80 * 10}, dim=16, files=80,
                              metadata=False)
    _, _, tiny = seed_import(place, tmp_path, {f"t{i:02d}": 10 for i in range(24)}, dim=16,
                             files=1, metadata=False)
    vs = VecStore(str(tmp_path / "store"), integrations={"src": via(place, proxy)})
    vs.create_index(name="docs", dimension=16, metric="euclidean", cloud="aws")
    index = vs.Index("docs")
    proxy.latency = 0.04
    start = proxy.mark()
    job = index.wait_for_import(index.start_import(uri=uri, integration_id="src").id,
                                timeout=IMPORT_TIMEOUT)
    proxy.latency = 0.0
    assert (job.status, job.records_imported) == ("Completed", 80 * 10 + 24 * 10), job
    assert len(job.namespaces) == 25
    requests = proxy.since(start)
    fetched = Counter(object_of(r).split("import/", 1)[1] for r in requests if is_data_get(r))
    print(f"\n[{place.kind}] {len(requests)} requests, at most {proxy.peak_in_flight} at once: "
          f"{summary(requests)}")
    assert proxy.peak_in_flight >= 6, proxy.peak_in_flight
    assert set(fetched) == set(big) | set(tiny)
    assert all(fetched[k] == 1 for k in big), {k: fetched[k] for k in big}
    assert all(fetched[k] == 1 for k in tiny), {k: fetched[k] for k in tiny}


# ---------------------------------------------------------------- queries
def _what(requests: list[Any]) -> str:
    """Requests by object kind: ``GET segment x2, LIST _manifests x1...``."""
    out: Counter[str] = Counter()
    for r in requests:
        key = object_of(r)
        if is_listing(r):
            kind = "LIST " + ("_manifests" if "_manifests" in r.path else "namespaces"
                              if "namespaces" in r.path else "other")
        else:
            name = key.rsplit("/", 1)[-1]
            what = ("manifest" if "/_manifests/" in key else "marker" if name == "_COMMITTED"
                    else "centroids" if name.endswith(".centroids")
                    else "ids" if name.endswith(".ids.parquet")
                    else "segment" if name.endswith(".parquet") else name)
            method = r.method if is_data_get(r) or r.method != "GET" else "GET-meta"
            kind = f"{method} {what}"
        out[kind] += 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(out.items())) or "nothing"


def _segment_gets(requests: list[Any]) -> list[str]:
    return sorted(object_of(r) for r in requests if is_data_get(r)
                  and "/data/" in object_of(r) and object_of(r).endswith(".parquet")
                  and not object_of(r).endswith(".ids.parquet"))


@pytest.mark.parametrize("kind", _kinds())
def test_query_reads_only_probed_segments_and_warm_queries_read_nothing(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VECSTORE_RECORDS_PER_CLUSTER", "250")
    home = new_place(kind, request, tmp_path)
    server: Emulator = request.getfixturevalue({"s3": "s3_server", "gcs": "gcs_server",
                                                "azure": "azure_server"}[kind])
    uri, tables, _ = seed_import(home, tmp_path, {"a": 2_000}, files=1)
    writer = VecStore(home.uri("vs"), storage_options=home.options,
                      integrations={"src": home.options})
    writer.create_index(name="docs", dimension=8, metric="euclidean")
    job = writer.Index("docs").wait_for_import(
        writer.Index("docs").start_import(uri=uri, integration_id="src").id,
        timeout=IMPORT_TIMEOUT,
    )
    assert job.status == "Completed", job

    proxy = counting_proxy(server).start()
    try:
        opts = server.options_via(proxy.endpoint)
        opts.pop("skip_instance_cache", None)
        index = VecStore(home.uri("vs"), storage_options=opts).Index("docs")
        reader = index.reader
        rng = np.random.default_rng(5)
        q1, q2 = (rng.normal(size=8).astype(np.float32).tolist() for _ in range(2))

        m = proxy.mark()
        index.query(namespace="a", vector=q1, top_k=5, nprobe=2)
        cold = proxy.since(m)
        state = reader.namespace_state("a")
        assert state is not None and state.k >= 6
        k = state.k
        ranked = np.argsort(-(2 * state.centroids @ np.asarray(q1) - state.centroid_sq))
        probed = sorted(state.segment_keys[i] for i in ranked[:2])
        assert _segment_gets(cold) == [f"vs/{k}" for k in probed], summary(cold)

        m = proxy.mark()
        for _ in range(3):
            index.query(namespace="a", vector=q1, top_k=5, nprobe=2)
        warm = proxy.since(m)

        m = proxy.mark()
        index.query(namespace="a", vector=q2, top_k=5, nprobe=k)
        wider = proxy.since(m)
        assert len(_segment_gets(wider)) == k - 2

        m = proxy.mark()
        index.query(namespace="a", vector=q2, top_k=5, nprobe=k)
        index.fetch(ids=["a-1", "a-2"], namespace="a")
        warm_all = proxy.since(m)

        time.sleep(REMOTE_TTL_SECONDS + 0.05)  # the manifest TTL of remote stores
        m = proxy.mark()
        index.query(namespace="a", vector=q1, top_k=5, nprobe=2)
        after_ttl = proxy.since(m)

        # a new reader (another process) with the same disk cache
        m = proxy.mark()
        fresh = VecStore(home.uri("vs"), storage_options=opts).Index("docs")
        fresh.query(namespace="a", vector=q1, top_k=5, nprobe=2)
        fresh_reads = proxy.since(m)

        m = proxy.mark()
        index.describe_index_stats()
        stats = proxy.since(m)
    finally:
        proxy.stop()

    print(f"\n[{kind}] query reads (k={k}):\n  cold, nprobe=2: {_what(cold)} ({bytes_read(cold)} B)"
          f"\n  3 warm repeats: {_what(warm)}\n  nprobe={k}: {_what(wider)}"
          f"\n  warm nprobe={k} + fetch: {_what(warm_all)}\n  after the TTL: {_what(after_ttl)}"
          f"\n  new reader, warm disk cache: {_what(fresh_reads)}"
          f"\n  describe_index_stats: {_what(stats)}")
    assert warm == [], summary(warm)
    assert [r for r in warm_all if _segment_gets([r])] == []
    # no object is read after the TTL: listings (and a metadata probe of a
    # missing folder on GCS / Azure) only
    assert _segment_gets(after_ttl) == [] and not any(
        is_data_get(r) for r in after_ttl
    ), summary(after_ttl)
    # listings only: the manifests, the write log (the freshness tail) and the
    # namespace folder; adlfs lists a directory in two calls
    assert len(after_ttl) <= 3 * 2, summary(after_ttl)
    assert _segment_gets(fresh_reads) == []

