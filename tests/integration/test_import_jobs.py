"""Import jobs on a real Dask cluster (DESIGN "Jobs"): progress observed by
polling, pagination newest first, cancellation mid-import and on finished jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from datagen import (
    NOTHING_LEFT,
    dense_import,
    files_under,
    index_dir,
    leftovers,
    run_import,
    wait_until,
)

from vecstore.api import Index
from vecstore.errors import InvalidArgumentError, NotFoundError
from vecstore.schemas import ImportJob

pytestmark = pytest.mark.dask

# the driver's phases in order (pipelines/driver.py), then the final ones
PHASES = ["pending", "discover", "inspect", "train", "scan", "dedup", "write", "commit", "done"]


def poll(index: Index, job_id: str, timeout: float = 120.0) -> list[tuple[ImportJob, dict[str, int]]]:
    """Every distinct job record seen until it is final, with the visible namespaces."""
    seen: list[tuple[ImportJob, dict[str, int]]] = []
    deadline = time.monotonic() + timeout
    while True:
        job = index.describe_import(job_id)
        visible = {n.name: n.record_count for n in index.list_namespaces()}
        if not seen or seen[-1][0] != job or seen[-1][1] != visible:
            seen.append((job, visible))
        if job.done:
            return seen
        assert time.monotonic() < deadline, f"import still {job.status} after {timeout} s"
        time.sleep(0.1)  # the driver thread shares this process (and its GIL)


def test_progress_is_monotone_and_complete(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """200k x 64-d in 8 files, two namespaces: percent_complete goes 0 -> 100
    without going down, phases advance in order, per-namespace counters grow,
    and the namespaces become visible together, complete."""
    rows = {"a": 100_000, "b": 100_000}
    dense_import(src, rows, dim=64, files=4, row_group_size=10_000)
    index = make_index(dimension=64)
    op = index.start_import(uri=str(src))
    seen = poll(index, op.id)
    jobs = [j for j, _ in seen]
    final = jobs[-1]
    assert (final.status, final.error) == ("Completed", None), final
    assert final.percent_complete == 100.0 and final.records_imported == 200_000
    assert final.records_skipped == {} and final.bytes_read == final.bytes_total > 0
    assert final.finished_at is not None and final.finished_at >= final.created_at
    # percent: starts at 0, never goes down, below 100 until Completed
    pct = [j.percent_complete for j in jobs]
    assert pct[0] == 0.0
    assert all(a <= b for a, b in zip(pct, pct[1:], strict=False)), pct
    assert all(j.percent_complete < 100 for j in jobs if j.status != "Completed")
    assert len({p for p in pct if 0 < p < 100}) >= 3, f"too few progress steps: {pct}"
    # status and phases advance in order; the long phases are seen
    statuses = [j.status for j in jobs]
    assert statuses[-1] == "Completed" and "InProgress" in statuses
    order = [PHASES.index(j.phase) for j in jobs]
    assert order == sorted(order), [j.phase for j in jobs]
    # every phase is recorded when it starts; the long ones cannot be missed by the poll
    assert {"train", "scan", "write", "done"} <= {j.phase for j in jobs}, [j.phase for j in jobs]
    # records and bytes grow, per namespace too
    for attr in ("records_imported", "bytes_read"):
        values = [getattr(j, attr) for j in jobs]
        assert values == sorted(values), (attr, values)
    for ns, n in rows.items():
        read = [j.namespaces[ns].records_read for j in jobs if ns in j.namespaces]
        assert read == sorted(read) and read[-1] == n
        p = final.namespaces[ns]
        assert (p.files, p.records_imported, p.records_skipped, p.status) == (4, n, 0, "Committed")
        assert p.bytes_read == p.bytes_total == sum(
            f.stat().st_size for f in (src / ns).iterdir()
        )
    assert any(0 < j.namespaces["a"].records_read < rows["a"] for j in jobs if "a" in j.namespaces) or (
        # a coarse poll may miss the partial state; then the scan phase was at least seen
        "scan" in {j.phase for j in jobs}
    )
    # visibility: nothing, then both namespaces complete at once
    for _, visible in seen:
        assert visible in ({}, rows), visible
    assert seen[-1][1] == rows
    assert leftovers(store_root, index.name, op.id)["staging"] == []


def test_list_imports_newest_first_with_pagination(
    make_index: Callable[..., Index], tmp_path: Path
) -> None:
    index = make_index()
    ids = []
    for i in range(6):
        d = tmp_path / f"import{i}"
        if i % 3 == 2:
            d.mkdir()  # fails: no Parquet files
        else:
            dense_import(d, {f"ns{i}": 20}, dim=8)
        job = run_import(index, d)
        assert job.status == ("Failed" if i % 3 == 2 else "Completed")
        ids.append(job.id)
    newest_first = ids[::-1]
    assert newest_first == sorted(ids, reverse=True)
    assert [j.id for j in index.list_imports()] == newest_first
    assert [j.id for j in index.list_imports(limit=4)] == newest_first
    for limit in (1, 2, 3, 4, 5, 6, 7, 100):
        pages, token = [], None
        while True:
            page = index.list_imports_paginated(limit=limit, pagination_token=token)
            assert page.data, f"empty page (limit {limit}, token {token!r})"
            pages.append([j.id for j in page.data])
            if page.pagination is None:
                break
            token = page.pagination.next
            assert token
        assert [i for p in pages for i in p] == newest_first
        assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
    created = [j.created_at for j in index.list_imports()]
    assert created == sorted(created, reverse=True)
    for bad in (0, 101, -1):
        with pytest.raises(InvalidArgumentError):
            index.list_imports_paginated(limit=bad)
    with pytest.raises(InvalidArgumentError):
        index.list_imports_paginated(limit=2, pagination_token="not a token!")


@pytest.mark.slow
def test_cancel_mid_import_stops_promptly_and_leaves_nothing(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """400k x 64-d: cancel once the scan runs; Cancelled within 10 s, nothing
    visible, no manifests, data or staging files, also a while later (no task
    keeps writing after the cancel)."""
    dense_import(src, {"a": 200_000, "b": 200_000}, dim=64, files=4, row_group_size=10_000)
    index = make_index(dimension=64)
    op = index.start_import(uri=str(src))
    wait_until(
        lambda: index.describe_import(op.id).phase in ("scan", "dedup", "write", "commit", "done"),
        timeout=90, what="the scan phase",
    )
    job = index.describe_import(op.id)
    assert job.phase == "scan", f"too late to cancel in the scan: {job.phase}"
    t0 = time.monotonic()
    returned = index.cancel_import(op.id)
    assert returned.status in ("InProgress", "Cancelled")
    assert returned.cancel_requested
    job = wait_until(
        lambda: (j := index.describe_import(op.id)).done and j, timeout=10, interval=0.02,
        what="Cancelled",
    )
    elapsed = time.monotonic() - t0
    assert job.status == "Cancelled", job
    print(f"cancelled {elapsed:.2f} s after the cancel call")
    assert elapsed < 10
    assert job.finished_at is not None and job.error is None
    assert job.percent_complete < 100
    assert index.list_namespaces() == []
    assert index.describe_index_stats().total_vector_count == 0
    assert leftovers(store_root, index.name, op.id) == NOTHING_LEFT
    time.sleep(1.5)  # a task that ignored the cancel would write more by now
    assert leftovers(store_root, index.name, op.id) == NOTHING_LEFT
    assert index.describe_import(op.id).status == "Cancelled"
    # the cancelled import's namespaces can be imported afterwards
    small = src.parent / "again"
    dense_import(small, {"a": 100}, dim=64)
    again = run_import(index, small)
    assert again.status == "Completed", again
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("a", 100)]


def test_cancel_finished_imports_is_a_noop(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    index = make_index()
    dense_import(src, {"a": 50}, dim=8)
    done = run_import(index, src)
    assert done.status == "Completed"
    before = files_under(index_dir(store_root, index.name) / "namespaces")
    after = index.cancel_import(done.id)
    assert after == done
    assert index.describe_import(done.id) == done
    assert files_under(index_dir(store_root, index.name) / "namespaces") == before
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("a", 50)]
    failed = run_import(index, src)  # namespace exists
    assert failed.status == "Failed"
    assert index.cancel_import(failed.id) == failed
    assert index.describe_import(failed.id) == failed
    with pytest.raises(NotFoundError):
        index.cancel_import("0000000000000000deadbeef")


@pytest.mark.slow
def test_cancel_in_train_and_write_phases(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """Cancel while k-means trains, then (same data, a new import) while segment
    files are being written: Cancelled promptly, nothing left either time."""
    dense_import(src, {"a": 200_000, "b": 200_000}, dim=64, files=4, row_group_size=10_000)
    index = make_index(dimension=64)
    for phase in ("train", "write"):
        op = index.start_import(uri=str(src))
        job = wait_until(
            lambda op=op, phase=phase: (j := index.describe_import(op.id)).phase in (phase, "done")
            and j,
            timeout=120, interval=0.01, what=f"the {phase} phase",
        )
        if job.phase != phase:
            pytest.fail(f"the {phase} phase went by unseen")
        t0 = time.monotonic()
        index.cancel_import(op.id)
        job = index.wait_for_import(op.id, timeout=30)
        assert job.status == "Cancelled", (phase, job)
        assert time.monotonic() - t0 < 10
        time.sleep(1.0)
        assert leftovers(store_root, index.name, op.id) == NOTHING_LEFT, phase
        assert index.list_namespaces() == []


def test_recover_a_pending_job_whose_process_died_before_running_it(
    make_index: Callable[..., Index], store_root: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job record written by a process that died before its runner started
    (Pending, no runner, no heartbeat) is resumed by recover_imports once it is
    older than VECSTORE_STALE_SECONDS, and completes."""
    from datetime import UTC, datetime, timedelta

    from vecstore.jobs import JobStore, new_job_id

    dense_import(src, {"a": 500}, dim=8)
    index = make_index()
    job_id = new_job_id()
    JobStore(index.store, index.name).create(
        ImportJob(
            id=job_id, index=index.name, uri=str(src),
            created_at=datetime.now(UTC) - timedelta(seconds=5),
        )
    )
    assert index.recover_imports() == []  # 5 s old, stale only after 30 s by default
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2")
    assert index.recover_imports() == [job_id]
    job = index.wait_for_import(job_id, timeout=60)
    assert (job.status, job.attempt, job.records_imported) == ("Completed", 2, 500), job
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("a", 500)]
