"""Batch loads with the store and the load directory on S3 (moto's server,
reached by the Dask workers as separate processes): overwrites, new ids and
deletes into an existing namespace plus a new namespace, checked record by
record against a model; the same directory again skips every file (the
history keys S3 files by ETag); a failing load leaves no object behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cloudgen import new_place, store_files, upload_dir
from datagen import dense_table, split_write, vectors
from test_load import (
    DIM,
    TIMEOUT,
    Model,
    apply_to_model,
    assert_matches,
    delete_from_model,
    write_deletes,
    write_records,
)

from vecstore import VecStore, layout

pytestmark = [pytest.mark.dask, pytest.mark.s3]


def test_load_on_s3(
    dask_runner: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    home = new_place("s3", request, tmp_path)
    data = new_place("s3", request, tmp_path)
    vs = VecStore(home.uri("vs"), storage_options=home.options,
                  integrations={"src": data.options})
    vs.create_index(name="docs", dimension=DIM, metric="euclidean")
    index = vs.Index("docs")

    def load(local: Path, path: str, **kw: Any) -> Any:
        upload_dir(local, data.store(path))
        op = index.start_import(uri=data.uri(path), integration_id="src", **kw)
        return index.wait_for_import(op.id, timeout=TIMEOUT)

    model: Model = {}
    ids = [f"a-{i}" for i in range(2500)]
    vals = vectors(2500, DIM, seed=1)
    split_write(tmp_path / "base" / "a", dense_table(ids, vals, None), 2)
    assert load(tmp_path / "base", "base").status == "Completed"
    model["a"] = {i: (v, None) for i, v in zip(ids, vals, strict=True)}

    local = tmp_path / "l1"
    up = [f"a-{i}" for i in range(0, 2500, 7)] + [f"a-n{i}" for i in range(400)]
    up_vals = vectors(len(up), DIM, seed=2)
    write_records(local, "a", up, up_vals, files=2, tag="l1")
    b_ids = [f"b-{i}" for i in range(700)]
    b_vals = vectors(700, DIM, seed=3)
    write_records(local, "b", b_ids, b_vals, tag="l1")
    write_deletes(local, "a", "id", ["a-1", "a-8"], "ids")
    write_deletes(local, "a", "prefix", ["a-24"], "pre")
    job = load(local, "l1", mode="upsert")
    assert job.status == "Completed", job
    assert (job.records_upserted, job.ids_deleted, job.prefixes_deleted) == (len(up) + 700, 2, 1)
    delete_from_model(model, "a", ["a-1", "a-8"], ["a-24"])
    apply_to_model(model, "a", up, up_vals, "l1")
    apply_to_model(model, "b", b_ids, b_vals, "l1")
    assert_matches(index, model)

    again = load(local, "l1", mode="upsert")  # same objects, same ETags
    assert (again.status, again.files_skipped, again.records_imported) == ("Completed", 5, 0)
    assert_matches(index, model)

    bad = tmp_path / "bad"
    bad_vals = vectors(300, DIM, seed=4)
    bad_vals[10, 0] = np.nan
    write_records(bad, "a", [f"a-x{i}" for i in range(300)], bad_vals, tag="bad")
    failed = load(bad, "bad", mode="upsert", error_mode="abort")
    assert failed.status == "Failed", failed
    assert_matches(index, model)
    left = store_files(vs.store, layout.index_prefix("docs"))
    assert [k for k in left if f"/data/{failed.id}-" in k or f"/{failed.id}/loads/" in k
            or "/staging/" in k] == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_load_killed_or_cancelled_on_s3_loads_each_file_once(
    dask_runner: Any, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:
    """The store on S3: a load whose runner is killed with SIGKILL at a random
    point (seeded), then recovered, and a load cancelled mid-way, then run
    again: every record once, and the same directory again skips every file."""
    import contextlib
    import json
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from datagen import wait_until
    from test_import_crash import session_members
    from test_load import cancel_then_rerun, run
    from test_load_crash import CHILD

    home = new_place("s3", request, tmp_path)
    vs = VecStore(home.uri("vs"), storage_options=home.options)
    vs.create_index(name="docs", dimension=DIM, metric="euclidean")
    index = vs.Index("docs")
    ids = [f"a-{i}" for i in range(3000)]
    vals = vectors(3000, DIM, seed=seed)
    split_write(tmp_path / "base" / "a", dense_table(ids, vals, None), 2)
    assert run(index, tmp_path / "base", mode="create").status == "Completed"
    model: Model = {"a": {i: (v, None) for i, v in zip(ids, vals, strict=True)}}

    # killed at a random point, then recovered
    load = tmp_path / "load"
    up = [f"a-{i}" for i in range(0, 3000, 3)] + [f"a-n{i}" for i in range(40_000)]
    up_vals = vectors(len(up), DIM, seed=seed + 10)
    write_records(load, "a", up, up_vals, files=4, tag="k")
    b_ids = [f"b-{i}" for i in range(600)]
    b_vals = vectors(600, DIM, seed=seed + 20)
    write_records(load, "b", b_ids, b_vals, tag="k")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "VECSTORE_WORKERS": "2", "PYTHONWARNINGS": "ignore",
           "VECSTORE_BUILD_IN_BACKGROUND": "0", "VECSTORE_CHUNK_BYTES": str(256 * 1024)}
    env.pop("VECSTORE_SCHEDULER", None)
    with (tmp_path / "child.log").open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(script), home.uri("vs"), "docs", str(load), "random",
             json.dumps(home.options)],
            stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True,
        )
        try:
            assert child.stdout is not None
            job_id = child.stdout.readline().decode().strip()
            assert job_id, (tmp_path / "child.log").read_text()
            time.sleep(random.Random(seed).uniform(0.3, 2.5))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
    wait_until(lambda: not session_members(child.pid), timeout=20,
               what="the killed runner's processes to go away")
    if not index.jobs.get(job_id).done:
        monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
        wait_until(
            lambda: time.time() - index.jobs.get(job_id).heartbeat_at.timestamp() > 1.2,  # type: ignore[union-attr]
            timeout=10, what="a stale heartbeat",
        )
        assert index.recover_imports() == [job_id]
    job = index.wait_for_import(job_id, timeout=TIMEOUT)
    assert job.status == "Completed", job
    assert job.records_imported == len(up) + 600, job
    apply_to_model(model, "a", up, up_vals, "k")
    apply_to_model(model, "b", b_ids, b_vals, "k")
    assert_matches(index, model)
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "30")
    again = run(index, load)
    assert (again.status, again.files_skipped, again.records_imported) == ("Completed", 5, 0)

    # cancelled mid-way, then run again
    load2 = tmp_path / "load2"
    c_ids = [f"a-c{i}" for i in range(60_000)]
    c_vals = vectors(len(c_ids), DIM, seed=seed + 30)
    write_records(load2, "a", c_ids, c_vals, files=6, tag="c")
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", str(256 * 1024))
    cancel_then_rerun(index, load2, 6)
    apply_to_model(model, "a", c_ids, c_vals, "c")
    assert_matches(index, model)
    left = store_files(vs.store, layout.index_prefix("docs"))
    assert [k for k in left if "/staging/" in k] == []
