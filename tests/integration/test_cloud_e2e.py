"""Imports end to end on real object storage: the store root and the import
source on S3 (moto), GCS (gcp-storage-emulator) and Azure (Azurite, as
``az://`` and as Pinecone's ``https://ACCOUNT.blob.core.windows.net/...``
form), also mixed (store on one cloud, source on another). The source is
read by the Dask workers (separate processes: each gets the Stores pickled
as URI + options) and by the driver (discovery); the query reader reads the
remote segments back. Every case checks the records, exact neighbours (all
clusters probed), fetch and the index stats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cloudgen import CLOUD_OF, assert_imported, marks_for, new_place, seed_import, store_files
from datagen import IMPORT_TIMEOUT

from vecstore import VecStore, layout

pytestmark = pytest.mark.dask

# (store kind, source kind, metric)
PLACEMENTS = [
    ("s3", "s3", "cosine"),
    ("gcs", "gcs", "euclidean"),
    ("azure", "azure", "dotproduct"),
    ("azure-https", "azure-https", "cosine"),
    ("s3", "azure-https", "euclidean"),
    ("local", "gcs", "cosine"),
    ("gcs", "s3", "euclidean"),
]


@pytest.fixture(autouse=True)
def _small_clusters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # several clusters (segments) per namespace on small data
    monkeypatch.setenv("VECSTORE_RECORDS_PER_CLUSTER", "300")
    monkeypatch.setenv("VECSTORE_QUERY_CACHE_DIR", str(tmp_path / "query-cache"))


def test_workers_are_processes_with_the_gcs_setting(dask_runner: Any) -> None:
    """The shared LocalCluster's workers are other processes, started after
    tests/conftest.py set GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false (without it
    each gcsfs call on a worker hangs 60 s on the emulator)."""
    client = dask_runner.client
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    env = client.run(os.environ.get, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT")
    assert set(env.values()) == {"false"}


@pytest.mark.parametrize(
    ("store_kind", "source_kind", "metric"),
    [pytest.param(*p, marks=marks_for(p[0], p[1]), id=f"store-{p[0]}-source-{p[1]}")
     for p in PLACEMENTS],
)
def test_import_then_query(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store_kind: str,
    source_kind: str,
    metric: str,
) -> None:
    home = new_place(store_kind, request, tmp_path)
    data = new_place(source_kind, request, tmp_path)
    uri, tables, _ = seed_import(data, tmp_path, {"a": 1200, "__default__": 500}, seed=3)
    integrations = {} if data.kind == "local" else {"src": data.options}
    vs = VecStore(home.uri("vs"), storage_options=home.options, integrations=integrations)
    vs.create_index(name="docs", dimension=8, metric=metric, cloud=CLOUD_OF[source_kind])
    index = vs.Index("docs")

    op = index.start_import(uri=uri, integration_id="src" if integrations else None)
    job = index.wait_for_import(op.id, timeout=IMPORT_TIMEOUT)

    assert job.uri == uri
    assert_imported(index, job, tables, metric=metric)
    assert job.namespaces["a"].bytes_read == job.namespaces["a"].bytes_total > 0
    # what the import left in the store: its record, rejects dir (none here),
    # commit marker, and per namespace manifests + data; no scratch
    left = store_files(vs.store, layout.index_prefix("docs"))
    assert [k for k in left if "/staging/" in k] == []
    assert f"{layout.index_prefix('docs')}/imports/{op.id}/_COMMITTED" in left
    assert job.rejects_uri == vs.store.url(layout.rejects_prefix("docs", op.id))
    assert job.rejects_uri.startswith(home.base if home.kind != "local" else "/")

    # a second VecStore (a new process would do the same) reads it back
    again = VecStore(home.uri("vs"), storage_options=home.options).Index("docs")
    assert again.describe_index_stats().total_vector_count == 1700
    assert again.describe_import(op.id).status == "Completed"
