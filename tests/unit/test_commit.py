"""vecstore.commit: the one version rule (imports, deletes, log applies),
conflicts raced by threads, the import commit marker, the file check, and
byte-identical manifests."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from vecstore import commit, layout, manifests
from vecstore.commit import (
    ApplyLog,
    Change,
    CreateNamespaces,
    DeleteNamespace,
    MissingFileError,
    RetryPolicy,
)
from vecstore.errors import CommitConflictError, IngestError, NotFoundError
from vecstore.schemas import Manifest
from vecstore.storage import Store

INDEX = "idx"
FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01)
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v1" / "store"


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield Store(str(tmp_path / "store"))
        return
    s = Store(f"memory://test-commit-{uuid.uuid4().hex}")
    yield s
    with contextlib.suppress(Exception):
        s.fs.rm(s.root, recursive=True)


def staged(
    store: Store, ns: str, tag: str = "", n: int = 2, version: int = 1, **kw: Any
) -> Manifest:
    """A manifest of ``ns`` referencing ``n`` files that exist in the store."""
    files = [f"data/{tag or uuid.uuid4().hex}-{i}.ids.parquet" for i in range(n)]
    for rel in files:
        store.write_bytes(f"{layout.namespace_prefix(INDEX, ns)}/{rel}", b"x")
    return Manifest(
        index=INDEX, namespace=ns, version=version, id_files=files, record_count=n, **kw
    )


def create(store: Store, import_id: str, *nss: str, **kw: Any) -> commit.Committed:
    change = CreateNamespaces(import_id=import_id, manifests=tuple(staged(store, ns) for ns in nss))
    return commit.apply(store, INDEX, change, retry=FAST, **kw)


def delete(store: Store, ns: str) -> Manifest:
    return commit.apply(store, INDEX, DeleteNamespace(namespace=ns), retry=FAST).manifests[ns]


def exists_msg(ns: str) -> str:
    return (
        f'The namespace "{ns}" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    )


# ------------------------------------------------------------ the changes


def test_change_is_a_discriminated_union() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(Change)
    assert adapter.validate_python({"kind": "delete_namespace", "namespace": "a"}) == (
        DeleteNamespace(namespace="a")
    )
    m = Manifest(index=INDEX, namespace="a", version=1)
    parsed = adapter.validate_python(
        {
            "kind": "apply_log",
            "namespace": "a",
            "base_version": None,
            "applied_lsn": 7,
            "manifest": m,
        }
    )
    assert isinstance(parsed, ApplyLog) and parsed.applied_lsn == 7
    with pytest.raises(ValueError, match="frozen"):
        parsed.applied_lsn = 8  # type: ignore[misc]


# ------------------------------------------------------- imports: versions


def test_import_creates_every_namespace_at_once_through_the_marker(store: Store) -> None:
    done = create(store, "imp1", "", "a", "b")
    assert sorted(done.manifests) == ["", "a", "b"]
    for ns, m in done.manifests.items():
        assert (m.version, m.import_id, m.parent_version) == (1, "imp1", None)
        assert manifests.load_namespace(store, INDEX, ns) == m
    assert manifests.import_committed(store, INDEX, "imp1")
    assert store.exists(layout.commit_marker_key(INDEX, "imp1"))


def test_guard_runs_twice_and_manifests_stay_invisible_until_the_marker(store: Store) -> None:
    seen: list[list[str]] = []

    def guard() -> None:  # what is visible each time the guard runs
        seen.append(sorted(manifests.list_namespaces(store, INDEX)))

    create(store, "imp1", *[f"ns{i}" for i in range(20)], guard=guard)
    assert seen == [[], []]  # before the writes, before the marker
    assert len(manifests.list_namespaces(store, INDEX)) == 20


def test_guard_failing_before_the_marker_takes_the_manifests_back(store: Store) -> None:
    calls = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("superseded")

    with pytest.raises(RuntimeError, match="superseded"):
        create(store, "imp1", "a", "b", guard=guard)
    assert manifests.manifest_versions(store, INDEX, "a") == []
    assert manifests.manifest_versions(store, INDEX, "b") == []
    assert not manifests.import_committed(store, INDEX, "imp1")


def prepare(store: Store, import_id: str, *nss: str, **kw: Any) -> tuple[Manifest, ...]:
    change = CreateNamespaces(import_id=import_id, manifests=tuple(staged(store, ns) for ns in nss))
    return commit.prepare(store, INDEX, change, retry=FAST, **kw)


def test_prepared_manifests_become_visible_with_the_marker_only(store: Store) -> None:
    """Manifests a pack task prepared (written, invisible) and the driver's
    own become visible together, at the marker; the catalog records both."""
    early = prepare(store, "imp1", "a", "b") + prepare(store, "imp1", "c")
    assert [(m.namespace, m.version, m.import_id) for m in early] == [
        ("a", 1, "imp1"), ("b", 1, "imp1"), ("c", 1, "imp1")
    ]
    assert manifests.manifest_versions(store, INDEX, "a") == [1]  # written...
    assert manifests.list_namespaces(store, INDEX) == {}  # ...not visible
    done = create(store, "imp1", "d", prepared=early)
    assert sorted(done.manifests) == ["a", "b", "c", "d"]
    assert sorted(manifests.list_namespaces(store, INDEX)) == ["a", "b", "c", "d"]
    from vecstore import catalog

    assert sorted(catalog.namespaces(store, INDEX)) == ["a", "b", "c", "d"]
    assert not store.ls(layout.catalog_intents_prefix(INDEX))


def test_prepare_validates_and_takes_its_writes_back(store: Store) -> None:
    create(store, "imp0", "b")
    with pytest.raises(IngestError) as info:
        prepare(store, "imp1", "a", "b")
    assert info.value.message == exists_msg("b")
    assert manifests.manifest_versions(store, INDEX, "a") == []
    manifests.commit(store, staged(store, "x", import_id="other"))  # an import in flight
    with pytest.raises(IngestError, match='"x" is being created by another import'):
        prepare(store, "imp1", "a", "x")
    assert manifests.manifest_versions(store, INDEX, "a") == []  # written, then taken back
    with pytest.raises(RuntimeError, match="superseded"):
        prepare(store, "imp1", "a", guard=lambda: (_ for _ in ()).throw(RuntimeError("superseded")))
    assert manifests.manifest_versions(store, INDEX, "a") == []


def test_a_task_run_again_replaces_its_own_prepared_manifest(store: Store) -> None:
    """Dask runs a pack task again when its worker is lost after it
    prepared: the second run's manifest replaces the first's (same attempt:
    its files carry the attempt's owner prefix), and the import commits that
    one. Another attempt's manifest (maybe a newer attempt's, this one a
    zombie) or another import's stays a conflict."""

    def run(ns: str, owner: str, import_id: str = "imp1") -> tuple[Manifest, ...]:
        m = staged(store, ns, tag=f"{owner}-{uuid.uuid4().hex}")
        change = CreateNamespaces(import_id=import_id, manifests=(m,), owner=owner)
        return commit.prepare(store, INDEX, change, retry=FAST)

    first = run("a", "imp1-a1")
    again = run("a", "imp1-a1")
    assert again[0].version == 1 and again[0].id_files != first[0].id_files
    assert manifests.read_manifest(store, INDEX, "a", 1) == again[0]
    done = create(store, "imp1", prepared=again)
    assert manifests.load_namespace(store, INDEX, "a") == done.manifests["a"] == again[0]
    newer = run("b", "imp2-a2", "imp2")
    with pytest.raises(IngestError, match=r'"b" is being created by another import \(imp2\)'):
        run("b", "imp2-a1", "imp2")  # a zombie attempt 1 does not take attempt 2's slot
    assert manifests.read_manifest(store, INDEX, "b", 1) == newer[0]
    with pytest.raises(IngestError, match='"b" is being created by another import'):
        run("b", "imp3-a1", "imp3")


