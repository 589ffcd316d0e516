"""The namespace catalog on S3 (moto), counted at the HTTP level (issue 9
item 6, docs/catalog.md): describe_index_stats, list_namespaces and
describe_namespace on a 2,000-namespace index cost a few requests, not two
per namespace; commits on S3 keep the catalog current."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cloudgen import CountingProxy, Place, counting_proxy, is_listing, new_place, summary

from vecstore import VecStore, catalog, commit, layout, manifests
from vecstore.commit import CreateNamespaces, DeleteNamespace
from vecstore.schemas import Manifest
from vecstore.storage import Store

pytestmark = pytest.mark.s3

N = 2_000
INDEX = "tenants"


@pytest.fixture
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Place, CountingProxy]]:
    place = new_place("s3", request, tmp_path)
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


def _create(store: Store, nss: list[str]) -> None:
    ms = tuple(
        Manifest(index=INDEX, namespace=ns, version=1, record_count=i + 1)
        for i, ns in enumerate(nss)
    )
    commit.apply(store, INDEX, CreateNamespaces(import_id=uuid.uuid4().hex, manifests=ms))


def _upload(local: Path, remote: Store) -> None:
    files = [p for p in sorted(local.rglob("*")) if p.is_file()]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda p: remote.write_bytes(p.relative_to(local).as_posix(),
                                                   p.read_bytes()), files))


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_stats_on_thousands_of_namespaces_cost_a_few_requests(
    proxied: tuple[Place, CountingProxy], tmp_path: Path
) -> None:
    place, proxy = proxied
    # built on local disk through the commit module (fast), then copied to the bucket
    local = VecStore(str(tmp_path / "built"))
    local.create_index(INDEX, dimension=4, metric="cosine")
    _create(local.store, [f"t-{i:05d}" for i in range(N)])
    _upload(tmp_path / "built", place.store(""))

    vs = VecStore(place.uri(""), storage_options=via(place, proxy))
    index = vs.Index(INDEX)
    start = proxy.mark()
    stats = index.describe_index_stats()
    reqs = stats_reqs = proxy.since(start)
    assert len(stats.namespaces) == N and stats.total_vector_count == N * (N + 1) // 2
    assert stats.namespaces["t-00041"].vector_count == 42
    # the catalog (one listing, its snapshot) + the index's logged namespaces (one listing)
    assert len(reqs) <= 4 and sum(is_listing(r) for r in reqs) == 2, summary(reqs)

    start = proxy.mark()
    names = [d.name for d in index.list_namespaces(prefix="t-000")]
    reqs = proxy.since(start)
    assert names == [f"t-{i:05d}" for i in range(100)]
    assert len(reqs) <= 4, summary(reqs)

    start = proxy.mark()
    assert index.describe_namespace("t-01999").record_count == 2_000
    assert len(proxy.since(start)) <= 5  # its manifests: one listing, one read

    print(f"\n[s3] {N} namespaces: describe_index_stats {summary(stats_reqs)}, "
          f"list_namespaces {summary(reqs)}")


def test_commits_on_s3_keep_the_catalog_current(proxied: tuple[Place, CountingProxy]) -> None:
    place, proxy = proxied
    store = Store(place.uri(""), via(place, proxy))
    _create(store, ["a", "b", "c"])
    start = proxy.mark()
    _create(store, ["d"])
    per_commit = proxy.since(start)
    catalog_reqs = [r for r in per_commit if "/_catalog" in r.path or "_catalog" in r.path]
    # intent put + delete, listing, snapshot read + put, re-listing, old snapshot delete
    assert len(catalog_reqs) <= 10, summary(catalog_reqs)
    commit.apply(store, INDEX, DeleteNamespace(namespace="b"))
    want = {ns: (m.version, m.record_count)
            for ns, m in manifests.list_namespaces(store, INDEX).items()}
    got = {ns: (e.version, e.record_count) for ns, e in catalog.namespaces(store, INDEX).items()}
    assert got == want == {"a": (1, 1), "c": (1, 3), "d": (1, 1)}
    assert not store.walk_files(layout.catalog_intents_prefix(INDEX))
