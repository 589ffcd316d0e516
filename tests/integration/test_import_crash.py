"""A runner killed with SIGKILL mid-import, then recovery (DESIGN "Jobs": a
job whose runner died is detected by its heartbeat and resumed or failed
cleanly; never left InProgress forever, never half-visible).

The import runs in a child process with its own LocalCluster, started in a
new session so that ``os.killpg`` takes its Dask worker processes down with
it. Recovery runs in this process (``index.recover_imports()``) on the
session cluster, with ``VECSTORE_STALE_SECONDS`` lowered for the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from datagen import (
    NOTHING_LEFT,
    dense_import,
    files_under,
    ids_of,
    index_dir,
    leftovers,
    namespace_dir,
    wait_until,
)

from vecstore import layout, manifests
from vecstore.api import Index
from vecstore.schemas import ImportJob
from vecstore.storage import Store

pytestmark = [pytest.mark.dask, pytest.mark.slow]

DIM = 32
ROWS = {"a": 120_000, "b": 120_000}

RUNNER_SCRIPT = '''
import sys

from vecstore import VecStore
from vecstore.runners import close_runners


def main() -> None:
    store, index, uri = sys.argv[1:4]
    idx = VecStore(store).Index(index)
    op = idx.start_import(uri=uri, error_mode="continue")
    print(op.id, flush=True)
    try:
        idx.wait_for_import(op.id)
    finally:
        close_runners()  # waits for the import's driver thread to end


if __name__ == "__main__":
    main()
'''


def session_members(sid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of session ``sid``."""
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getsid(p.pid) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


def start_runner(
    store_root: Path, index: Index, src: Path, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Any]:
    """The import of ``src`` in a child process (its own session and LocalCluster)."""
    script = tmp_path / "run_import.py"
    script.write_text(RUNNER_SCRIPT)
    log = (tmp_path / "child.log").open("wb")
    env = {**os.environ, "VECSTORE_WORKERS": "2", "PYTHONWARNINGS": "ignore"}
    env.pop("VECSTORE_SCHEDULER", None)
    child = subprocess.Popen(
        [sys.executable, str(script), str(store_root), index.name, str(src)],
        stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True,
    )
    return child, log


@pytest.fixture
def killed_import(
    make_index: Callable[..., Index], store_root: Path, src: Path, tmp_path: Path
) -> Iterator[tuple[Index, str]]:
    """An import started by a child process, killed (whole process group) in its scan."""
    dense_import(src, ROWS, dim=DIM, files=4, row_group_size=10_000)
    index = make_index(dimension=DIM)
    child, log = start_runner(store_root, index, src, tmp_path)
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
        assert job_id, f"the child printed no import id: {(tmp_path / 'child.log').read_text()}"
        staging = Path(store_root) / layout.staging_prefix(index.name, job_id)

        def scanning() -> bool:
            # in the scan, with some chunks' scratch files written (more to clean up)
            phase = index.describe_import(job_id).phase
            return phase not in ("pending", "discover", "inspect", "train") and (
                phase != "scan" or bool(files_under(staging))
            )

        wait_until(scanning, timeout=120, what="the child's import to scan")
        assert index.describe_import(job_id).phase == "scan"
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        # no worker, nanny or other child of the killed runner lingers
        wait_until(lambda: not session_members(child.pid), timeout=10,
                   what="the killed runner's processes to go away")
        yield index, job_id
    finally:
        if child.poll() is None or session_members(child.pid):
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        log.close()


def assert_killed_state(index: Index, job_id: str) -> ImportJob:
    job = index.describe_import(job_id)
    assert job.status == "InProgress" and job.phase == "scan" and job.attempt == 1, job
    assert job.heartbeat_at is not None and job.finished_at is None
    assert index.list_namespaces() == []
    assert index.describe_index_stats().total_vector_count == 0
    return job


