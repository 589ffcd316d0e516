"""Namespace manifests: serialisation, visibility, the write-if-absent commit
(raced by threads and by processes) and namespace deletion."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import runpy
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segwriter import records_to_table, write_namespace

from vecstore import layout, manifests, storage
from vecstore.errors import CommitConflictError, FormatError, NotFoundError
from vecstore.schemas import ClusterEntry, FieldStats, IndexSpec, Manifest, MetadataField
from vecstore.storage import Store

INDEX = "idx"

# ------------------------------------------------------------------ fixtures


def _memory_store(tag: str) -> Store:
    return Store(f"memory://test-manifests-{tag}-{uuid.uuid4().hex}")


def _drop(store: Store) -> None:
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture
def memory_store() -> Iterator[Store]:
    store = _memory_store("fx")
    yield store
    _drop(store)


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"))


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


def manifest(namespace: str = "ns", version: int = 1, **kw: Any) -> Manifest:
    return Manifest(index=INDEX, namespace=namespace, version=version, **kw)


# ---------------------------------------------------------------- strategies

_count = st.integers(0, 2**53)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_field_stats = st.builds(
    FieldStats,
    count=_count,
    num_count=_count,
    min=st.none() | _finite,
    max=st.none() | _finite,
    str_count=_count,
    values=st.none() | st.lists(st.text(max_size=12), max_size=5),
    bool_true=_count,
    bool_false=_count,
    list_count=_count,
)
_cluster = st.builds(
    ClusterEntry,
    id=st.integers(0, 65_535),
    segment=st.text(min_size=1, max_size=40),
    row_count=_count,
    byte_size=_count,
    stats=st.dictionaries(st.text(max_size=10), _field_stats, max_size=3),
)
_field = st.builds(
    MetadataField,
    name=st.text(max_size=10),
    kinds=st.lists(st.sampled_from(["num", "str", "bool", "list"]), max_size=4, unique=True),
)
_index_name = st.from_regex(r"\A[a-z0-9-]{1,45}\Z")


def _manifests(namespace: st.SearchStrategy[str]) -> st.SearchStrategy[Manifest]:
    return st.builds(
        Manifest,
        index=_index_name,
        namespace=namespace,
        version=st.integers(1, 10**12),
        created_at=st.datetimes(timezones=st.just(UTC)),
        import_id=st.none() | st.text(alphabet="0123456789abcdef", min_size=1, max_size=24),
        deleted=st.booleans(),
        vector_type=st.sampled_from(["dense", "sparse"]),
        metric=st.sampled_from(["cosine", "euclidean", "dotproduct"]),
        dimension=st.none() | st.integers(1, 20_000),
        record_count=_count,
        byte_size=_count,
        centroids=st.none() | st.text(min_size=1, max_size=30),
        clusters=st.lists(_cluster, max_size=4),
        id_files=st.lists(st.text(min_size=1, max_size=30), max_size=3),
        fields=st.lists(_field, max_size=3),
        parent_version=st.none() | st.integers(1, 10**12),
    )


# -------------------------------------------------------------- round trips


@settings(max_examples=150, deadline=None)
@given(_manifests(st.text(max_size=60)))
def test_manifest_json_round_trip(m: Manifest) -> None:
    for raw in (m.model_dump_json(), m.model_dump_json(indent=1)):
        back = Manifest.model_validate_json(raw)
        assert back == m
        assert back.model_dump_json() == m.model_dump_json()
    assert Manifest.model_validate(m.model_dump()) == m


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_manifests(st.text(max_size=40)))
def test_manifest_commit_and_read_round_trip(m: Manifest) -> None:
    store = _memory_store("hyp")
    try:
        assert manifests.commit(store, m) == m
        assert manifests.read_manifest(store, m.index, m.namespace, m.version) == m
        assert manifests.manifest_versions(store, m.index, m.namespace) == [m.version]
        assert store.exists(layout.manifest_key(m.index, m.namespace, m.version))
        assert manifests.next_version(store, m.index, m.namespace) == m.version + 1
        if m.import_id is None:
            expected = None if m.deleted else m
            assert manifests.load_namespace(store, m.index, m.namespace) == expected
            assert manifests.latest_visible(store, m.index, m.namespace) == m
        with pytest.raises(CommitConflictError):
            manifests.commit(store, m)
    finally:
        _drop(store)


def test_files_lists_every_referenced_file() -> None:
    m = manifest(
        clusters=[
            ClusterEntry(id=0, segment="data/a.parquet", row_count=1, byte_size=1),
            ClusterEntry(id=1, segment="data/b.parquet", row_count=1, byte_size=1),
        ],
        id_files=["data/c.ids.parquet"],
        centroids="data/d.centroids",
    )
    assert m.files() == [
        "data/a.parquet",
        "data/b.parquet",
        "data/c.ids.parquet",
        "data/d.centroids",
    ]
    assert manifest().files() == []


def test_manifest_key_layout() -> None:
    assert layout.manifest_key("idx", "", 7) == (
        "indexes/idx/namespaces/__default__/_manifests/00000000000000000007.json"
    )
    assert layout.manifest_key("idx", "a/b c", 1).split("/")[3] == "a%2Fb%20c"
    assert layout.version_of_manifest("x/00000000000000000042.json") == 42
    for bad in ("x/42.json", "x/0000000000000000004a.json", "x/00000000000000000042.tmp"):
        assert layout.version_of_manifest(bad) is None


# ------------------------------------------------------------- visibility


def test_import_manifest_invisible_until_marked_committed(store: Store) -> None:
    v1 = manifests.commit(store, manifest(version=1, record_count=1))
    manifests.commit(store, manifest(version=2, record_count=2, import_id="imp1"))
    assert manifests.load_namespace(store, INDEX, "ns") == v1
    assert manifests.list_namespaces(store, INDEX)["ns"].version == 1
    assert not manifests.import_committed(store, INDEX, "imp1")
    assert manifests.next_version(store, INDEX, "ns") == 3  # invisible versions count
    manifests.mark_import_committed(store, INDEX, "imp1")
    manifests.mark_import_committed(store, INDEX, "imp1")  # idempotent
    assert manifests.import_committed(store, INDEX, "imp1")
    visible = manifests.load_namespace(store, INDEX, "ns")
    assert visible is not None and (visible.version, visible.record_count) == (2, 2)
    assert store.exists(layout.commit_marker_key(INDEX, "imp1"))


def test_all_namespaces_of_one_import_appear_together(store: Store) -> None:
    for ns in ("a", "b", ""):
        manifests.commit(store, manifest(namespace=ns, import_id="imp2"))
    assert manifests.list_namespaces(store, INDEX) == {}
    for ns in ("a", "b", ""):
        assert manifests.load_namespace(store, INDEX, ns) is None
        assert manifests.latest_visible(store, INDEX, ns) is None
    manifests.mark_import_committed(store, INDEX, "imp2")
    assert list(manifests.list_namespaces(store, INDEX)) == ["", "a", "b"]


def test_tombstone_hides_the_namespace(store: Store) -> None:
    manifests.commit(store, manifest(version=1, record_count=5))
    manifests.commit(store, manifest(version=2, deleted=True, parent_version=1))
    assert manifests.load_namespace(store, INDEX, "ns") is None
    latest = manifests.latest_visible(store, INDEX, "ns")
    assert latest is not None and latest.deleted and latest.version == 2
    assert manifests.list_namespaces(store, INDEX) == {}
    # a later live version brings it back
    manifests.commit(store, manifest(version=3, record_count=1))
    back = manifests.load_namespace(store, INDEX, "ns")
    assert back is not None and back.version == 3


def test_invisible_tombstone_hides_nothing(store: Store) -> None:
    manifests.commit(store, manifest(version=1))
    manifests.commit(store, manifest(version=2, deleted=True, import_id="never"))
    m = manifests.load_namespace(store, INDEX, "ns")
    assert m is not None and m.version == 1


def test_load_namespace_picks_the_highest_visible_version(store: Store) -> None:
    for v in (1, 2, 3):
        manifests.commit(store, manifest(version=v, record_count=v * 10))
    manifests.commit(store, manifest(version=4, record_count=40, import_id="pending-import"))
    manifests.commit(store, manifest(version=6, record_count=60, import_id="other-pending"))
    m = manifests.load_namespace(store, INDEX, "ns")
    assert m is not None and (m.version, m.record_count) == (3, 30)
    assert manifests.manifest_versions(store, INDEX, "ns") == [1, 2, 3, 4, 6]
    assert manifests.next_version(store, INDEX, "ns") == 7
    manifests.mark_import_committed(store, INDEX, "pending-import")
    m = manifests.load_namespace(store, INDEX, "ns")
    assert m is not None and m.version == 4


def test_next_version_of_a_new_namespace_is_1(store: Store) -> None:
    assert manifests.next_version(store, INDEX, "nothing") == 1
    assert manifests.manifest_versions(store, INDEX, "nothing") == []
    assert manifests.load_namespace(store, INDEX, "nothing") is None
    assert manifests.list_namespaces(store, "no-such-index") == {}


def test_foreign_files_in_manifest_dir_are_ignored(store: Store) -> None:
    manifests.commit(store, manifest(version=2))
    prefix = layout.manifests_prefix(INDEX, "ns")
    store.write_bytes(f"{prefix}/notes.txt", b"x")
    store.write_bytes(f"{prefix}/3.json", b"{}")
    store.write_bytes(f"{prefix}/00000000000000000009.json.tmp", b"{}")
    assert manifests.manifest_versions(store, INDEX, "ns") == [2]


def test_corrupt_manifest_is_a_format_error(store: Store) -> None:
    store.write_bytes(layout.manifest_key(INDEX, "ns", 1), b'{"index": "idx"')
    with pytest.raises(FormatError, match="not valid"):
        manifests.read_manifest(store, INDEX, "ns", 1)
    store.write_bytes(layout.manifest_key(INDEX, "ns", 2), b'{"index": "idx", "bogus": 1}')
    with pytest.raises(FormatError):
        manifests.read_manifest(store, INDEX, "ns", 2)


def test_missing_manifest_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        manifests.read_manifest(store, INDEX, "ns", 1)


def test_namespace_names_are_one_path_segment(store: Store) -> None:
    names = ["", "a b", "a/b", "ü", "100%", "x?y*z", "-_.~"]
    for ns in names:
        manifests.commit(store, manifest(namespace=ns))
    assert set(manifests.list_namespaces(store, INDEX)) == set(names)
    for ns in names:
        assert manifests.read_manifest(store, INDEX, ns, 1).namespace == ns


@pytest.mark.parametrize("ns", [".", ".."])
def test_dot_namespaces_stay_inside_their_directory(local_store: Store, ns: str) -> None:
    manifests.commit(local_store, manifest(namespace=ns))
    assert list(manifests.list_namespaces(local_store, INDEX)) == [ns]
    catalog = f"{layout.catalog_prefix(INDEX)}/"  # the namespace catalog (vecstore.catalog)
    files = [k for k, _ in local_store.walk_files("") if not k.startswith(catalog)]
    assert all(k.startswith(f"{layout.namespaces_prefix(INDEX)}/") for k in files), files
    assert layout.ns_dir(ns) not in (".", "..")


# ------------------------------------------------------------ commit races


def _race_threads(store: Store, n: int, version: int) -> None:
    barrier = threading.Barrier(n)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        m = manifest(version=version, record_count=i)
        barrier.wait(timeout=30)
        try:
            manifests.commit(store, m)
            outcome = "won"
        except CommitConflictError:
            outcome = "lost"
        except Exception as exc:  # pragma: no cover - reported below
            outcome = f"error: {exc!r}"
        with lock:
            results.append((i, outcome))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(results) == n
    winners = [i for i, outcome in results if outcome == "won"]
    assert len(winners) == 1, results
    assert all(outcome in ("won", "lost") for _, outcome in results), results
    stored = manifests.read_manifest(store, INDEX, "ns", version)
    assert stored.record_count == winners[0]


def test_commit_race_threads(store: Store) -> None:
    for version in (1, 2, 3):
        _race_threads(store, 16, version)
    assert manifests.manifest_versions(store, INDEX, "ns") == [1, 2, 3]
    if store.kind == "local":
        leftovers = [k for k, _ in store.walk_files("") if not k.endswith(".json")]
        assert leftovers == []  # no temporary files left behind


_RACE_WORKER = """
import os
from vecstore.schemas import Manifest
from vecstore import manifests
from vecstore.errors import CommitConflictError
from vecstore.storage import Store