def test_a_failed_commit_takes_prepared_manifests_back(store: Store) -> None:
    early = prepare(store, "imp1", "a")
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        create(store, "imp1", "b", prepared=early, guard=guard)
    assert manifests.manifest_versions(store, INDEX, "a") == []
    assert manifests.manifest_versions(store, INDEX, "b") == []
    with pytest.raises(ValueError, match="prepared manifests"):
        create(store, "imp2", "c", prepared=prepare(store, "imp1", "d"))


def test_file_check_covers_prepared_manifests(store: Store) -> None:
    """Rule 4 stays with the driver's commit: a file of a prepared manifest
    deleted before the marker fails the import and nothing is visible."""
    early = prepare(store, "imp1", "a")
    store.delete(f"{layout.namespace_prefix(INDEX, 'a')}/{early[0].id_files[0]}")
    with pytest.raises(MissingFileError, match='referenced by namespace "a"'):
        create(store, "imp1", "b", prepared=early)
    assert manifests.list_namespaces(store, INDEX) == {}
    assert manifests.manifest_versions(store, INDEX, "a") == []


def test_superseded_attempt_drops_the_manifests_its_workers_prepared(store: Store) -> None:
    """cleanup_attempt (a superseded attempt that wrote no marker): its data
    files and the manifests referencing them go; another attempt's stay."""
    from vecstore.cleanup import cleanup_attempt

    old = CreateNamespaces(import_id="imp1", manifests=(staged(store, "a", tag="imp1-a1-x"),))
    new = CreateNamespaces(import_id="imp1", manifests=(staged(store, "b", tag="imp1-a2-y"),))
    commit.prepare(store, INDEX, old)
    commit.prepare(store, INDEX, new)
    cleanup_attempt(store, INDEX, "staging/none", "imp1-a1")
    assert manifests.manifest_versions(store, INDEX, "a") == []
    assert not store.ls(layout.data_prefix(INDEX, "a"))
    assert manifests.manifest_versions(store, INDEX, "b") == [1]
    assert len(store.ls(layout.data_prefix(INDEX, "b"))) == 2


