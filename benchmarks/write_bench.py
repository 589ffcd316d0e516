"""Write-path benchmark (issue 11): upsert throughput and index build time.

Every figure is printed beside its baseline measured in the same run.

1. upsert, local store: ``vecstore.writes.upsert`` of requests of 1,000
   records x 128-d float32 with small metadata (``{"genre", "year"}``), in the
   shape the Pinecone SDK sends (dicts, values as lists of floats), one
   process, sustained over ``--records`` (default 500,000): records/s and
   p50 / p99 latency per request (the request is built before the clock
   starts). Baseline, "the floor": the same batches already in Arrow, written
   as one Arrow IPC stream each with ``Store.put_if_absent`` to the same
   store (what any log must do at least). Target: >= 20,000 records/s.
2. the same on S3: a moto server started in this process (``tests/servers.py``),
   ``--s3-records`` (default 50,000).
3. build: import ``--base`` records (default 1,000,000; the import pipeline:
   ``VecStore.Index(...).start_import`` on the Dask LocalCluster, as
   ``benchmarks/import_bench.py``), upsert a ``--tail`` (default 100,000;
   90% new ids, 10% overwrites of imported ones), then ``vecstore.builder.build``
   folds it. Baseline: the import of the namespace afresh, same run.
   Target: build <= 0.25x the import.

Peak RSS: the writer and the builder run in child processes of their own
(``ru_maxrss``: interpreter and libraries included); the import is the sum
over the driver and the Dask workers (sampled, as ``import_bench.py``).

    .venv/bin/python benchmarks/write_bench.py
    .venv/bin/python benchmarks/write_bench.py --records 50000 --s3-records 10000 \\
        --base 100000 --tail 10000
    .venv/bin/python benchmarks/write_bench.py --skip-s3 --skip-build
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DIM = 128
BATCH = 1_000
GENRES = ["drama", "comedy", "news", "sport", "music", "tech", "food", "travel"]


# ------------------------------------------------------------------ data


def centers(seed: int = 7) -> np.ndarray:
    """The cluster centres of ``import_bench.dataset`` (same seed, same first draw)."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=4.0, size=(1000, DIM)).astype(np.float32)


def make_batch(
    rng: np.random.Generator, cents: np.ndarray, ids: list[str]
) -> tuple[list[dict[str, Any]], pa.Table]:
    """One request as the SDK sends it, and the same records in Arrow (for the floor)."""
    n = len(ids)
    x = cents[rng.integers(0, len(cents), n)] + rng.normal(size=(n, DIM)).astype(np.float32)
    years = rng.integers(1990, 2025, n).tolist()
    genres = [GENRES[g] for g in rng.integers(0, len(GENRES), n).tolist()]
    metas = [{"genre": g, "year": y} for g, y in zip(genres, years, strict=True)]
    records = [
        {"id": i, "values": v, "metadata": m}
        for i, v, m in zip(ids, x.tolist(), metas, strict=True)
    ]
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "values": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM),
            "metadata": pa.array([json.dumps(m, separators=(",", ":")) for m in metas]),
        }
    )
    return records, table


