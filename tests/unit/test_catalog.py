"""vecstore.catalog (issue 9 item 6, docs/catalog.md): the per-index
namespace catalog written at commit. describe_index_stats / list_namespaces
read one listing and one snapshot whatever the namespace count; deletes,
log applies and namespaces created by writes update it; a commit that died
between its visibility point and the catalog is still seen (its intent);
indexes written before the catalog fall back to the per-namespace scan."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecstore import catalog, commit, layout, manifests, writes
from vecstore.commit import ApplyLog, CreateNamespaces, DeleteNamespace, RetryPolicy
from vecstore.schemas import IndexSpec, Manifest
from vecstore.storage import Store

INDEX = "idx"
FAST = RetryPolicy(attempts=20, base=0.001, cap=0.01)
READS = ("read_bytes", "read_range", "ls", "walk_files", "exists", "isdir", "size", "open_input")


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield Store(str(tmp_path / "store"))
        return
    s = Store(f"memory://test-catalog-{uuid.uuid4().hex}")
    yield s
    with contextlib.suppress(Exception):
        s.fs.rm(s.root, recursive=True)


class Counting:
    """Counts the object requests made through one Store instance."""

    def __init__(self, store: Store) -> None:
        self.calls: Counter[str] = Counter()
        for name in READS:
            fn = getattr(store, name)
            setattr(store, name, self._wrap(name, fn))

    def _wrap(self, name: str, fn: Any) -> Any:
        def counted(*a: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return fn(*a, **kw)

        return counted

    def total(self) -> int:
        return sum(self.calls.values())


def man(ns: str, count: int = 3, **kw: Any) -> Manifest:
    return Manifest(index=INDEX, namespace=ns, version=1, record_count=count, **kw)


def create(store: Store, *nss: str, counts: dict[str, int] | None = None) -> None:
    ms = tuple(man(ns, (counts or {}).get(ns, 3)) for ns in nss)
    commit.apply(store, INDEX, CreateNamespaces(import_id=uuid.uuid4().hex, manifests=ms),
                 retry=FAST)


def truth(store: Store) -> dict[str, tuple[int, int]]:
    return {ns: (m.version, m.record_count)
            for ns, m in manifests.list_namespaces(store, INDEX).items()}


def seen(store: Store) -> dict[str, tuple[int, int]]:
    return {ns: (e.version, e.record_count) for ns, e in catalog.namespaces(store, INDEX).items()}


def test_thousands_of_namespaces_cost_two_reads(store: Store) -> None:
    nss = [f"tenant-{i:05d}" for i in range(2_500)]
    create(store, *nss, counts={ns: i for i, ns in enumerate(nss)})
    create(store, "", "late")
    want = truth(store)
    assert len(want) == 2_502 and want["tenant-00042"] == (1, 42)
    counting = Counting(store)
    assert seen(store) == want
    assert counting.calls == Counter(walk_files=1, read_bytes=1), counting.calls
    assert list(catalog.namespaces(store, INDEX)) == sorted(want)  # sorted by name
    # snapshots are immutable, numbered, and only the newest few are kept
    snaps = [k for k, _ in store.walk_files(layout.catalog_prefix(INDEX)) if "intents" not in k]
    assert 1 <= len(snaps) <= catalog.KEEP
    assert not [k for k, _ in store.walk_files(layout.catalog_intents_prefix(INDEX))]


def test_deletes_applies_and_writes_update_it(store: Store) -> None:
    create(store, "a", "b", "c")
    manifests.delete_namespace(store, INDEX, "b")
    base = manifests.load_namespace(store, INDEX, "a")
    assert base is not None
    nxt = base.model_copy(update={"record_count": 10})
    commit.apply(store, INDEX, ApplyLog(namespace="a", base_version=1, applied_lsn=0, manifest=nxt))
    spec = IndexSpec(name=INDEX, dimension=4, metric="cosine")
    writes.ensure_namespace(store, spec, "fresh")  # the write path's empty namespace
    assert seen(store) == truth(store) == {"a": (2, 10), "c": (1, 3), "fresh": (1, 0)}
    create(store, "b")  # re-created after its delete: above the tombstone
    assert seen(store)["b"] == (3, 3) == truth(store)["b"]


def test_a_commit_that_died_before_the_catalog_is_still_seen(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(store, "a")
    monkeypatch.setattr(catalog, "record", lambda *a, **k: False)  # died after its marker
    create(store, "b", "c")
    manifests.delete_namespace(store, INDEX, "a")
    monkeypatch.undo()
    intents = [k for k, _ in store.walk_files(layout.catalog_intents_prefix(INDEX))]
    assert len(intents) == 2  # left behind by the two commits
    want = truth(store)
    counting = Counting(store)
    assert seen(store) == want == {"b": (1, 3), "c": (1, 3)}
    # one listing, the snapshot, the two intents, then those namespaces' manifests
    assert counting.calls["walk_files"] == 1 and counting.calls["read_bytes"] <= 3 + 3 * 2
    # a later writer folds intents old enough to belong to dead commits
    monkeypatch.setattr(catalog, "INTENT_STALE_SECONDS", 0.0)
    create(store, "d")
    assert not [k for k, _ in store.walk_files(layout.catalog_intents_prefix(INDEX))]
    assert seen(store) == truth(store) == {"b": (1, 3), "c": (1, 3), "d": (1, 3)}


def test_an_in_flight_import_stays_invisible(store: Store) -> None:
    create(store, "a")
    # an import's manifest written, marker not yet: its intent names it
    key = catalog.begin(store, INDEX, ["x"])
    manifests.commit(store, man("x", import_id="not-yet"), catalog=False)
    assert seen(store) == truth(store) == {"a": (1, 3)}
    manifests.mark_import_committed(store, INDEX, "not-yet")
    assert seen(store) == truth(store) == {"a": (1, 3), "x": (1, 3)}  # through the intent
    catalog.finish(store, INDEX, key, [manifests.latest_visible(store, INDEX, "x")])  # type: ignore[list-item]
    counting = Counting(store)
    assert seen(store) == {"a": (1, 3), "x": (1, 3)}
    assert counting.calls == Counter(walk_files=1, read_bytes=1)


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_marker_landing_mid_read_shows_all_or_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch, snapshot: bool
) -> None:
    """An import of two namespaces whose marker lands while a reader checks
    them one by one: the reader sees both or neither (a full-suite run saw
    600 of 1,800 records). ``snapshot``: through the catalog's intent
    overlay; else an index without a snapshot (the per-namespace scan)."""
    if snapshot:
        create(store, "a")
    catalog.begin(store, INDEX, ["x", "y"])  # the commit's intent, kept (it is in flight)
    for ns in ("x", "y"):
        manifests.commit(store, man(ns, import_id="landing"), catalog=False)
    real = manifests.import_committed
    checks: list[bool] = []

    def lands_after_first_check(s: Store, index: str, import_id: str) -> bool:
        got = real(s, index, import_id)
        if import_id == "landing" and not checks:
            manifests.mark_import_committed(s, INDEX, "landing")  # right after the first check
        checks.append(got)
        return got

    monkeypatch.setattr(manifests, "import_committed", lands_after_first_check)
    before = {"a": (1, 3)} if snapshot else {}
    got = seen(store)
    assert checks and checks[0] is False
    assert got == before, got  # neither: the view is that of the first check
    assert seen(store) == truth(store) == {**before, "x": (1, 3), "y": (1, 3)}


def test_an_index_from_before_the_catalog(store: Store) -> None:
    for ns in ("old1", "old2"):  # written without the catalog (older versions)
        manifests.commit(store, man(ns), catalog=False)
    assert seen(store) == truth(store)  # no snapshot: the per-namespace scan
    create(store, "new")  # the first snapshot starts from a full scan
    want = truth(store)
    counting = Counting(store)
    assert seen(store) == want == {"new": (1, 3), "old1": (1, 3), "old2": (1, 3)}
    assert counting.calls == Counter(walk_files=1, read_bytes=1)


def test_concurrent_commits_lose_no_namespace(store: Store) -> None:
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            for j in range(3):
                create(store, f"w{i}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen(store) == truth(store) and len(truth(store)) == 18


def test_describe_namespace_and_delete_through_the_catalog(store: Store) -> None:
    create(store, "a", "b")
    assert catalog.namespace(store, INDEX, "a") == catalog.NamespaceEntry(1, 3)
    commit.apply(store, INDEX, DeleteNamespace(namespace="a"))
    assert catalog.namespace(store, INDEX, "a") is None
    assert list(catalog.namespaces(store, INDEX)) == ["b"]
