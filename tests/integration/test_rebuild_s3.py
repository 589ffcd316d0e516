"""A rebuild with a concurrent writer, then vacuum with a pinned reader, on S3 (moto)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from servers import Bucket

from vecstore import VecStore, manifests
from vecstore.reader import Reader

D = 8
NS = "ns"


@pytest.mark.s3
def test_rebuild_and_vacuum_on_s3(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")

    def open_index() -> object:
        return VecStore(s3_bucket.uri("rb"), storage_options=s3_bucket.options()).Index("m")

    vs = VecStore(s3_bucket.uri("rb"), storage_options=s3_bucket.options())
    vs.create_index(name="m", dimension=D, metric="euclidean")
    index = vs.Index("m")
    x = np.random.default_rng(0).normal(size=(1500, D)).astype(np.float32)
    model = {f"a{j}": x[j].tolist() for j in range(len(x))}
    items = list(model.items())
    for s in range(0, len(items), 500):
        index.upsert(items[s : s + 500], namespace=NS)
    index.build(namespace=NS)
    old = manifests.load_namespace(index.store, "m", NS)
    assert old is not None
    pinned = Reader(index.store, index.spec, manifest_ttl=1e9)
    assert pinned.query(vector=model["a3"], top_k=1, namespace=NS).matches[0].id == "a3"

    writer = open_index()
    done = threading.Event()

    def write() -> None:
        n = 0
        while not done.is_set() or n < 3:
            rec = (f"w{n}", [float(n)] * D)
            writer.upsert([rec], namespace=NS)  # type: ignore[attr-defined]
            model[rec[0]] = rec[1]
            n += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        [job] = index.rebuild(NS)
    finally:
        done.set()
        t.join()
    assert job.status == "Completed", job.error
    ids = sorted(i for page in index.list(namespace=NS) for i in page)
    assert ids == sorted(model)

    assert index.vacuum().data_files == 0  # within retention
    assert pinned.query(vector=model["a3"], top_k=1, namespace=NS).matches[0].id == "a3"
    report = index.vacuum(older_than=0)
    assert report.data_files >= len(old.files()) and report.manifests >= 1
    new = manifests.load_namespace(index.store, "m", NS)
    assert new is not None and manifests.manifest_versions(index.store, "m", NS) == [new.version]
    got = index.fetch(["a3", "w0"], namespace=NS).vectors
    assert set(got) == {"a3", "w0"}