def test_killed_runner_is_resumed_and_completes(
    killed_import: tuple[Index, str], store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, job_id = killed_import
    before = assert_killed_state(index, job_id)
    # a fresh heartbeat is not stale: recovery leaves the job alone
    assert index.recover_imports() == []
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
    # the raw record (describe_import would itself take the stale job over)
    wait_until(
        lambda: (time.time() - index.jobs.get(job_id).heartbeat_at.timestamp()) > 1.2,
        timeout=10, what="a stale heartbeat",
    )
    assert index.jobs.get(job_id) == before  # nobody touched it meanwhile
    assert index.recover_imports() == [job_id]
    resumed = index.describe_import(job_id)
    assert resumed.attempt == 2 and resumed.status in ("Pending", "InProgress")
    # a second recovery does not start it twice
    assert index.recover_imports() == []
    # never half-visible while the resumed attempt runs
    while not (job := index.describe_import(job_id)).done:
        visible = {n.name: n.record_count for n in index.list_namespaces()}
        assert visible in ({}, ROWS), visible
        time.sleep(0.1)
    assert (job.status, job.error, job.attempt) == ("Completed", None, 2), job
    assert job.records_imported == sum(ROWS.values()) and job.percent_complete == 100
    assert job.percent_complete >= before.percent_complete
    # exactly the records of a clean run, and no file of the killed attempt left
    store = Store(str(store_root))
    for ns, n in ROWS.items():
        assert ids_of(store_root, index.name, ns) == sorted(f"{ns}-{i}" for i in range(n))
        m = manifests.load_namespace(store, index.name, ns)
        assert m is not None and m.record_count == n
        assert manifests.manifest_versions(store, index.name, ns) == [m.version]
        on_disk = {f for f in files_under(namespace_dir(store_root, index.name, ns)) if f.startswith("data/")}
        assert on_disk == set(m.files()), "orphan data files of the killed attempt"
    assert leftovers(store_root, index.name, job_id)["staging"] == []


def test_killed_runner_out_of_attempts_fails_cleanly(
    killed_import: tuple[Index, str], store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, job_id = killed_import
    before = assert_killed_state(index, job_id)
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
    monkeypatch.setenv("VECSTORE_MAX_ATTEMPTS", "1")
    wait_until(
        lambda: (time.time() - before.heartbeat_at.timestamp()) > 1.2,  # type: ignore[union-attr]
        timeout=10, what="a stale heartbeat",
    )
    assert index.recover_imports() == [job_id]
    job = index.describe_import(job_id)
    assert job.status == "Failed" and job.finished_at is not None
    assert job.error == (
        f"Import runner stopped (no heartbeat since {before.heartbeat_at.isoformat()}) and the "  # type: ignore[union-attr]
        "import was abandoned after 1 attempt(s)"
    )
    assert leftovers(store_root, index.name, job_id) == NOTHING_LEFT
    assert index.list_namespaces() == []
    assert index.recover_imports() == []  # final: never touched again
    assert index.describe_import(job_id) == job


def test_paused_runner_does_not_interfere_after_being_superseded(
    make_index: Callable[..., Index], store_root: Path, src: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runner frozen (SIGSTOP) mid-scan looks dead: recovery resumes its job
    here and completes it. When the frozen runner wakes up (SIGCONT) it must not
    touch the job any more: no record overwrite, no cleanup of the new attempt's
    data, no second commit, no files of its own left behind."""
    dense_import(src, ROWS, dim=DIM, files=4, row_group_size=10_000)
    index = make_index(dimension=DIM)
    child, log = start_runner(store_root, index, src, tmp_path)
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
        staging = Path(store_root) / layout.staging_prefix(index.name, job_id)
        wait_until(
            lambda: index.describe_import(job_id).phase == "scan" and bool(files_under(staging)),
            timeout=120, interval=0.02, what="the child's scan",
        )
        os.killpg(child.pid, signal.SIGSTOP)
        monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
        time.sleep(1.5)
        assert index.recover_imports() == [job_id]
        job = index.wait_for_import(job_id, timeout=120)
        assert (job.status, job.attempt) == ("Completed", 2), job
        os.killpg(child.pid, signal.SIGCONT)
        # the woken runner notices it was superseded, and its wait returns
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(30)
        time.sleep(2)
        after = index.describe_import(job_id)
        assert (after.status, after.attempt, after.records_imported) == (
            "Completed", 2, sum(ROWS.values())
        ), after
        store = Store(str(store_root))
        for ns, n in ROWS.items():
            assert ids_of(store_root, index.name, ns) == sorted(f"{ns}-{i}" for i in range(n))
            m = manifests.load_namespace(store, index.name, ns)
            assert m is not None and manifests.manifest_versions(store, index.name, ns) == [m.version]
            on_disk = {f for f in files_under(namespace_dir(store_root, index.name, ns))
                       if f.startswith("data/")}
            assert on_disk == set(m.files())
        assert files_under(staging) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGCONT)
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        log.close()


# ------------------------------------- jobs that always finish (issue 10)


def _stale_since(index: Index, job_id: str, seconds: float) -> None:
    """Wait (reading the raw record) until the job's heartbeat is ``seconds`` old."""
    wait_until(
        lambda: time.time() - index.jobs.get(job_id).heartbeat_at.timestamp() > seconds,  # type: ignore[union-attr]
        timeout=seconds + 10, what="a stale heartbeat",
    )


def test_wait_alone_fails_a_killed_import_out_of_attempts(
    killed_import: tuple[Index, str], store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing but wait_for_import, from another process, after kill -9: a
    final status within the stale threshold + 30 s (no recover_imports, no start)."""
    index, job_id = killed_import
    killed_at = time.monotonic()
    stale = 3.0
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", str(stale))
    monkeypatch.setenv("VECSTORE_MAX_ATTEMPTS", "1")
    job = index.wait_for_import(job_id, timeout=stale + 30)
    assert time.monotonic() - killed_at < stale + 30
    assert (job.status, job.records_imported) == ("Failed", 0), job
    assert job.error is not None and "Import runner stopped" in job.error
    assert all(p.status == "Failed" for p in job.namespaces.values()), job.namespaces
    assert leftovers(store_root, index.name, job_id) == NOTHING_LEFT


def test_wait_alone_resumes_a_killed_import(
    killed_import: tuple[Index, str], store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With attempts left, the waiting process takes the job over, resumes it
    and waits for it: Completed, exactly once."""
    index, job_id = killed_import
    killed_at = time.monotonic()
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "3")
    job = index.wait_for_import(job_id, timeout=240)
    took = time.monotonic() - killed_at
    assert (job.status, job.attempt, job.error) == ("Completed", 2, None), job
    assert job.records_imported == sum(ROWS.values())
    assert all(p.status == "Committed" for p in job.namespaces.values())
    print(f"killed import resumed and completed by wait_for_import alone in {took:.1f} s")
    store = Store(str(store_root))
    for ns, n in ROWS.items():
        m = manifests.load_namespace(store, index.name, ns)
        assert m is not None and m.record_count == n


def test_cancel_after_kill_cancels_at_once(
    killed_import: tuple[Index, str], store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cancel_import on a job whose runner is dead (stale heartbeat): Cancelled
    at once, after cleanup; no second cancel, no fixed 30 s."""
    index, job_id = killed_import
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2")
    _stale_since(index, job_id, 2.2)
    t0 = time.monotonic()
    job = index.cancel_import(job_id)
    took = time.monotonic() - t0
    assert (job.status, job.records_imported, job.cancel_requested) == ("Cancelled", 0, True), job
    assert took < 10, took
    assert leftovers(store_root, index.name, job_id) == NOTHING_LEFT
    assert index.describe_import(job_id) == job
    assert index.list_namespaces() == []


TINY = {f"t{i:04d}": 5 for i in range(2000)}


def test_killed_after_pack_tasks_prepared_manifests_resumes_exactly_once(
    make_index: Callable[..., Index], store_root: Path, src: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pack tasks write their namespaces' manifests (invisible until the
    marker) while the import runs: a runner killed then leaves manifests of
    an uncommitted import. Nothing is visible; recovery removes them and the
    resumed attempt commits every namespace exactly once, at version 1."""
    dense_import(src, TINY, dim=4)
    index = make_index(dimension=4)
    child, log = start_runner(store_root, index, src, tmp_path)
    nsdir = index_dir(store_root, index.name) / "namespaces"
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
        assert job_id, (tmp_path / "child.log").read_text()

        def prepared() -> bool:
            return any(nsdir.glob("*/_manifests/*.json"))

        wait_until(prepared, timeout=120, interval=0.02, what="a pack task's manifests")
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        wait_until(lambda: not session_members(child.pid), timeout=10,
                   what="the killed runner's processes to go away")
    finally:
        if child.poll() is None or session_members(child.pid):
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        log.close()
    if index.jobs.get(job_id).done:
        pytest.skip("the import committed before the kill (machine too fast for this test)")
    left = sorted(p.parent.parent.name for p in nsdir.glob("*/_manifests/*.json"))
    assert left and index.list_namespaces() == []  # written, not visible
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "3")
    job = index.wait_for_import(job_id, timeout=300)
    assert (job.status, job.attempt, job.error) == ("Completed", 2, None), job
    assert job.records_imported == sum(TINY.values())
    store = Store(str(store_root))
    for ns in (left[0], left[-1], "t0000", "t1999"):
        m = manifests.load_namespace(store, index.name, ns)
        assert m is not None and m.record_count == 5 and m.import_id == job_id
        assert manifests.manifest_versions(store, index.name, ns) == [1]
        on_disk = {f for f in files_under(namespace_dir(store_root, index.name, ns))
                   if f.startswith("data/")}
        assert on_disk == set(m.files()), "orphan data files of the killed attempt"
    assert len(index.list_namespaces()) == len(TINY)