def test_import_into_a_live_namespace_writes_nothing(store: Store) -> None:
    create(store, "imp1", "b")
    with pytest.raises(IngestError) as info:
        create(store, "imp2", "a", "b")  # "a" is validated fine, "b" exists
    assert info.value.message == exists_msg("b") and info.value.namespace == "b"
    assert manifests.manifest_versions(store, INDEX, "a") == []
    assert manifests.manifest_versions(store, INDEX, "b") == [1]
    create(store, "imp3", "")
    with pytest.raises(IngestError, match='"__default__" already exists'):
        create(store, "imp4", "")


def test_import_after_a_tombstone_takes_the_next_version(store: Store) -> None:
    create(store, "imp1", "a")
    tomb = delete(store, "a")
    assert (tomb.version, tomb.parent_version, tomb.deleted) == (2, 1, True)
    again = create(store, "imp2", "a").manifests["a"]
    assert (again.version, again.import_id) == (3, "imp2")
    assert manifests.load_namespace(store, INDEX, "a") == again


def test_import_loses_to_an_import_in_flight(store: Store) -> None:
    """Another import wrote its manifest of "a" (no marker yet): it holds
    version 1, and this import fails instead of shadowing it at version 2."""
    manifests.commit(store, staged(store, "a", import_id="other"))
    with pytest.raises(IngestError) as info:
        create(store, "imp2", "a", "b")
    assert info.value.message == (
        'The namespace "a" is being created by another import (other). Imports are only '
        "allowed into nonexistent namespaces."
    )
    assert manifests.manifest_versions(store, INDEX, "a") == [1]
    assert manifests.manifest_versions(store, INDEX, "b") == []  # taken back
    assert not manifests.import_committed(store, INDEX, "imp2")
    manifests.mark_import_committed(store, INDEX, "other")
    assert manifests.load_namespace(store, INDEX, "a") is not None