store = Store(ROOT)
m = Manifest(index="race", namespace="ns", version=1, import_id=None, record_count=os.getpid())
BARRIER.wait(timeout=120)
try:
    manifests.commit(store, m)
    QUEUE.put((os.getpid(), "won"))
except CommitConflictError:
    QUEUE.put((os.getpid(), "lost"))
except BaseException as exc:
    QUEUE.put((os.getpid(), "error: " + repr(exc)))
"""


def test_commit_race_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Separate processes (spawned: no shared state) race for version 1."""
    n = 5
    script = tmp_path / "race_worker.py"
    script.write_text(_RACE_WORKER)
    root = str(tmp_path / "store")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    )
    procs = [
        ctx.Process(
            target=runpy.run_path,
            args=(str(script),),
            kwargs={"init_globals": {"ROOT": root, "BARRIER": barrier, "QUEUE": queue}},
        )
        for _ in range(n)
    ]
    try:
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in range(n)]
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():  # pragma: no cover
                p.kill()
    assert sorted(pid for pid, _ in results) == sorted(p.pid for p in procs)
    assert all(p.exitcode == 0 for p in procs)
    winners = [pid for pid, outcome in results if outcome == "won"]
    assert len(winners) == 1, results
    assert sorted(outcome for _, outcome in results) == ["lost"] * (n - 1) + ["won"], results
    stored = manifests.read_manifest(Store(root), "race", "ns", 1)
    assert stored.record_count == winners[0]


