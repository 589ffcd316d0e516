"""Generate the golden store of on-storage format version 1 (``tests/golden/v1/store``).

Run ONCE, commit the output, and never regenerate it casually::

    .venv/bin/python tests/golden/make_golden.py

``tests/unit/test_golden.py`` reads these files with the current code and
checks that today's writers still produce byte-identical JSON. If you have to
regenerate them, the on-storage format changed: bump ``FORMAT_VERSION``, write
the files of the new version to a new directory (``tests/golden/v2``) and keep
``v1`` so that reading old stores stays tested.

The files are written through the package's own code paths (``manifests.commit``,
``writer.write_cluster`` / ``write_id_file`` / ``write_centroids_file``,
``JobStore.save``...) into a ``memory://`` store and then copied to disk. Only
what is random or time dependent is pinned: data file names (``new_name``),
timestamps and the import id. Parquet bytes also depend on the pyarrow version,
so the tests compare Parquet files by schema and content, never by bytes.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, when run as a script
sys.path.insert(0, str(HERE.parent))  # tests/ (segwriter)

import segwriter  # noqa: E402

from vecstore import kmeans, layout, manifests, writer  # noqa: E402
from vecstore.jobs import JobStore  # noqa: E402
from vecstore.metadata import meta_fields_of  # noqa: E402
from vecstore.schemas import ImportJob, IndexSpec, NamespaceProgress  # noqa: E402
from vecstore.schemas.arrow import REJECT_SCHEMA  # noqa: E402
from vecstore.storage import Store  # noqa: E402

OUT = HERE / "v1" / "store"
ROOT = "memory://golden-v1"

INDEX = "golden"
SPARSE_INDEX = "golden-sparse"
NAMESPACE = "docs"
DELETED_NAMESPACE = "old"
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
FINISHED = CREATED + timedelta(seconds=42, microseconds=500_000)
# new_job_id()'s shape: <microseconds since the epoch:016d><8 hex>
IMPORT_ID = f"{int(CREATED.timestamp()) * 1_000_000:016d}0badc0de"

CENTROIDS = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=np.float32)

RECORDS: list[dict[str, object]] = [
    {
        "id": "a",
        "values": [1.0, 0.25, 0.0, 0.0],
        "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]},
        "metadata": {"genre": "drama", "year": 2001, "tags": ["x", "y"], "draft": False},
    },
    {
        "id": "b",
        "values": [0.0, 1.0, 0.5, 0.0],
        "sparse_values": None,
        "metadata": {"genre": "comedy", "year": 1999},
    },
    {"id": "c", "values": [0.75, 0.0, 0.0, 0.125], "sparse_values": None, "metadata": None},
    {
        "id": "d",
        "values": [0.0, 0.5, 0.0, -0.5],
        "sparse_values": {"indices": [3], "values": [1.5]},
        "metadata": {"genre": "drama", "year": "unknown", "draft": True},
    },
    {
        "id": "e",
        "values": [2.0, -1.0, 0.0, 0.0],
        "sparse_values": None,
        "metadata": {"tags": [], "score": 0.5},
    },
]


@contextlib.contextmanager
def fixed_names() -> Iterator[None]:
    """Replace the UUIDs of data file names with a counter."""
    counter = iter(range(1, 1_000))
    original = writer.new_name

    def new_name(suffix: str, owner: str = "") -> str:
        tag = f"{owner}-" if owner else ""
        return f"data/{tag}{next(counter):032x}{suffix}"

    writer.new_name = new_name  # type: ignore[assignment]
    try:
        yield
    finally:
        writer.new_name = original


def write_index(store: Store, spec: IndexSpec) -> None:
    # the serialisation of VecStore.create_index
    store.put_if_absent(layout.index_spec_key(spec.name), spec.model_dump_json(indent=1).encode())


def build(store: Store) -> None:
    spec = IndexSpec(
        name=INDEX,
        dimension=4,
        metric="dotproduct",  # dense + dotproduct: a hybrid index (values and sparse_values)
        vector_type="dense",
        cloud="aws",
        region="local",
        created_at=CREATED,
        tags={"team": "search"},
    )
    write_index(store, spec)
    write_index(
        store,
        IndexSpec(
            name=SPARSE_INDEX,
            dimension=None,
            metric="dotproduct",
            vector_type="sparse",
            cloud="gcp",
            region="europe-west4",
            created_at=CREATED,
        ),
    )

    # ---- namespace "docs": v1 written by the import, v2 by a rebuild (same files)
    table = segwriter.records_to_table(RECORDS, spec)
    x = np.asarray([r["values"] for r in RECORDS], dtype=np.float32)
    assignment = kmeans.assign(x, CENTROIDS).astype(np.int64)
    order = np.argsort(assignment, kind="stable")
    table = table.take(pa.array(order))
    assignment = assignment[order]
    entries = []
    clusters = np.empty(len(RECORDS), np.int32)
    rows = np.empty(len(RECORDS), np.int32)
    for cid in range(len(CENTROIDS)):
        (where,) = np.nonzero(assignment == cid)
        part = table.take(pa.array(where))
        entries.append(writer.write_cluster(store, spec, NAMESPACE, IMPORT_ID, cid, part))
        clusters[where] = cid
        rows[where] = np.arange(len(where), dtype=np.int32)
    centroids_rel = writer.write_centroids_file(store, spec, NAMESPACE, IMPORT_ID, CENTROIDS)
    id_rel = writer.write_id_file(
        store, spec, NAMESPACE, IMPORT_ID, table.column("id"), clusters, rows
    )
    v1 = writer.assemble_manifest(
        spec,
        NAMESPACE,
        1,
        entries,
        centroids=centroids_rel,
        id_files=[id_rel],
        import_id=IMPORT_ID,
        fields=meta_fields_of(table.schema),
    ).model_copy(update={"created_at": CREATED})
    manifests.commit(store, v1)
    manifests.mark_import_committed(store, INDEX, IMPORT_ID)
    v2 = v1.model_copy(
        update={"version": 2, "import_id": None, "parent_version": 1, "created_at": FINISHED}
    )
    manifests.commit(store, v2)

    # ---- namespace "old": written, then deleted (only its tombstone remains)
    old = segwriter.write_namespace(
        store, spec, DELETED_NAMESPACE, segwriter.records_to_table(RECORDS[:2], spec)
    )
    assert old.version == 1
    tomb = manifests.delete_namespace(store, INDEX, DELETED_NAMESPACE)
    # pin the tombstone's timestamp, serialised exactly as manifests.commit does
    tomb = tomb.model_copy(update={"created_at": FINISHED})
    store.write_bytes(
        layout.manifest_key(INDEX, DELETED_NAMESPACE, tomb.version),
        tomb.model_dump_json(indent=1).encode(),
    )

    # ---- the import's job record and its reject report
    jobs = JobStore(store, INDEX)
    job = ImportJob(
        id=IMPORT_ID,
        index=INDEX,
        uri="s3://example-bucket/imports/2025-01-02/",
        status="Completed",
        error_mode="continue",
        integration_id="example-s3",
        created_at=CREATED,
        finished_at=FINISHED,
        percent_complete=100.0,
        records_imported=len(RECORDS),
        error=None,
        phase="done",
        bytes_total=4096,
        bytes_read=4096,
        records_skipped={"duplicate_id": 1},
        namespaces={
            NAMESPACE: NamespaceProgress(
                files=1,
                bytes_total=4096,
                bytes_read=4096,
                records_read=len(RECORDS) + 1,
                records_imported=len(RECORDS),
                records_skipped=1,
                status="Committed",
            )
        },
        rejects_uri=store.url(layout.rejects_prefix(INDEX, IMPORT_ID)),
        heartbeat_at=FINISHED,
        runner="runner-golden",
        attempt=1,
        cancel_requested=False,
    )
    jobs.create(job)
    rejects = pa.Table.from_pylist(
        [
            {
                "namespace": NAMESPACE,
                "file": "s3://example-bucket/imports/2025-01-02/docs/part-0.parquet",
                "row": 5,
                "code": "duplicate_id",
                "message": 'id "a" repeats row 0 of the same file',
                "id": "a",
            }
        ],
        schema=REJECT_SCHEMA,
    )
    rel = f"{layout.rejects_prefix(INDEX, IMPORT_ID)}/{layout.ns_dir(NAMESPACE)}/duplicates.parquet"
    with store.open_output(rel) as f:
        pq.write_table(rejects, f)


def main() -> None:
    store = Store(ROOT)
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)
    with fixed_names():
        build(store)
    if OUT.exists():
        shutil.rmtree(OUT)
    for key, _size in store.walk_files(""):
        target = OUT / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_bytes(key))
        print(target.relative_to(HERE))


if __name__ == "__main__":
    main()
