"""A load's runner killed with SIGKILL at several points, then recovery
(docs/loads-pipeline.md "Recovery"): each record is loaded exactly once,
the namespace gets exactly one log entry for the load, nothing is
half-visible and no file of the killed attempt is left.

Kill points:

- ``scan``: mid-scan, killed from outside (the harness of
  ``test_import_crash.py``): no marker, the load is resumed (attempt 2);
- ``after_marker``: the runner dies right after its commit marker, before
  any staged load is applied (the child replaces the roll-forward with a
  SIGKILL of its own process group): recovery rolls forward;
- ``mid_roll_forward``: it dies after applying the first of two staged
  loads: recovery applies the second and finds the first already applied;
- ``random-N``: killed from outside after a seeded random delay, anywhere
  from discovery to completion (a load that completed first is not
  recovered).

Then the same directory is loaded again: the load history skips every file.
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

import numpy as np
import psutil
import pytest
from datagen import dense_table, files_under, split_write, vectors, wait_until
from test_import_crash import session_members
from test_load import Model, apply_to_model, assert_matches, job_files, run

from vecstore import layout, wal
from vecstore.api import Index
from vecstore.storage import Store

pytestmark = [pytest.mark.dask, pytest.mark.slow]

DIM = 16

CHILD = '''
import json, os, signal, sys, time

from vecstore import VecStore
from vecstore.runners import close_runners


def die(*args, **kwargs):
    os.killpg(os.getpgid(0), signal.SIGKILL)
    time.sleep(5)  # the kill may land a moment later: no step past here


def main() -> None:
    store, index, uri, kill_at = sys.argv[1:5]
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None  # (a store on S3)
    if kill_at == "after_marker":
        import vecstore.pipelines.driver as driver
        driver.roll_forward = die
    elif kill_at == "mid_roll_forward":
        import vecstore.loads as loads
        real = loads.apply
        calls = []

        def apply(*args, **kwargs):
            if calls:
                die()
            calls.append(1)
            return real(*args, **kwargs)

        loads.apply = apply
    idx = VecStore(store, storage_options=options).Index(index)
    op = idx.start_import(uri=uri, error_mode="continue", mode="upsert")
    print(op.id, flush=True)
    try:
        idx.wait_for_import(op.id)
    finally:
        close_runners()


if __name__ == "__main__":
    main()
'''


@contextlib.contextmanager
def child_load(
    store_root: Path, index: Index, uri: Path, kill_at: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    script = tmp_path / "run_load.py"
    script.write_text(CHILD)
    log = (tmp_path / "child.log").open("wb")
    env = {**os.environ, "VECSTORE_WORKERS": "2", "PYTHONWARNINGS": "ignore",
           "VECSTORE_BUILD_IN_BACKGROUND": "0", "VECSTORE_CHUNK_BYTES": str(512 * 1024)}
    env.pop("VECSTORE_SCHEDULER", None)
    child = subprocess.Popen(
        [sys.executable, str(script), str(store_root), index.name, str(uri), kill_at],
        stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True,
    )
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
        assert job_id, (tmp_path / "child.log").read_text()
        yield child, job_id
    finally:
        if child.poll() is None or session_members(child.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        log.close()


@pytest.mark.parametrize(
    "kill_at", ["scan", "after_marker", "mid_roll_forward", "random-1", "random-2", "random-3"]
)
def test_killed_load_is_recovered_and_loads_each_record_once(
    kill_at: str, make_index: Callable[..., Index], store_root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = make_index(dimension=DIM, metric="euclidean")
    model: Model = {}
    for ns, n, seed in (("a", 4000, 1), ("b", 3000, 2)):
        ids = [f"{ns}-{i}" for i in range(n)]
        vals = vectors(n, DIM, seed=seed)
        split_write(tmp_path / "base" / ns, dense_table(ids, vals, None), 2)
        apply_to_model(model, ns, ids, vals, "base")
    base = run(index, tmp_path / "base", mode="create")
    assert base.status == "Completed", base
    model = {ns: {i: (v, None) for i, (v, _) in recs.items()} for ns, recs in model.items()}
    store = Store(str(store_root))
    lsns_before = {ns: wal.list_lsns(store, index.name, ns) for ns in ("a", "b")}

    # the load: overwrites and new ids in both existing namespaces, a new one "c"
    load = tmp_path / "load"
    loaded: dict[str, tuple[list[str], np.ndarray]] = {}
    big = kill_at == "scan" or kill_at.startswith("random")
    for ns, n_old, n_new, seed in (("a", 2000, 150_000 if big else 2000, 3), ("b", 500, 700, 4),
                                  ("c", 0, 1500, 5)):
        ids = [f"{ns}-{i}" for i in range(n_old)] + [f"{ns}-n{i}" for i in range(n_new)]
        vals = vectors(len(ids), DIM, seed=seed)
        split_write(load / ns, dense_table(ids, vals, None), 3, row_group_size=2000)
        loaded[ns] = (ids, vals)
    with child_load(store_root, index, load, kill_at, tmp_path) as (child, job_id):
        if kill_at == "scan":
            staging = store_root / layout.staging_prefix(index.name, job_id)
            wait_until(
                lambda: index.jobs.get(job_id).done
                or (index.jobs.get(job_id).phase == "scan" and bool(files_under(staging))),
                timeout=180, what="the child's load to scan",
            )
            assert index.jobs.get(job_id).phase == "scan", index.jobs.get(job_id)
            os.killpg(child.pid, signal.SIGKILL)
        elif kill_at.startswith("random"):  # anywhere from discovery to the end
            import random

            time.sleep(random.Random(kill_at).uniform(0.3, 3.0))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        child.wait(180)
        wait_until(lambda: not session_members(child.pid), timeout=20,
                   what="the killed runner's processes to go away")
    killed = index.jobs.get(job_id)
    committed = store.exists(layout.commit_marker_key(index.name, job_id))
    if not kill_at.startswith("random"):
        assert killed.status == "InProgress", killed
        assert committed == (kill_at != "scan")
    # before recovery: the new namespace is visible only once the marker is
    assert ("c" in {n.name for n in index.list_namespaces()}) == committed

    if not killed.done:
        monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
        wait_until(
            lambda: time.time() - index.jobs.get(job_id).heartbeat_at.timestamp() > 1.2,  # type: ignore[union-attr]
            timeout=10, what="a stale heartbeat",
        )
        assert index.recover_imports() == [job_id]
    job = index.wait_for_import(job_id, timeout=240)
    assert job.status == "Completed", job
    if not killed.done:
        # resumed (a new attempt) without a marker; completed by recovery with one
        assert job.attempt == (1 if committed else 2)
    total = sum(len(ids) for ids, _ in loaded.values())
    assert job.records_imported == total and job.records_upserted == total, job
    for ns, (ids, vals) in loaded.items():
        recs = model.setdefault(ns, {})
        for id_, v in zip(ids, vals, strict=True):
            recs[id_] = (v, None)
    assert_matches(index, model)
    # exactly one log entry per existing namespace for the load
    for ns in ("a", "b"):
        new = [x for x in wal.list_lsns(store, index.name, ns) if x not in lsns_before[ns]]
        assert len(new) == 1, (ns, new)
    left = job_files(store_root, index.name, job_id)
    assert [f for f in left if "/staging/" in f] == []
    if kill_at == "scan":  # the killed attempt's files were removed before attempt 2
        assert [f for f in left if f"{job_id}-a1-" in f] == []
    assert index.recover_imports() == []
    # the same directory again: every file was loaded, exactly once
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "30")
    again = run(index, load)
    assert (again.status, again.files_skipped, again.records_imported) == ("Completed", 9, 0)
    assert_matches(index, model)


PAUSING_CHILD = '''
import os, signal, sys, time

from vecstore import VecStore
from vecstore.runners import close_runners


def pause() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)  # the driver's process only (workers run on)
    time.sleep(0.5)  # the stop of a threaded process may land a moment later: no step past here


def main() -> None:
    store, index, uri, pause_at = sys.argv[1:5]
    if pause_at == "writing_staged":
        import vecstore.loads as loads
        real_key = loads.staged_key
        calls = []

        def staged_key(*args, **kwargs):
            if not calls:
                calls.append(1)
                pause()
            return real_key(*args, **kwargs)

        loads.staged_key = staged_key
    else:
        from vecstore.pipelines.driver import ImportDriver
        real = ImportDriver._stage_load

        def stage(self, *args):
            real(self, *args)
            pause()

        ImportDriver._stage_load = stage
    idx = VecStore(store).Index(index)
    op = idx.start_import(uri=uri, error_mode="continue", mode="upsert")
    print(op.id, flush=True)
    try:
        idx.wait_for_import(op.id)
    finally:
        close_runners()


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("pause_at", ["writing_staged", "after_staged"])
def test_paused_load_runner_does_not_interfere_after_being_superseded(
    pause_at: str, make_index: Callable[..., Index], store_root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The load's driver process frozen (SIGSTOP) while writing its staged
    loads, or right after (before its marker): recovery resumes the load here
    and completes it; the woken runner changes nothing (its staged loads are
    write-if-absent, its fence stops it before a marker) and leaves no file."""
    index = make_index(dimension=DIM, metric="euclidean")
    model: Model = {}
    ids = [f"a-{i}" for i in range(3000)]
    vals = vectors(3000, DIM, seed=1)
    split_write(tmp_path / "base" / "a", dense_table(ids, vals, None), 2)
    assert run(index, tmp_path / "base", mode="create").status == "Completed"
    model["a"] = {i: (v, None) for i, v in zip(ids, vals, strict=True)}
    store = Store(str(store_root))
    lsns_before = wal.list_lsns(store, index.name, "a")
    load = tmp_path / "load"
    up = [f"a-{i}" for i in range(0, 3000, 4)] + [f"a-n{i}" for i in range(1000)]
    up_vals = vectors(len(up), DIM, seed=2)
    split_write(load / "a", dense_table(up, up_vals, None), 2)

    script = tmp_path / "run_load.py"
    script.write_text(PAUSING_CHILD)
    log = (tmp_path / "child.log").open("wb")
    env = {**os.environ, "VECSTORE_WORKERS": "2", "PYTHONWARNINGS": "ignore",
           "VECSTORE_BUILD_IN_BACKGROUND": "0"}
    env.pop("VECSTORE_SCHEDULER", None)
    child = subprocess.Popen(
        [sys.executable, str(script), str(store_root), index.name, str(load), pause_at],
        stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True,
    )
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
        assert job_id, (tmp_path / "child.log").read_text()
        wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_STOPPED,
                   timeout=180, interval=0.05, what="the child's driver to pause")
        assert index.jobs.get(job_id).phase == "commit"
        monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
        wait_until(
            lambda: time.time() - index.jobs.get(job_id).heartbeat_at.timestamp() > 1.2,  # type: ignore[union-attr]
            timeout=10, what="a stale heartbeat",
        )
        assert index.recover_imports() == [job_id]
        job = index.wait_for_import(job_id, timeout=180)
        assert (job.status, job.attempt, job.records_upserted) == ("Completed", 2, len(up)), job
        staged = sorted(files_under(store_root / layout.job_dir(index.name, job_id) / "loads"))
        before = {f: (store_root / layout.job_dir(index.name, job_id) / "loads" / f).read_bytes()
                  for f in staged}
        os.killpg(child.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(60)
        time.sleep(1)
        after = index.describe_import(job_id)
        assert (after.status, after.attempt) == ("Completed", 2), after
        # the woken runner wrote nothing over the resumed attempt's staged loads
        assert {f: (store_root / layout.job_dir(index.name, job_id) / "loads" / f).read_bytes()
                for f in staged} == before
        for id_, v in zip(up, up_vals, strict=True):
            model["a"][id_] = (v, None)
        assert_matches(index, model)
        new = [x for x in wal.list_lsns(store, index.name, "a") if x not in lsns_before]
        assert len(new) == 1, new
        left = job_files(store_root, index.name, job_id)
        assert [f for f in left if f"{job_id}-a1-" in f or "/staging/" in f] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGCONT)
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        log.close()