# -------------------------------------------------------- delete_namespace

SPEC = IndexSpec(name=INDEX, dimension=3, metric="euclidean")


def _write(store: Store, namespace: str = "ns", n: int = 12) -> Manifest:
    rng = np.random.default_rng(7)
    records = [
        {"id": f"id-{i}", "values": rng.normal(size=3).tolist(), "metadata": {"i": i}}
        for i in range(n)
    ]
    return write_namespace(store, SPEC, namespace, records_to_table(records, SPEC))


def test_delete_namespace_tombstones_then_removes_files(store: Store) -> None:
    live = _write(store)
    ns_prefix = layout.namespace_prefix(INDEX, "ns")
    assert live.files() and all(store.exists(f"{ns_prefix}/{f}") for f in live.files())
    _write(store, "other")
    # a file some racing writer created under a fresh name must survive
    store.write_bytes(f"{ns_prefix}/data/racing-writer.parquet", b"x")

    tomb = manifests.delete_namespace(store, INDEX, "ns")

    assert (tomb.deleted, tomb.version, tomb.parent_version) == (True, 2, 1)
    assert (tomb.vector_type, tomb.metric, tomb.dimension) == ("dense", "euclidean", 3)
    assert (tomb.record_count, tomb.clusters, tomb.files()) == (0, [], [])
    assert manifests.load_namespace(store, INDEX, "ns") is None
    assert manifests.manifest_versions(store, INDEX, "ns") == [2]
    assert not any(store.exists(f"{ns_prefix}/{f}") for f in live.files())
    remaining = [k for k, _ in store.walk_files(ns_prefix)]
    assert remaining == sorted(
        [f"{ns_prefix}/data/racing-writer.parquet", layout.manifest_key(INDEX, "ns", 2)]
    )
    assert list(manifests.list_namespaces(store, INDEX)) == ["other"]
    with pytest.raises(NotFoundError, match='Namespace "ns" not found in index "idx"'):
        manifests.delete_namespace(store, INDEX, "ns")
    # the namespace can be written again, above the tombstone
    again = _write(store, n=3)
    assert again.version == 3 and again.record_count == 3


