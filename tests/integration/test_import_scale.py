"""Imports of many small namespaces and many small files (issue 9) on a real
Dask cluster: packed tasks import every namespace exactly as the unpacked
path does, scan tasks carry their chunks only, and the running job record
does not grow with the number of namespaces."""

from __future__ import annotations

import gc
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from datagen import dense_table, ids_of, load_namespace_data, read_rejects, run_import, write
from distributed import Client

from vecstore.api import Index
from vecstore.jobs.store import JobStore
from vecstore.pipelines import driver as D
from vecstore.schemas import Job

pytestmark = pytest.mark.dask

DIM = 4


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """(task function name, pickled size of its arguments) of every task submitted."""
    calls: list[tuple[str, int]] = []
    real = Client.submit

    def spy(self: Client, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        plain = [a for a in args if type(a).__name__ != "Future"]
        calls.append((func.__name__, len(pickle.dumps(plain))))
        return real(self, func, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", spy)
    yield calls


def _small_namespaces(src: Path, n: int, per: int) -> dict[str, tuple[list[str], np.ndarray]]:
    """``n`` namespaces of ``per`` records: t0003, t0010... (i % 7 == 3)
    repeat an id (their last record), t0005, t0016... (i % 11 == 5) have a
    NaN vector (their third record)."""
    rng = np.random.default_rng(3)
    out = {}
    for i in range(n):
        ns = f"t{i:04d}"
        ids = [f"{ns}-r{j}" for j in range(per)]
        vals = rng.normal(size=(per, DIM)).astype(np.float32)
        if i % 7 == 3:
            ids[-1] = ids[0]
        if i % 11 == 5:
            vals[2, 1] = np.nan
        write(src / ns / "0.parquet", dense_table(ids, vals))
        out[ns] = (ids, vals)
    return out


def _expected(i: int, ids: list[str]) -> list[str]:
    keep = list(range(len(ids)))
    if i % 11 == 5:
        keep.remove(2)
    if i % 7 == 3:
        keep.remove(len(ids) - 1)
    return sorted(ids[j] for j in keep)


def test_many_small_namespaces_are_packed(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    submitted: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved: list[tuple[bool, int]] = []
    real_save = JobStore.save

    def save(self: JobStore, job: Job) -> None:
        saved.append((job.done, len(job.model_dump_json())))
        real_save(self, job)

    monkeypatch.setattr(JobStore, "save", save)
    commits_seen: list[tuple[int, int]] = []  # (manifests the driver wrote, prepared by tasks)
    real_apply = D.commits.apply

    def apply(store: Any, index: str, change: Any, **kw: Any) -> Any:
        commits_seen.append((len(change.manifests), len(kw.get("prepared", ()))))
        return real_apply(store, index, change, **kw)

    monkeypatch.setattr(D.commits, "apply", apply)
    index = make_index(dimension=DIM)
    data = _small_namespaces(src, 300, 5)
    frozen: list[int] = []
    real_take = D.ImportDriver._take_packed

    def take(self: D.ImportDriver, *a: Any) -> None:
        real_take(self, *a)
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(D.ImportDriver, "_take_packed", take)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    # the driver kept its long-lived objects from the cyclic collector while
    # it ran (D._freeze_heap), and left nothing frozen
    assert frozen and max(frozen) > 0 and gc.get_freeze_count() == 0
    # every packed namespace's manifest was written by its pack task (invisible
    # until the marker); the driver wrote none
    assert commits_seen == [(0, 300)]
    expected = {ns: _expected(i, ids) for i, (ns, (ids, _)) in enumerate(data.items())}
    assert job.records_imported == sum(len(v) for v in expected.values())
    assert job.records_skipped == {"duplicate_id": 43, "non_finite": 27}
    for ns, ids in expected.items():
        assert ids_of(store_root, "docs", ns) == ids
    # exact vectors, and the namespace is queryable
    ids0, vals0 = data["t0001"]
    got = index.fetch(ids0, namespace="t0001").vectors
    for j, rid in enumerate(ids0):
        assert np.array_equal(np.asarray(got[rid].values, np.float32), vals0[j])
    res = index.query(vector=vals0[3].tolist(), top_k=1, namespace="t0001")
    assert res.matches[0].id == ids0[3]
    m, _, cents = load_namespace_data(store_root, "docs", "t0001")
    # one cluster: no centroids file (docs/scale.md "One-cluster namespaces")
    assert cents is None and m.centroids is None and m.import_id == job.id
    assert [c.row_count for c in m.clusters] == [len(ids0)]
    # rejects per namespace, the duplicate naming its first occurrence
    rejects = read_rejects(str(job.rejects_uri))
    by_ns = Counter((r["namespace"], r["code"]) for r in rejects)
    assert by_ns[("t0010", "duplicate_id")] == 1 and by_ns[("t0016", "non_finite")] == 1
    assert by_ns[("t0038", "duplicate_id")] == 1 and by_ns[("t0038", "non_finite")] == 1
    assert len(by_ns) == 43 + 27 and ("t0001", "duplicate_id") not in by_ns
    dup = next(r for r in rejects if r["namespace"] == "t0010")
    assert dup["row"] == 4 and f"{src}/t0010/0.parquet" in dup["message"]
    # packed: a handful of tasks, not ~6 per namespace; tiny by their listing,
    # they are inspected by the tasks that import them (tasks.fold)
    kinds = Counter(name for name, _ in submitted)
    assert kinds["fold"] == 2, kinds
    assert not {"inspect_many", "pack", "scan_unit", "train", "dedup", "gather",
                "sample_unit"} & set(kinds), kinds
    # the running record stays small; the final one has every namespace
    running = [size for done, size in saved if not done]
    assert running and max(running) < 4000, max(running)
    assert len(job.namespaces) == 300
    assert all(p.status == "Committed" for p in job.namespaces.values())
    assert job.namespaces["t0010"].records_imported == 4


@pytest.mark.parametrize("mode", ["continue", "abort"])
def test_packed_equals_unpacked(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    """The same import, packed and not: the same records, rejects and error
    (ABORT: the bad record of t0005 wins over the earlier duplicate of t0003,
    record errors being checked before duplicates)."""
    data = _small_namespaces(src, 40, 6)
    outcomes: list[tuple[Any, ...]] = []
    for pack in ("50000", "0"):
        monkeypatch.setenv("VECSTORE_PACK_ROWS", pack)
        index = make_index(name=f"p{pack}", dimension=DIM)
        job = run_import(index, src, mode)
        if job.status == "Completed":
            ids = {ns: ids_of(store_root, f"p{pack}", ns) for ns in data}
            cents = {ns: load_namespace_data(store_root, f"p{pack}", ns)[2] for ns in data}
            # same centroids too: none, one cluster (docs/scale.md "One-cluster namespaces")
            assert all(c is None for c in cents.values())
            ids = {ns: (v, cents[ns]) for ns, v in ids.items()}
            rejects = read_rejects(str(job.rejects_uri))
            outcomes.append((job.status, job.records_imported, job.records_skipped, ids, rejects))
        else:
            outcomes.append((job.status, job.error))
    assert outcomes[0] == outcomes[1]
    if mode == "abort":
        assert outcomes[0][0] == "Failed"
        assert str(outcomes[0][1]).startswith(f'error reading record (file "{src}/t0005/0.parquet", row 2)')


def test_many_small_files_bounded_task_payload(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    submitted: list[tuple[str, int]],
) -> None:
    index = make_index(dimension=DIM)
    rng = np.random.default_rng(5)
    files = 2000
    for f in range(files):
        ids = [f"f{f}-{j}" for j in range(3)]
        write(src / "big" / f"part-{f:05d}.parquet", dense_table(ids, rng.normal(size=(3, DIM))))
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert job.records_imported == 3 * files
    assert len(ids_of(store_root, "docs", "big")) == 3 * files
    scans = [size for name, size in submitted if name == "scan_unit"]
    # 2,000 files: about 8 scan tasks (UNIT_SPLIT) of at most 256 files, each
    # carrying its chunks only
    assert 8 <= len(scans) <= 16
    assert max(scans) < 64_000, max(scans)
    assert max(size for name, size in submitted if name == "inspect_many") < 64_000


def test_detail_threshold_is_what_the_driver_uses() -> None:
    assert D.NS_DETAIL_MAX == 100


def test_folded_inspected_and_unpackable_namespaces_in_one_import(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    submitted: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Namespaces tiny by their listing are inspected by their fold task; one
    whose plan is then too big to pack (here: over VECSTORE_PACK_ROWS) goes
    the unpacked way; a namespace too big for folding is inspected as
    before. Every record lands either way."""
    from vecstore.pipelines import plan as P

    monkeypatch.setenv("VECSTORE_PACK_ROWS", "6")
    index = make_index(dimension=DIM)
    rng = np.random.default_rng(4)
    expected: dict[str, list[str]] = {}
    for i in range(20):
        ns = f"t{i:02d}"
        n = 8 if i % 5 == 0 else 5  # t00, t05...: more rows than VECSTORE_PACK_ROWS
        ids = [f"{ns}-{j}" for j in range(n)]
        write(src / ns / "0.parquet", dense_table(ids, rng.normal(size=(n, DIM))))
        expected[ns] = sorted(ids)
    big = [f"big-{j:06d}" for j in range(P.FOLD_NS_BYTES // 16)]  # over FOLD_NS_BYTES as listed
    write(src / "zz" / "0.parquet", dense_table(big, rng.normal(size=(len(big), DIM))))
    assert (src / "zz" / "0.parquet").stat().st_size > P.FOLD_NS_BYTES
    expected["zz"] = sorted(big)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert job.records_imported == sum(len(v) for v in expected.values())
    for ns, ids in expected.items():
        assert ids_of(store_root, "docs", ns) == ids, ns
    kinds = Counter(name for name, _ in submitted)
    assert kinds["fold"] == 1 and kinds["inspect_many"] == 1, kinds  # zz alone is inspected
    assert kinds["scan_unit"] >= 5 and "pack" not in kinds, kinds  # t00, t05, t10, t15, zz
    assert all(p.records_imported == len(expected[ns]) for ns, p in job.namespaces.items())


def test_fold_tasks_carry_no_credentials(
    make_index: Callable[..., Index], src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold task carries the driver's planning settings to the workers:
    never the inline integrations (credentials) among them."""
    monkeypatch.setenv("VECSTORE_INTEGRATIONS",
                       '{"integrations": {"x": {"secret": "hunter2-not-shipped"}}}')
    shipped: list[bytes] = []
    folds: list[Any] = []
    real = Client.submit

    def spy(self: Client, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        shipped.append(pickle.dumps([a for a in args if type(a).__name__ != "Future"]))
        if func.__name__ == "fold":
            folds.append(args[1])
        return real(self, func, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", spy)
    index = make_index(dimension=DIM)
    _small_namespaces(src, 20, 4)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert shipped and not [b for b in shipped if b"hunter2-not-shipped" in b]
    # the fold groups' settings did travel (inside their Shipped bytes), without it
    from vecstore.pipelines import plan as P

    groups = [P.unship(f) for f in folds]
    assert groups and all(g.knobs.integrations is None for g in groups)
    assert all(g.knobs.pack_rows == P.pack_rows() for g in groups)


def test_a_bad_file_in_a_folded_namespace_fails_the_import_as_inspection_does(
    make_index: Callable[..., Index], store_root: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema error met by a fold task: the import fails with the message
    the inspection phase gives (folding off: VECSTORE_PACK_ROWS=0), nothing
    is visible, and the other namespaces' files written meanwhile are gone."""
    from vecstore import layout

    _small_namespaces(src, 300, 4)  # two fold groups: the first may import meanwhile
    bad = src / "t0280" / "0.parquet"
    write(bad, pa.table({"id": pa.array(["x"]), "vals": pa.array([[1.0] * DIM])}))
    errors = []
    for pack in ("50000", "0"):
        monkeypatch.setenv("VECSTORE_PACK_ROWS", pack)
        index = make_index(name=f"p{pack}", dimension=DIM)
        job = run_import(index, src)
        assert job.status == "Failed"
        errors.append(job.error)
        assert list(index.list_namespaces()) == []
        left = [p for p in (store_root / layout.namespaces_prefix(f"p{pack}")).rglob("*")
                if p.is_file()] if (store_root / layout.namespaces_prefix(f"p{pack}")).exists() else []
        assert left == [], left[:3]
    assert errors[0] == errors[1]
    assert f'file "{bad}"' in str(errors[0]) and "values" in str(errors[0])


def test_write_to_a_namespace_an_import_is_creating_is_refused(
    make_index: Callable[..., Index], store_root: Path, src: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A packed namespace's manifest is written by its pack task, so from
    then on a write to it is refused with a clear message (it is being
    created by an import; before, it was accepted and the whole import then
    failed at its commit); the import completes with its own records."""
    data = _small_namespaces(src, 20, 5)
    index = make_index(dimension=DIM)
    refused: list[str] = []
    real = D.ImportDriver._commit

    def racing(self: D.ImportDriver, *args: Any) -> Any:
        try:
            index.upsert([("late", [0.5] * DIM)], namespace="t0003")
        except Exception as exc:  # noqa: BLE001 - the refusal is what this test looks at
            refused.append(f"{type(exc).__name__}: {exc}")
        return real(self, *args)

    monkeypatch.setattr(D.ImportDriver, "_commit", racing)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert refused == [
        'AlreadyExistsError: Namespace "t0003" of index "docs" is being created by an '
        "import; write to it once the import has finished"
    ]
    assert ids_of(store_root, "docs", "t0003") == _expected(3, data["t0003"][0])
    index.upsert([("late", [0.5] * DIM)], namespace="t0003")  # once it finished: accepted
    assert index.fetch(["late"], namespace="t0003").vectors["late"].id == "late"


def test_tiny_namespaces_keep_their_id_lookup_in_the_segment(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """A one-cluster namespace of at most SMALL_TABLE_ROWS records writes no
    id file: its manifest's id_files names its segment (docs/scale.md "Id
    lookups kept in the segment"). Fetch, list, update, delete, a build and
    a vacuum read it as an id file; a larger namespace still gets one."""
    from vecstore import layout
    from vecstore.segments import SMALL_TABLE_ROWS

    index = make_index(dimension=DIM)
    data = _small_namespaces(src, 12, 8)
    rng = np.random.default_rng(9)
    big = [f"b{j:05d}" for j in range(SMALL_TABLE_ROWS + 1)]
    write(src / "big" / "0.parquet", dense_table(big, rng.normal(size=(len(big), DIM))))
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    m, _, _ = load_namespace_data(store_root, "docs", "t0001")
    assert m.id_files == [m.clusters[0].segment]
    data_dir = store_root / layout.data_prefix("docs", "t0001")
    assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".ids.parquet")]
    mb, _, _ = load_namespace_data(store_root, "docs", "big")
    seg_of_big = {c.segment for c in mb.clusters}
    assert mb.id_files and not set(mb.id_files) & seg_of_big
    assert index.list_paginated(namespace="big", limit=3).vectors[0].id == "b00000"

    ids, vals = data["t0001"]  # t0001: 8 records, none rejected
    assert sorted(v.id for v in index.list_paginated(namespace="t0001").vectors) == sorted(ids)
    page = index.list_paginated(namespace="t0001", prefix="t0001-r", limit=3)
    assert [v.id for v in page.vectors] == sorted(ids)[:3] and page.pagination is not None
    got = index.fetch([ids[5], "missing"], namespace="t0001").vectors
    assert list(got) == [ids[5]]
    assert np.array_equal(np.asarray(got[ids[5]].values, np.float32), vals[5])
    res = index.query(id=ids[2], top_k=1, namespace="t0001")
    assert res.matches[0].id == ids[2]
    # writes resolve ids through the segment's lookup, before and after a build
    index.update(id=ids[4], set_metadata={"genre": "x"}, namespace="t0001")
    index.delete(ids=[ids[6]], namespace="t0001")
    index.upsert([("new-1", [0.5] * DIM)], namespace="t0001")
    want = sorted({*ids, "new-1"} - {ids[6]})
    for step in ("tail", "built"):
        if step == "built":
            index.build(namespace="t0001")
            after, _, _ = load_namespace_data(store_root, "docs", "t0001")
            assert after.version > m.version
        assert sorted(v.id for v in index.list_paginated(namespace="t0001").vectors) == want, step
        fetched = index.fetch([ids[4], ids[6], "new-1"], namespace="t0001").vectors
        assert sorted(fetched) == sorted([ids[4], "new-1"]), step
        assert fetched[ids[4]].metadata == {"genre": "x"}, step
        assert np.array_equal(np.asarray(fetched[ids[4]].values, np.float32), vals[4]), step
    assert index.describe_namespace("t0001").record_count == len(want)
    # a vacuum keeps what the visible version reads, the segment among it
    index.vacuum(older_than=0)
    assert sorted(index.fetch(want, namespace="t0001").vectors) == want
    assert sorted(v.id for v in index.list_paginated(namespace="t0002").vectors) == sorted(
        data["t0002"][0]
    )