def batches(
    rng: np.random.Generator, cents: np.ndarray, start: int, new: int, overwrite_of: int
) -> Iterator[tuple[list[dict[str, Any]], pa.Table]]:
    """The requests of one writer: ``new`` records from id ``start``; with
    ``overwrite_of``, ~10% of each request overwrites ids below it."""
    done = 0
    while done < new:
        n = min(BATCH, new - done)
        if overwrite_of:
            old = np.unique(rng.integers(0, overwrite_of, n // 10)).tolist()
            ids = [f"doc-{i}" for i in old] + [
                f"doc-{start + done + j}" for j in range(n - len(old))
            ]
        else:
            ids = [f"doc-{start + done + j}" for j in range(n)]
        yield make_batch(rng, cents, ids)
        done += n


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def convert(records: list[dict[str, Any]]) -> pa.Table:
    """The least any writer does with an SDK request: lists to Arrow, metadata to JSON."""
    x = np.asarray([r["values"] for r in records], dtype=np.float32)
    return pa.table(
        {
            "id": pa.array([r["id"] for r in records], pa.string()),
            "values": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM),
            "metadata": pa.array([json.dumps(r["metadata"]) for r in records], pa.string()),
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def pct(lat: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(lat), q) * 1e3) if lat else float("nan")


# ---------------------------------------------------------- child phases


def child_upsert(args: argparse.Namespace) -> dict[str, Any]:
    """Upsert ``--records`` in requests of 1,000, then the floor on the same batches."""
    from vecstore import writes
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store

    store = Store(args.store, json.loads(os.environ.get("WRITE_BENCH_OPTIONS", "{}")))
    spec = IndexSpec(name=args.index, dimension=DIM, metric=args.metric)
    rng = np.random.default_rng(args.seed)
    cents = centers()
    start, new, overwrite_of = args.first_id, args.records, args.overwrite_below
    lat: list[float] = []
    floor_lat: list[float] = []
    conv_lat: list[float] = []
    done = 0
    wall0 = time.perf_counter()
    for records, table in batches(rng, cents, start, new, overwrite_of):
        n = len(records)
        t0 = time.perf_counter()
        writes.upsert(store, spec, args.namespace, records)
        lat.append(time.perf_counter() - t0)
        if args.floor:  # the same batch, right after: same conditions
            t0 = time.perf_counter()
            store.put_if_absent(f"floor/{args.namespace}/{len(lat):020d}.arrow", ipc_bytes(table))
            floor_lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            data = ipc_bytes(convert(records))
            store.put_if_absent(f"floor/{args.namespace}/{len(lat):020d}.conv.arrow", data)
            conv_lat.append(time.perf_counter() - t0)
        done += n
    wall = time.perf_counter() - wall0
    out: dict[str, Any] = {
        "records": done,
        "seconds": sum(lat),
        "wall": wall,
        "lat": lat,
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.floor:
        out["floor_seconds"] = sum(floor_lat)
        out["floor_lat"] = floor_lat
        out["conv_seconds"] = sum(conv_lat)
        out["conv_lat"] = conv_lat
    return out


def child_build(args: argparse.Namespace) -> dict[str, Any]:
    from vecstore import builder, manifests, wal
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store

    store = Store(args.store, json.loads(os.environ.get("WRITE_BENCH_OPTIONS", "{}")))
    spec = IndexSpec(name=args.index, dimension=DIM, metric=args.metric)
    base = manifests.load_namespace(store, spec.name, args.namespace)
    assert base is not None
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    result = builder.build(store, spec, args.namespace, owner="write-bench")
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    m = result.manifest
    return {
        "status": result.status,
        "seconds": seconds,
        "entries": result.entries,
        "applied_lsn": result.applied_lsn,
        "clusters_rewritten": result.clusters_rewritten,
        "clusters": 0 if m is None else len(m.clusters),
        "clusters_before": len(base.clusters),
        "records_before": base.record_count,
        "records_after": 0 if m is None else m.record_count,
        "log_entries": len(wal.list_lsns(store, spec.name, args.namespace)),
        "peak_rss_mb": peak_rss_mb(),
    }


def child_query(args: argparse.Namespace) -> dict[str, Any]:
    """A reader process: 20 queries of the namespace (its whole tail loaded)."""
    from vecstore.reader import Reader
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store

    store = Store(args.store, json.loads(os.environ.get("WRITE_BENCH_OPTIONS", "{}")))
    spec = IndexSpec(name=args.index, dimension=DIM, metric=args.metric)
    reader = Reader(store, spec)
    lat = []
    for q in queries(20):
        t0 = time.perf_counter()
        reader.query(vector=q.tolist(), top_k=10, namespace=args.namespace)
        lat.append(time.perf_counter() - t0)
    return {"p50_ms": pct(lat, 50), "first_ms": lat[0] * 1e3, "peak_rss_mb": peak_rss_mb()}


def run_child(phase: str, store: str, options: dict[str, Any] | None = None, **kw: Any) -> Any:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["WRITE_BENCH_OPTIONS"] = json.dumps(options or {})
    cmd = [sys.executable, __file__, "--child", phase, "--store", store]
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            if v:
                cmd.append(flag)
        else:
            cmd += [flag, str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{phase} child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def report_upsert(title: str, r: dict[str, Any]) -> None:
    n, secs, fsecs, csecs = r["records"], r["seconds"], r["floor_seconds"], r["conv_seconds"]
    lat, flat, clat = r["lat"], r["floor_lat"], r["conv_lat"]
    tenth = max(1, len(lat) // 10)
    first = tenth * BATCH / sum(lat[:tenth])
    last = tenth * BATCH / sum(lat[-tenth:])
    print(f"\n{title}: {n:,} records in {len(lat)} requests of {BATCH:,} x {DIM}-d")
    print("  floor: the batch already in Arrow, IPC-written with put_if_absent;")
    print("  +convert: the same from the SDK's request (lists to Arrow, metadata to JSON)")
    print(f"{'':30}{'vecstore':>10}{'floor':>10}{'ratio':>7}{'+convert':>10}{'ratio':>7}  target")
    print(
        f"{'records/s':30}{n / secs:10,.0f}{n / fsecs:10,.0f}{secs / fsecs:6.1f}x"
        f"{n / csecs:10,.0f}{secs / csecs:6.1f}x  >= 20,000/s"
    )
    for q in (50, 99):
        print(
            f"{f'p{q} per request (ms)':30}{pct(lat, q):10.1f}{pct(flat, q):10.1f}{'':7}"
            f"{pct(clat, q):10.1f}"
        )
    print(f"{'records/s, first / last 10%':30}{first:10,.0f}{last:10,.0f}  (sustained)")
    print(f"{'wall incl. request building (s)':30}{r['wall']:10.1f}")
    print(f"{'writer peak RSS (MB)':30}{r['peak_rss_mb']:10.0f}")


def bench_local(work: Path, records: int) -> None:
    r = run_child("upsert", str(work / "local"), records=records, floor=True)
    report_upsert("upsert, local store", r)


def bench_s3(records: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.servers import run_moto, unique_name

    with run_moto(in_process=True) as server:
        bucket = unique_name("wbench")
        server.create_bucket(bucket)
        r = run_child(
            "upsert", server.uri(bucket, "store"), server.options(), records=records, floor=True
        )
    report_upsert("upsert, S3 (moto server, in process)", r)


def bench_build(work: Path, base: int, tail: int, profile: str | None = None) -> None:
    sys.path.insert(0, str(HERE))
    from import_bench import PeakRSS, dataset

    from vecstore import VecStore
    from vecstore.runners import close_runners, get_runner

    print(f"\nbuild: dataset of {base:,} x {DIM}-d (generated once into benchmarks/.cache)...")
    src = dataset(base)
    uri = str(work / "build")
    vs = VecStore(uri)
    vs.create_index("bench", dimension=DIM, metric="euclidean")
    index = vs.Index("bench")
    try:
        get_runner().client  # noqa: B018 - start the LocalCluster outside the timing
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            op = index.start_import(str(src), error_mode="continue")
            job = index.wait_for_import(op.id, poll_interval=0.05)
            import_s = time.perf_counter() - t0
    finally:
        close_runners()
    if job.status != "Completed":
        raise RuntimeError(f"import {job.status}: {job.error}")
    q = queries()
    truth = Truth(src)
    p50_none, rec_none = measure(index, q, truth.neighbours(q))
    w = run_child(
        "upsert",
        uri,
        records=tail,
        metric="euclidean",
        first_id=base,
        overwrite_below=base,
        seed=11,
    )
    truth.apply_tail(11, base, tail, base)
    final = truth.neighbours(q)
    p50_tail, rec_tail = measure(vs.Index("bench"), q, final)
    b = run_child("build", uri, metric="euclidean", profile=profile or "")
    p50_built, rec_built = measure(vs.Index("bench"), q, final)
    print(
        f"tail: {w['records']:,} records upserted (~10% overwrites of imported ids) at "
        f"{w['records'] / w['seconds']:,.0f}/s into the imported namespace"
    )
    print(f"{'':34}{'build':>12}{'import':>12}{'ratio':>8}  target")
    print(
        f"{'time (s)':34}{b['seconds']:12.2f}{import_s:12.2f}{b['seconds'] / import_s:7.2f}x  <= 0.25x"
    )
    print(
        f"{'peak RSS (MB)':34}{b['peak_rss_mb']:12.0f}{mem.peak / 1e6:12.0f}"
        "   (builder process / import driver + workers)"
    )
    print(f"{'writer peak RSS, tail (MB)':34}{w['peak_rss_mb']:12.0f}")
    print(
        f"\nqueries (200, top 10, default nprobe){'p50 ms':>10}{'recall@10':>11}{'p50 ratio':>11}"
    )
    for name, p50, rec in (
        ("no tail (after the import)", p50_none, rec_none),
        (f"{tail:,}-record tail, not built", p50_tail, rec_tail),
        ("after the build", p50_built, rec_built),
    ):
        print(f"  {name:34}{p50:10.2f}{rec:11.3f}{p50 / p50_none:10.2f}x")
    print("  targets: tail p50 <= 2x no tail, recall unchanged; recall after build >= 0.95")
    print(
        f"build: {b['status']}, {b['entries']} log entries, clusters rewritten "
        f"{b['clusters_rewritten']} of {b['clusters']} (before: {b['clusters_before']}); "
        f"records {b['records_before']:,} -> {b['records_after']:,}"
    )


def bench_tail_memory(work: Path, records: int) -> None:
    """Peak RSS of a writer, a reader and the builder, separate processes,
    with a namespace whose whole content (``records``) is an unbuilt tail."""
    uri = str(work / "tailmem")
    w = run_child("upsert", uri, records=records)
    r = run_child("query", uri)
    b = run_child("build", uri)
    print(f"\n{records:,}-record tail (a namespace created by upserts, nothing built):")
    print(f"{'process':34}{'peak RSS (MB)':>14}")
    print(f"{'writer (all the upserts)':34}{w['peak_rss_mb']:14.0f}")
    print(
        f"{'reader (20 queries)':34}{r['peak_rss_mb']:14.0f}   "
        f"p50 {r['p50_ms']:.1f} ms, first {r['first_ms']:.0f} ms (loads the tail)"
    )
    print(
        f"{'builder (folds it: k-means afresh)':34}{b['peak_rss_mb']:14.0f}   "
        f"{b['seconds']:.1f} s, {b['clusters']} clusters"
    )


# ------------------------------------------------- query p50 and recall


class Truth:
    """The namespace's records as a matrix, for exact neighbours (squared L2)."""

    def __init__(self, src: Path) -> None:
        import pyarrow.parquet as pq

        tables = [
            pq.read_table(f, columns=["id", "values"]) for f in sorted(src.rglob("*.parquet"))
        ]
        ids = [i for t in tables for i in t.column("id").to_pylist()]
        self.row = {i: n for n, i in enumerate(ids)}
        self.x = np.concatenate(
            [
                np.asarray(t.column("values").combine_chunks().flatten(), np.float32).reshape(
                    -1, DIM
                )
                for t in tables
            ]
        )

    def apply_tail(self, seed: int, first_id: int, records: int, overwrite_of: int) -> None:
        """Replay the writer's requests (same generator, same seed)."""
        rng = np.random.default_rng(seed)
        extra: list[np.ndarray] = []
        for recs, _ in batches(rng, centers(), first_id, records, overwrite_of):
            for r in recs:
                v = np.asarray(r["values"], np.float32)
                n = self.row.get(r["id"])
                if n is None:
                    self.row[r["id"]] = len(self.x) + len(extra)
                    extra.append(v)
                elif n < len(self.x):
                    self.x[n] = v
                else:
                    extra[n - len(self.x)] = v
        if extra:
            self.x = np.concatenate([self.x, np.stack(extra)])

    def neighbours(self, q: np.ndarray, k: int = 10) -> list[set[str]]:
        names = np.empty(len(self.row), dtype=object)
        for i, n in self.row.items():
            names[n] = i
        norms = np.einsum("ij,ij->i", self.x, self.x)
        out = []
        for v in q:
            d = norms - 2 * (self.x @ v)
            top = np.argpartition(d, k)[:k]
            out.append(set(names[top].tolist()))
        return out


def queries(n: int = 200, seed: int = 99) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cents = centers()
    return (cents[rng.integers(0, len(cents), n)] + rng.normal(size=(n, DIM))).astype(np.float32)


def measure(index: Any, q: np.ndarray, truth: list[set[str]]) -> tuple[float, float]:
    """Query p50 (ms) and recall@10 at default settings, in this process."""
    for v in q:  # warm: manifest, tail, the segments these queries read
        index.query(vector=v.tolist(), top_k=10, namespace="bench")
    lat, hits = [], 0
    for v, want in zip(q, truth, strict=True):
        t0 = time.perf_counter()
        res = index.query(vector=v.tolist(), top_k=10, namespace="bench")
        lat.append(time.perf_counter() - t0)
        hits += len({m.id for m in res.matches} & want)
    return pct(lat, 50), hits / (10 * len(q))


# ------------------------------------------------------------------ main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=500_000, help="local upserts")
    ap.add_argument("--s3-records", type=int, default=50_000, help="upserts on S3 (moto)")
    ap.add_argument("--base", type=int, default=1_000_000, help="imported namespace size")
    ap.add_argument("--tail", type=int, default=100_000, help="records folded by the build")
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument(
        "--tail-memory",
        type=int,
        default=0,
        metavar="N",
        help="also: peak memory of writer, reader and builder with an N-record tail (2000000)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the stores (prints the path)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the build into FILE (pstats)")
    # child processes
    ap.add_argument("--child", choices=["upsert", "build", "query"], help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--index", default="bench", help=argparse.SUPPRESS)
    ap.add_argument("--namespace", default="bench", help=argparse.SUPPRESS)
    ap.add_argument("--metric", default="cosine", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--first-id", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--overwrite-below", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main() -> int:
    args = parse()
    if args.child:
        phase = {"upsert": child_upsert, "build": child_build, "query": child_query}[args.child]
        print(json.dumps(phase(args)))
        return 0
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="vecstore-write-bench-"))
    try:
        if not args.skip_local:
            bench_local(work, args.records)
        if not args.skip_s3:
            bench_s3(args.s3_records)
        if not args.skip_build:
            bench_build(work, args.base, args.tail, args.profile)
        if args.tail_memory:
            bench_tail_memory(work, args.tail_memory)
        if args.keep:
            print(f"stores kept at {work}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
