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
