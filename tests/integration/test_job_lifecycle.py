"""The job lifecycle on a real Dask cluster and a real local store (issue 10
"jobs that always finish", issue 9 item 4): the heartbeat thread, a store
that refuses writes for a while, recovery after the commit point, ABORT
failures that imported nothing, and no Dask tracebacks for user errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datagen import (
    NOTHING_LEFT,
    VENV_BIN,
    dense_import,
    dense_table,
    index_dir,
    leftovers,
    run_import,
    vectors,
    wait_until,
    write,
)

from vecstore.api import Index

pytestmark = pytest.mark.dask

DIM = 32


def test_heartbeat_is_fresh_throughout_an_import(
    make_index: Callable[..., Index], src: Path
) -> None:
    """The heartbeat is written by its own thread every second: never older
    than a few seconds while the job runs, whatever phase the driver is in."""
    dense_import(src, {"a": 120_000, "b": 120_000}, dim=DIM, files=4, row_group_size=10_000)
    index = make_index(dimension=DIM)
    op = index.start_import(uri=str(src))
    worst = 0.0
    while not (job := index.jobs.get(op.id)).done:
        if job.heartbeat_at is not None and job.status == "InProgress":
            worst = max(worst, (datetime.now(UTC) - job.heartbeat_at).total_seconds())
        time.sleep(0.1)
    assert job.status == "Completed", job
    assert worst < 3.0, f"heartbeat {worst:.1f} s old during the import"


def _set_immutable(root: Path, on: bool) -> None:
    """chattr +i / -i on every directory under ``root``: as root, chmod would
    not stop writes; an immutable directory refuses new, renamed and deleted
    entries (the store's writes are write-temp-then-rename)."""
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    flag = "+i" if on else "-i"
    subprocess.run(["chattr", flag, *map(str, dirs)], check=True)


@pytest.fixture
def frozen_dirs() -> Iterator[list[Path]]:
    roots: list[Path] = []
    yield roots
    for r in roots:  # never leave an immutable tree behind
        with contextlib.suppress(Exception):
            _set_immutable(r, False)


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_store_unwritable_for_a_while_then_writable(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    dask_runner: Any,
    frozen_dirs: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index folder refuses every write for 8 s mid-import: the driver
    (in this still-running process) retries its record and cleanup with
    backoff and, once the store is back, ends the job Failed cleanly (or
    Completed); its thread ends; nothing is left behind."""
    probe = store_root.parent / "chattr-probe"
    probe.mkdir()
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "60")  # nobody takes it over meanwhile
    dense_import(src, {"a": 120_000, "b": 120_000}, dim=DIM, files=4, row_group_size=10_000)
    index = make_index(dimension=DIM)
    op = index.start_import(uri=str(src))
    wait_until(lambda: index.jobs.get(op.id).phase == "scan", timeout=120, what="the scan")
    root = index_dir(store_root, index.name)
    frozen_dirs.append(root)
    _set_immutable(root, True)
    try:
        time.sleep(8)
        during = index.jobs.get(op.id)
        assert not during.done, during  # it could not have written a final record
        assert op.id in dask_runner.running()  # the driver did not die
    finally:
        _set_immutable(root, False)
    job = index.wait_for_import(op.id, timeout=120)
    assert job.status in ("Failed", "Completed"), job
    if job.status == "Failed":
        assert job.records_imported == 0 and job.error
        assert "Traceback" not in job.error
        assert leftovers(store_root, index.name, op.id) == NOTHING_LEFT
    wait_until(lambda: op.id not in dask_runner.running(), timeout=60, what="the driver to end")
    assert index.describe_import(op.id) == job


def test_recovery_after_the_commit_point_leaves_final_namespace_statuses(
    make_index: Callable[..., Index], src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner that died between the commit marker and its Completed record
    leaves an InProgress job; the next describe_import completes it with each
    namespace Committed, the counts the store shows, and not the dead runner's
    name (issue 10 item 4)."""
    dense_import(src, {"a": 300, "b": 200}, dim=8)
    index = make_index()
    done = run_import(index, src)
    assert done.status == "Completed"
    old = datetime.now(UTC) - timedelta(minutes=5)
    dead = "dead-host:1:1"
    died = done.model_copy(
        update={
            "status": "InProgress", "phase": "commit", "percent_complete": 97.0,
            "finished_at": None, "heartbeat_at": old, "runner": dead, "records_imported": 0,
            "namespaces": {
                ns: p.model_copy(update={"status": "InProgress", "records_imported": 0})
                for ns, p in done.namespaces.items()
            },
        }
    )
    index.jobs.save(died)
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
    job = index.describe_import(done.id)
    assert (job.status, job.percent_complete, job.records_imported) == ("Completed", 100.0, 500)
    assert job.runner != dead and job.runner is not None
    assert {ns: (p.status, p.records_imported) for ns, p in job.namespaces.items()} == {
        "a": ("Committed", 300), "b": ("Committed", 200)
    }
    assert index.describe_import(done.id) == job  # final: never touched again


def _bad_record_import(src: Path) -> None:
    """Namespace "a": 500 good rows then one NaN vector; "b": 300 good rows."""
    vals = vectors(501, 8)
    vals[500, 2] = np.nan
    write(src / "a" / "part-0.parquet", dense_table([f"a-{i}" for i in range(501)], vals))
    write(src / "b" / "part-0.parquet", dense_table([f"b-{i}" for i in range(300)], vectors(300, 8)))


def test_failed_abort_import_reports_nothing_imported(
    make_index: Callable[..., Index], src: Path, store_root: Path
) -> None:
    """issue 10 item 10: a job that did not commit imported 0."""
    _bad_record_import(src)
    index = make_index()
    job = run_import(index, src, error_mode="abort")
    assert job.status == "Failed" and "NaN" in (job.error or ""), job
    assert job.records_imported == 0, job
    assert all(p.records_imported == 0 for p in job.namespaces.values()), job.namespaces
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT


API_SCRIPT = """
import sys

from vecstore import VecStore
from vecstore.runners import close_runners


def main() -> None:
    store, src = sys.argv[1:3]
    vs = VecStore(store)
    vs.create_index(name="docs", dimension=8)
    idx = vs.Index("docs")
    try:
        job = idx.wait_for_import(idx.start_import(uri=src, error_mode="abort").id, timeout=120)
        print(job.status)
        print(job.error)
    finally:
        close_runners()


if __name__ == "__main__":
    main()
"""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_record_error_prints_no_traceback(tmp_path: Path, src: Path) -> None:
    """issue 10 item 13: an ordinary record error is the job's error, not a
    crash: no Dask "Compute Failed ... Traceback" on stderr, from the API
    (its own LocalCluster in a child process) or from `vecstore import --wait`."""
    _bad_record_import(src)
    script = tmp_path / "api_import.py"
    script.write_text(API_SCRIPT)
    api = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store-api"), str(src)],
        capture_output=True, text=True, timeout=300, env=_clean_env(), check=False,
    )
    assert api.returncode == 0, api.stderr
    assert api.stdout.splitlines()[0] == "Failed" and "NaN" in api.stdout, api.stdout
    for word in ("Traceback", "Compute Failed"):
        assert word not in api.stderr, api.stderr

    cli = str(VENV_BIN / "vecstore")
    store = str(tmp_path / "store-cli")
    made = subprocess.run(
        [cli, "indexes", "create", "docs", "--dimension", "8", "--store", store],
        capture_output=True, text=True, timeout=120, env=_clean_env(), check=False,
    )
    assert made.returncode == 0, made.stderr
    r = subprocess.run(
        [cli, "import", str(src), "--index", "docs", "--wait", "--error-mode", "abort",
         "--no-progress", "--store", store],
        capture_output=True, text=True, timeout=300, env=_clean_env(), check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NaN" in r.stdout + r.stderr
    for word in ("Traceback", "Compute Failed"):
        assert word not in r.stderr, r.stderr