def test_concurrent_imports_of_one_namespace_one_wins(store: Store) -> None:
    n = 8
    barrier = threading.Barrier(n)
    outcomes: dict[str, str] = {}
    manifests_of = {f"imp{i}": staged(store, "a") for i in range(n)}

    def worker(import_id: str) -> None:
        change = CreateNamespaces(import_id=import_id, manifests=(manifests_of[import_id],))
        barrier.wait(timeout=30)
        try:
            commit.apply(store, INDEX, change, retry=FAST)
            outcomes[import_id] = "won"
        except IngestError as exc:
            outcomes[import_id] = exc.message

    threads = [threading.Thread(target=worker, args=(i,)) for i in manifests_of]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert len(outcomes) == n and len(winners) == 1, outcomes
    for o in outcomes.values():
        assert o == "won" or o == exists_msg("a") or "is being created by another import" in o
    visible = manifests.load_namespace(store, INDEX, "a")
    assert visible is not None and visible.import_id == winners[0]
    assert manifests.manifest_versions(store, INDEX, "a") == [1]  # losers left nothing


# --------------------------------------------------------------- deletes


def test_delete_takes_the_version_after_the_visible_state(store: Store) -> None:
    create(store, "imp1", "a")
    tomb = delete(store, "a")
    assert tomb.version == 2 and manifests.manifest_versions(store, INDEX, "a") == [2]
    with pytest.raises(NotFoundError, match='Namespace "a" not found in index "idx"'):
        delete(store, "a")
    with pytest.raises(NotFoundError, match='Namespace "ghost" not found'):
        delete(store, "ghost")


def test_concurrent_deletes_one_wins_the_others_find_nothing(store: Store) -> None:
    create(store, "imp1", "a")
    n = 6
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=30)
        try:
            delete(store, "a")
            out = "deleted"
        except NotFoundError:
            out = "not found"
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sorted(outcomes) == ["deleted"] + ["not found"] * (n - 1)
    assert manifests.load_namespace(store, INDEX, "a") is None


def test_delete_waits_for_a_change_in_flight_then_applies_on_top(store: Store) -> None:
    """Version 2 of a live namespace is held by a manifest without its marker:
    the delete waits (backoff) and, once the marker lands, tombstones above."""
    create(store, "imp1", "a")
    manifests.commit(store, staged(store, "a", version=2, import_id="slow"))
    timer = threading.Timer(0.05, manifests.mark_import_committed, (store, INDEX, "slow"))
    timer.start()
    try:
        tomb = commit.apply(
            store, INDEX, DeleteNamespace(namespace="a"), retry=RetryPolicy(attempts=12, base=0.02)
        ).manifests["a"]
    finally:
        timer.join()
    assert (tomb.version, tomb.parent_version) == (3, 2)
    assert manifests.manifest_versions(store, INDEX, "a") == [3]


def test_delete_gives_up_on_a_change_that_never_lands(store: Store) -> None:
    create(store, "imp1", "a")
    manifests.commit(store, staged(store, "a", version=2, import_id="dead"))
    with pytest.raises(CommitConflictError, match='namespace "a" in index "idx" kept changing'):
        delete(store, "a")
    assert manifests.load_namespace(store, INDEX, "a") is not None  # untouched


