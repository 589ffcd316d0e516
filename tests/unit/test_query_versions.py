"""Versions: a query pins one manifest; new versions, deletes, thread safety."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from test_query_support import clustered, memory_store, spec_for, write

from vecstore import manifests
from vecstore.reader import Reader
from vecstore.storage import Store

D = 8


def records(prefix: str, x: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "values": x[i].tolist(), "metadata": {"v": prefix}}
        for i in range(len(x))
    ]


def test_new_version_is_picked_up_and_delete_hides_everything() -> None:
    store = memory_store()
    spec = spec_for("cosine", D)
    x = clustered(300, D, 4, seed=1)
    write(store, spec, records("v1-", x))
    reader = Reader(store, spec)
    q = x[0].tolist()
    assert reader.query(namespace="ns", vector=q, top_k=3).matches[0].id.startswith("v1-")
    write(store, spec, records("v2-", x))
    res = reader.query(namespace="ns", vector=q, top_k=50)
    assert {m.id[:3] for m in res.matches} == {"v2-"}
    assert reader.fetch(["v2-7", "v1-7"], namespace="ns").vectors.keys() == {"v2-7"}
    manifests.delete_namespace(store, spec.name, "ns")
    assert reader.query(namespace="ns", vector=q, top_k=3).matches == []
    assert reader.fetch(["v2-7"], namespace="ns").vectors == {}
    assert reader.list_paginated(namespace="ns").vectors == []


def test_vanished_files_reload_the_manifest(tmp_path: Path) -> None:
    """A cached old version whose files were garbage-collected: retry on the new one."""
    store = Store(str(tmp_path))
    spec = spec_for("euclidean", D)
    x = clustered(200, D, 3, seed=2)
    write(store, spec, records("v1-", x))
    reader = Reader(store, spec, manifest_ttl=3600)  # never re-lists on its own
    reader.query(namespace="ns", vector=x[0].tolist(), top_k=1)
    reader.cache.clear()
    old = manifests.load_namespace(store, spec.name, "ns")
    assert old is not None
    write(store, spec, records("v2-", x))
    prefix = f"indexes/{spec.name}/namespaces/ns"
    for rel in old.files():
        store.delete(f"{prefix}/{rel}")
    res = reader.query(namespace="ns", vector=x[0].tolist(), top_k=5)
    assert res.matches and all(m.id.startswith("v2-") for m in res.matches)


def test_threads_see_one_version_or_the_other(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    spec = spec_for("cosine", D)
    x = clustered(1500, D, 8, seed=5)
    write(store, spec, records("v1-", x), per_cluster=100)
    reader = Reader(store, spec)
    queries = clustered(40, D, 8, seed=5)
    errors: list[BaseException] = []
    seen: set[str] = set()
    mixed: list[set[str]] = []
    stop = threading.Event()

    def worker(i: int) -> None:
        try:
            n = 0
            while not stop.is_set() or n < 5:
                q = queries[(i * 7 + n) % len(queries)]
                if n % 3 == 2:
                    res = reader.query_batch(queries[:6], top_k=20, namespace="ns")
                    batches = [{id_[:3] for id_, _ in hits} for hits in res]
                    kinds = set().union(*batches)
                    if len(kinds) != 1:
                        mixed.append(kinds)
                else:
                    r = reader.query(
                        namespace="ns",
                        vector=q,
                        top_k=20,
                        include_metadata=True,
                        filter={"v": {"$in": ["v1-", "v2-"]}},
                    )
                    kinds = {m.id[:3] for m in r.matches}
                    if len(kinds) != 1 or any(
                        (m.metadata or {}).get("v") != m.id[:3] for m in r.matches
                    ):
                        mixed.append(kinds)
                seen.update(kinds)
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    write(store, spec, records("v2-", x[::-1].copy()), per_cluster=100, seed=3)
    # keep querying a little after the commit, then stop
    for _ in range(20):
        if "v2-" in seen:
            break
        threading.Event().wait(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not mixed, mixed
    assert "v2-" in seen
    after = reader.query(namespace="ns", vector=queries[0], top_k=5)
    assert all(m.id.startswith("v2-") for m in after.matches)


def test_uncommitted_import_stays_invisible_until_its_marker_lands() -> None:
    store = memory_store()
    spec = spec_for("cosine", D)
    x = clustered(200, D, 3, seed=4)
    write(store, spec, records("v1-", x))
    reader = Reader(store, spec)
    q = x[0].tolist()
    assert reader.query(namespace="ns", vector=q, top_k=1).matches[0].id.startswith("v1-")
    from segwriter import records_to_table, write_namespace

    write_namespace(store, spec, "ns", records_to_table(records("v2-", x), spec), import_id="imp-1")
    assert reader.query(namespace="ns", vector=q, top_k=1).matches[0].id.startswith("v1-")
    manifests.mark_import_committed(store, spec.name, "imp-1")
    assert reader.query(namespace="ns", vector=q, top_k=1).matches[0].id.startswith("v2-")
