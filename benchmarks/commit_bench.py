"""Commit benchmark: an import's commit of N namespaces (default 2,000) on a
local store, before and after the commit module (issue 8 item 2, issue 9 item 2).

- ``before``: the driver's old loop, reproduced here: per namespace read the
  visible state, run the fence (one HEAD of the next attempt's claim, one GET
  of the job record), put the manifest; then fence and the commit marker.
- ``after-serial``: ``commit.apply`` with one worker (validate all, check the
  files with one listing per namespace folder, put all, one marker; the guard
  runs twice).
- ``after``: ``commit.apply`` with its thread pool (default 32 workers).

Every run commits the same manifests (3 files each) into a fresh index.

    .venv/bin/python benchmarks/commit_bench.py
    .venv/bin/python benchmarks/commit_bench.py --store s3 --namespaces 500

``--store s3`` runs moto's S3 server in a separate process on 127.0.0.1
(tests/servers.py): every request is a real HTTP round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from vecstore import commit, layout, manifests
from vecstore.schemas import Manifest
from vecstore.storage import Store

JOB = "17357870450000000badc0de"


def stage(store: Store, index: str, n: int) -> list[Manifest]:
    out = []
    for i in range(n):
        ns = f"ns-{i:05d}"
        files = [f"data/{JOB}-{uuid.uuid4().hex}.{k}.parquet" for k in range(3)]
        for rel in files:
            store.write_bytes(f"{layout.namespace_prefix(index, ns)}/{rel}", b"x")
        out.append(Manifest(index=index, namespace=ns, version=1, id_files=files))
    store.write_bytes(layout.job_key(index, JOB), b"{}")
    return out


def fence(store: Store, index: str) -> None:
    store.exists(layout.claim_key(index, JOB, 2))
    store.read_bytes(layout.job_key(index, JOB))


def before(store: Store, index: str, ms: list[Manifest]) -> None:
    for m in ms:
        latest = manifests.latest_visible(store, index, m.namespace)
        version = 1 if latest is None else latest.version + 1
        fence(store, index)
        manifests.commit(store, m.model_copy(update={"version": version, "import_id": JOB}))
    fence(store, index)
    manifests.mark_import_committed(store, index, JOB)


def after(workers: int) -> Callable[[Store, str, list[Manifest]], None]:
    def run(store: Store, index: str, ms: list[Manifest]) -> None:
        change = commit.CreateNamespaces(import_id=JOB, manifests=tuple(ms))
        commit.apply(store, index, change, guard=lambda: fence(store, index), workers=workers)

    return run


@contextlib.contextmanager
def stores(kind: str) -> Iterator[Callable[[str], Store]]:
    """A factory of fresh, empty stores of ``kind``."""
    if kind == "s3":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from servers import Bucket, run_moto, unique_name  # type: ignore[import-not-found]

        with run_moto(in_process=False) as server:

            def s3(name: str) -> Store:
                bucket = unique_name("cb")
                server.create_bucket(bucket)
                return Bucket(server, bucket).store()  # type: ignore[no-any-return]

            yield s3
        return
    tmp = tempfile.mkdtemp(prefix="commit-bench-")
    try:
        if kind == "local":
            yield lambda name: Store(f"{tmp}/{name}")
        else:
            yield lambda name: Store(f"memory://cb-{uuid.uuid4().hex}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--namespaces", type=int, default=2000)
    ap.add_argument("--store", choices=["local", "memory", "s3"], default="local")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    variants: dict[str, Callable[[Store, str, list[Manifest]], None]] = {
        "before": before,
        "after-serial": after(1),
        "after": after(commit.MAX_WORKERS),
    }
    best: dict[str, float] = {}
    with stores(args.store) as new_store:
        for r in range(args.repeat):
            for name, fn in variants.items():
                store = new_store(f"{name}-{r}")
                ms = stage(store, "bench", args.namespaces)
                t0 = time.perf_counter()
                fn(store, "bench", ms)
                dt = time.perf_counter() - t0
                assert len(manifests.list_namespaces(store, "bench")) == args.namespaces
                best[name] = min(dt, best.get(name, float("inf")))
    print(f"commit of {args.namespaces} namespaces, {args.store} store (best of {args.repeat}):")
    for name, dt in best.items():
        print(f"  {name:<13} {dt:8.2f} s   {best['before'] / dt:5.1f}x vs before")


if __name__ == "__main__":
    main()