def test_delete_racing_imports_keeps_one_consistent_history(store: Store) -> None:
    """Rounds of a delete racing an import of the same live namespace: the
    import succeeds only after the tombstone, at the version right above it."""
    create(store, "imp0", "a")
    for r in range(10):
        barrier = threading.Barrier(2)
        result: dict[str, Any] = {}

        def do_delete(
            barrier: threading.Barrier = barrier, result: dict[str, Any] = result
        ) -> None:
            barrier.wait(timeout=30)
            result["delete"] = delete(store, "a")

        def do_import(
            r: int = r, barrier: threading.Barrier = barrier, result: dict[str, Any] = result
        ) -> None:
            m = staged(store, "a")
            barrier.wait(timeout=30)
            try:
                change = CreateNamespaces(import_id=f"imp{r + 1}", manifests=(m,))
                result["import"] = commit.apply(store, INDEX, change, retry=FAST).manifests["a"]
            except IngestError as exc:
                result["import"] = exc.message

        threads = [threading.Thread(target=do_delete), threading.Thread(target=do_import)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        tomb = result["delete"]
        visible = manifests.load_namespace(store, INDEX, "a")
        if isinstance(result["import"], Manifest):
            assert result["import"].version == tomb.version + 1
            assert visible == result["import"]
        else:
            assert result["import"] == exists_msg("a")
            assert visible is None
            create(store, f"again{r}", "a")


# ------------------------------------------------------- the write path slot


def test_apply_log_commits_on_its_base_only(store: Store) -> None:
    first = commit.apply(
        store,
        INDEX,
        ApplyLog(namespace="a", base_version=None, applied_lsn=3, manifest=staged(store, "a")),
    ).manifests["a"]
    assert (first.version, first.import_id, first.parent_version) == (1, None, None)
    assert manifests.load_namespace(store, INDEX, "a") == first  # visible at once
    stale = ApplyLog(namespace="a", base_version=None, applied_lsn=4, manifest=staged(store, "a"))
    with pytest.raises(CommitConflictError, match="is at version 1, not None"):
        commit.apply(store, INDEX, stale)
    nxt = ApplyLog(namespace="a", base_version=1, applied_lsn=9, manifest=staged(store, "a"))
    second = commit.apply(store, INDEX, nxt).manifests["a"]
    assert (second.version, second.parent_version) == (2, 1)


def test_concurrent_apply_logs_on_one_base_one_wins(store: Store) -> None:
    create(store, "imp1", "a")
    n = 6
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()
    changes = [
        ApplyLog(namespace="a", base_version=1, applied_lsn=i, manifest=staged(store, "a"))
        for i in range(n)
    ]

    def worker(change: ApplyLog) -> None:
        barrier.wait(timeout=30)
        try:
            commit.apply(store, INDEX, change, retry=FAST)
            out = "won"
        except CommitConflictError:
            out = "lost"
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=worker, args=(c,)) for c in changes]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sorted(outcomes) == ["lost"] * (n - 1) + ["won"]
    assert manifests.manifest_versions(store, INDEX, "a") == [1, 2]


# -------------------------------------------------------- missing files


def test_missing_file_fails_the_import_and_nothing_is_visible(store: Store) -> None:
    ms = (staged(store, "a"), staged(store, "b"), staged(store, "c"))
    victim = f"{layout.namespace_prefix(INDEX, 'b')}/{ms[1].id_files[1]}"
    store.delete(victim)  # deleted between staging and commit
    with pytest.raises(MissingFileError) as info:
        commit.apply(store, INDEX, CreateNamespaces(import_id="imp1", manifests=ms))
    assert info.value.message == (
        f'Commit refused: file "{store.url(victim)}" referenced by namespace "b" does not '
        "exist (deleted while the change was being written?). Nothing was committed."
    )
    assert info.value.key == victim and info.value.namespace == "b"
    assert isinstance(info.value, NotFoundError)
    assert manifests.list_namespaces(store, INDEX) == {}
    for ns in "abc":
        assert manifests.manifest_versions(store, INDEX, ns) == []
    assert not manifests.import_committed(store, INDEX, "imp1")