def test_delete_missing_namespace(store: Store) -> None:
    with pytest.raises(NotFoundError) as info:
        manifests.delete_namespace(store, INDEX, "ghost")
    assert info.value.namespace == "ghost"
    assert store.walk_files("") == []


def test_delete_namespace_removes_every_older_version(store: Store) -> None:
    first = _write(store)
    second = _write(store)  # version 2 (a rebuild), new files
    assert second.version == 2
    tomb = manifests.delete_namespace(store, INDEX, "ns")
    assert tomb.version == 3 and tomb.parent_version == 2
    ns_prefix = layout.namespace_prefix(INDEX, "ns")
    for f in first.files() + second.files():
        assert not store.exists(f"{ns_prefix}/{f}")
    assert manifests.manifest_versions(store, INDEX, "ns") == [3]


def test_concurrent_reader_sees_whole_namespace_or_none(local_store: Store) -> None:
    """Readers racing a delete see the namespace whole (manifest and every file)
    or not at all; a file goes missing only once the tombstone is visible.

    Local store only: on memory:// listing itself races deletes (see the xfail
    test below), which would make this stress test flaky there.
    """
    store = local_store
    live = _write(store, n=40)
    ns_prefix = layout.namespace_prefix(INDEX, "ns")
    n_readers = 3
    # per reader: (started after the delete returned, outcome)
    observed: list[list[tuple[bool, str]]] = [[] for _ in range(n_readers)]
    errors: list[BaseException] = []
    stop = threading.Event()
    deleted = threading.Event()
    saw_full = threading.Event()

    def reader(mine: list[tuple[bool, str]]) -> None:
        try:
            while not stop.is_set():
                after_delete = deleted.is_set()
                m = manifests.load_namespace(store, INDEX, "ns")
                if m is None:
                    mine.append((after_delete, "none"))
                    continue
                assert m == live
                try:
                    for f in m.files():
                        store.read_bytes(f"{ns_prefix}/{f}")
                except NotFoundError:
                    # a file may vanish only once the deletion is visible
                    assert manifests.load_namespace(store, INDEX, "ns") is None
                    mine.append((after_delete, "none"))
                else:
                    mine.append((after_delete, "full"))
                    saw_full.set()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(obs,)) for obs in observed]
    for th in threads:
        th.start()
    try:
        assert saw_full.wait(10)
        manifests.delete_namespace(store, INDEX, "ns")
        deleted.set()
        for obs in observed:  # every reader looks at least once after the delete
            for _ in range(1000):
                if any(after for after, _ in list(obs)) or errors:
                    break
                threading.Event().wait(0.01)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=30)
    assert errors == []
    for obs in observed:
        outcomes = [o for _, o in obs]
        # whole, then gone: never back
        assert outcomes == sorted(outcomes, key=lambda o: o == "none"), outcomes
        assert [o for after, o in obs if after] and all(o == "none" for after, o in obs if after)
    assert any(o == "full" for obs in observed for _, o in obs)
    assert manifests.load_namespace(store, INDEX, "ns") is None


class _DeleteAfterSnapshot(dict):  # type: ignore[type-arg]
    """fsspec's memory store, where "another thread" deletes ``victim`` right
    after a listing took its snapshot of the keys (a deterministic interleaving).
    A deleter that respects the store's memory lock cannot do that while the
    lister holds it."""

    victim: str | None = None

    def __iter__(self) -> Iterator[str]:
        keys = list(super().__iter__())
        if (
            self.victim is not None
            and super().__contains__(self.victim)
            and not storage._MEMORY_LOCK.locked()
        ):
            super().__delitem__(self.victim)
            self.victim = None
        return iter(keys)


def test_reader_racing_delete_on_memory_sees_the_tombstone(
    memory_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = memory_store
    manifests.commit(store, manifest(version=1, record_count=3))
    # delete_namespace: the tombstone lands first, then old manifests go
    manifests.commit(store, manifest(version=2, deleted=True, parent_version=1))
    racy = _DeleteAfterSnapshot(store.fs.store)
    racy.victim = store.path(layout.manifest_key(INDEX, "ns", 1))
    monkeypatch.setattr(store.fs, "store", racy)
    assert manifests.load_namespace(store, INDEX, "ns") is None