def test_a_folder_of_one_file_is_checked_without_a_listing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny namespace references one data file: one existence check, no
    listing; a missing one is refused with the same message."""
    ms = (staged(store, "a", n=1), staged(store, "b", n=1))
    monkeypatch.setattr(store, "ls", lambda *a, **k: pytest.fail(f"listing of {a}"))
    commit.check_files(store, INDEX, ms)
    victim = f"{layout.namespace_prefix(INDEX, 'b')}/{ms[1].id_files[0]}"
    store.delete(victim)
    with pytest.raises(MissingFileError) as info:
        commit.check_files(store, INDEX, ms)
    assert info.value.key == victim and info.value.namespace == "b"
    assert info.value.message.startswith(f'Commit refused: file "{store.url(victim)}"')


def test_missing_file_fails_a_log_apply_before_its_manifest(store: Store) -> None:
    m = staged(store, "a")
    store.delete_prefix(layout.data_prefix(INDEX, "a"))  # the whole folder went
    change = ApplyLog(namespace="a", base_version=None, applied_lsn=1, manifest=m)
    with pytest.raises(MissingFileError, match='namespace "a" does not exist'):
        commit.apply(store, INDEX, change)
    assert manifests.manifest_versions(store, INDEX, "a") == []


def test_file_check_lists_each_data_folder_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms = tuple(staged(store, f"ns{i}", n=5) for i in range(4))
    listed: list[str] = []
    real: Callable[..., list[Any]] = store.ls

    def counting_ls(prefix: str = "", **kw: Any) -> list[Any]:
        listed.append(prefix)
        return real(prefix, **kw)

    monkeypatch.setattr(store, "ls", counting_ls)
    monkeypatch.setattr(store, "exists", lambda key: pytest.fail(f"HEAD of {key}"))
    commit.check_files(store, INDEX, ms)
    assert sorted(p for p in listed if p.endswith("/data")) == sorted(
        layout.data_prefix(INDEX, f"ns{i}") for i in range(4)
    )


# ------------------------------------------------------------- format


def test_import_commit_writes_the_golden_bytes() -> None:
    """The golden import manifest replayed through commit.apply is written
    byte for byte as stored (version 1, the import id, the same JSON)."""
    golden = Store(str(GOLDEN))
    key = layout.manifest_key("golden", "docs", 1)
    raw = golden.read_bytes(key)
    m = Manifest.model_validate_json(raw)
    assert m.import_id is not None
    target = Store(f"memory://test-commit-golden-{uuid.uuid4().hex}")
    try:
        prefix = layout.namespace_prefix("golden", "docs")
        for rel in m.files():
            target.write_bytes(f"{prefix}/{rel}", golden.read_bytes(f"{prefix}/{rel}"))
        change = CreateNamespaces(
            import_id=m.import_id, manifests=(m.model_copy(update={"version": 7}),)
        )
        commit.apply(target, "golden", change)
        assert target.read_bytes(key) == raw
    finally:
        with contextlib.suppress(Exception):
            target.fs.rm(target.root, recursive=True)


def test_delete_writes_above_the_visible_state_not_the_highest_version(store: Store) -> None:
    """The one rule: an invisible manifest further up (version 3, its import
    never marked) does not move the tombstone, which takes version 2."""
    create(store, "imp1", "a")
    manifests.commit(store, staged(store, "a", version=3, import_id="stale"))
    tomb = delete(store, "a")
    assert (tomb.version, tomb.parent_version) == (2, 1)
    assert manifests.manifest_versions(store, INDEX, "a") == [2, 3]
    assert manifests.load_namespace(store, INDEX, "a") is None


# ------------------------------------------------------ log positions (LSN)


def _log(store: Store, ns: str, *lsns: int) -> None:
    from vecstore import wal

    for lsn in lsns:
        store.write_bytes(wal.entry_key(INDEX, ns, lsn), b"entry")


def test_delete_records_the_log_end_and_removes_the_log(store: Store) -> None:
    from vecstore import wal

    create(store, "imp1", "a")
    _log(store, "a", 1, 2, 3)
    tomb = delete(store, "a")
    assert (tomb.deleted, tomb.applied_lsn, tomb.format_version) == (True, 3, 2)
    assert wal.list_lsns(store, INDEX, "a") == []
    again = create(store, "imp2", "a").manifests["a"]
    assert (again.applied_lsn, again.format_version) == (3, 2)
    # a log written after the delete (e.g. a late writer) is honoured too
    delete(store, "a")
    _log(store, "a", 7)
    assert create(store, "imp3", "a").manifests["a"].applied_lsn == 7


def test_namespaces_without_a_log_stay_format_1(store: Store) -> None:
    m = create(store, "imp1", "a").manifests["a"]
    assert (m.applied_lsn, m.format_version) == (None, 1)
    tomb = delete(store, "a")
    assert (tomb.applied_lsn, tomb.format_version) == (None, 1)
    assert "applied_lsn" not in tomb.model_dump_json()


def test_apply_log_writes_its_lsn_and_refuses_going_back(store: Store) -> None:
    first = commit.apply(
        store,
        INDEX,
        ApplyLog(namespace="a", base_version=None, applied_lsn=5, manifest=staged(store, "a")),
    ).manifests["a"]
    assert (first.applied_lsn, first.format_version) == (5, 2)
    back = ApplyLog(namespace="a", base_version=1, applied_lsn=4, manifest=staged(store, "a"))
    with pytest.raises(ValueError, match="below the base"):
        commit.apply(store, INDEX, back)
