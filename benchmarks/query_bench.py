"""Query benchmark: recall@10 against queries/s, beside FAISS IndexIVFFlat.

Both datasets are IMPORTED with vecstore (``VecStore.create_index`` +
``Index.start_import`` + ``wait_for_import``: the Dask pipeline, k-means
included), then queried with the import's own clusters:

  (a) the real MiniLM embeddings in shared/data/pypi-minilm-25k (25,000 x 384,
      cosine; 500 held-out queries with exact ground truth): the base files
      are copied into an import directory without ``sparse_values`` (a dense
      cosine index);
  (b) the synthetic set of the import benchmark (``import_bench.dataset``:
      1,000,000 x 128 float32 with JSON metadata, euclidean), 1,000 held-out
      queries drawn from the same mixture, exact ground truth by FAISS
      IndexFlatL2. ``--quick``: 200,000 records.

Imported stores are cached under ``benchmarks/.cache/qbench/`` with a marker
naming the clustering rule and segment layout they were built with; a rerun
with the same code skips the import (``--reimport`` forces it). The Dask
cluster of the import is closed before anything is timed.

FAISS gets the same vectors, the same number of lists (= clusters in the
manifest) and the same thread count (``faiss.omp_set_num_threads``; numpy's
BLAS via threadpoolctl). Per nprobe (``default`` = vecstore's own rule):
recall@10 and QPS of (i) all queries as one batch (``Reader.query_batch``)
and (ii) one query at a time (``Reader.query``, p50 / p99 latency); the two
engines' single queries alternate query by query, so they share the load. Then the
best QPS at recall@10 >= 0.95 of each engine and the ratios, the p50 at the
default nprobe, and fetch latency of 100 random ids: cold (a new Reader: id
lookup files and row groups read from storage), warm (same Reader, fresh
random ids) and repeated (the same ids again). The load average is printed
with every figure: other processes share the 2 cores, so compare within one
run (``--rounds N`` repeats the timings).

    .venv/bin/python benchmarks/query_bench.py [--quick] [--threads 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vecstore import kmeans, manifests  # noqa: E402
from vecstore.reader import Reader  # noqa: E402
from vecstore.schemas import IndexSpec  # noqa: E402
from vecstore.segments import dense_matrix, segment_row_group_rows  # noqa: E402
from vecstore.storage import Store  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
QCACHE = CACHE / "qbench"
REAL = ROOT.parent / "shared" / "data" / "pypi-minilm-25k"
if not REAL.exists():
    REAL = Path("/work/shared/data/pypi-minilm-25k")
TOP = 10
FLOOR = 0.95


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


@dataclass
class Dataset:
    name: str
    metric: str
    base: np.ndarray  # (n, d) float32, in import order
    queries: np.ndarray  # (q, d) float32
    gt: np.ndarray  # (q, >=10) row positions in base
    ids: list[str]  # id of each base row
    import_dir: Path | None = None  # the directory imported (one namespace sub-directory)
    namespace: str = "ns"


@dataclass
class Row:
    engine: str
    nprobe: str
    recall_batch: float
    qps_batch: float
    recall_single: float
    qps_single: float
    p50_ms: float
    p99_ms: float
    load: str = ""


# ------------------------------------------------------------------ data


def _matrix(table: pa.Table) -> np.ndarray:
    col = table.column("values").combine_chunks()
    flat = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32)
    return flat.reshape(len(col), -1)


def load_real() -> Dataset:
    """The MiniLM set; its base files copied into an import directory (once)."""
    files = sorted((REAL / "base").glob("*.parquet"))
    parts = [pq.read_table(p, columns=["id", "values", "metadata"]) for p in files]
    ids = [i for t in parts for i in t.column("id").to_pylist()]
    base = np.concatenate([_matrix(t) for t in parts])
    queries = _matrix(pq.read_table(REAL / "queries.parquet", columns=["values"]))
    gt = np.load(REAL / "gt.npz")["idx"]
    src = QCACHE / "import-minilm-25k"
    if not (src / "_READY").exists():
        shutil.rmtree(src, ignore_errors=True)
        (src / "ns").mkdir(parents=True)
        for path, t in zip(files, parts, strict=True):
            # sparse_values dropped (a dense cosine index); "rank": null dropped from
            # the metadata (Pinecone, and so vecstore, refuse null metadata values)
            meta = [
                json.dumps({k: v for k, v in json.loads(m).items() if v is not None})
                for m in t.column("metadata").to_pylist()
            ]
            t = t.set_column(2, "metadata", pa.array(meta, pa.string()))
            pq.write_table(t, src / "ns" / path.name)
        (src / "_READY").touch()
    return Dataset("pypi-minilm-25k", "cosine", base, queries, gt, ids, src, "ns")


def load_synthetic(n: int, nq: int = 1000) -> Dataset:
    """import_bench's dataset (generated once) plus held-out queries and exact ground truth."""
    import import_bench

    src = import_bench.dataset(n)
    files = sorted((src / "bench").glob("*.parquet"))
    tables = [pq.read_table(f, columns=["id", "values"]) for f in files]
    base = np.ascontiguousarray(np.concatenate([_matrix(t) for t in tables]))
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    # the same mixture: import_bench draws its 1,000 centres first from seed 7
    centers = np.random.default_rng(7).normal(scale=4.0, size=(1000, import_bench.DIM))
    centers = centers.astype(np.float32)
    qf, gf = QCACHE / f"synth-{n}.queries.npy", QCACHE / f"synth-{n}.gt.npy"
    if qf.exists() and gf.exists():
        queries, gt = np.load(qf), np.load(gf)
    else:
        rng = np.random.default_rng(12345)
        which = rng.integers(0, len(centers), nq)
        queries = centers[which] + rng.normal(size=(nq, import_bench.DIM)).astype(np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        import faiss

        t = time.perf_counter()
        flat = faiss.IndexFlatL2(base.shape[1])
        flat.add(base)
        _, gt = flat.search(queries, TOP)
        print(f"  exact ground truth: {time.perf_counter() - t:.1f} s")
        QCACHE.mkdir(parents=True, exist_ok=True)
        np.save(qf, queries)
        np.save(gf, gt)
    return Dataset(f"synthetic-{n}", "euclidean", base, queries, gt, ids, src, "bench")


# ---------------------------------------------------------------- import


def layout_tag(n: int, d: int) -> dict[str, Any]:
    """What the cached store depends on: rerun the import when it changes."""
    return {
        "records": n,
        "clusters": kmeans.choose_k(n),
        "row_group_rows": segment_row_group_rows(d),
        "format": 1,
    }


def imported(ds: Dataset, reimport: bool = False) -> tuple[Store, IndexSpec, str]:
    """The dataset's import directory imported with vecstore (cached per layout)."""
    from vecstore import VecStore
    from vecstore.runners import close_runners, get_runner

    assert ds.import_dir is not None
    root = QCACHE / f"store-{ds.name}"
    marker = root / "bench.json"
    tag = layout_tag(len(ds.base), ds.base.shape[1])
    name = "bench"
    if not reimport and marker.exists() and json.loads(marker.read_text()) == tag:
        vs = VecStore(str(root))
        m = manifests.load_namespace(vs.store, name, ds.namespace)
        if m is not None and m.record_count == len(ds.base):
            return vs.store, vs.describe_index(name), ds.namespace
    shutil.rmtree(root, ignore_errors=True)
    vs = VecStore(str(root))
    vs.create_index(name=name, dimension=ds.base.shape[1], metric=ds.metric)
    index = vs.Index(name)
    try:
        runner: Any = get_runner()
        runner.client  # noqa: B018 - start the LocalCluster outside the timing
        print(f"  importing {ds.import_dir} ({load()}) ...", flush=True)
        t = time.perf_counter()
        op = index.start_import(str(ds.import_dir), error_mode="continue")
        job = index.wait_for_import(op.id, poll_interval=0.1)
        wall = time.perf_counter() - t
    finally:
        close_runners()  # no idle Dask workers while we time queries
    if job.status != "Completed":
        raise SystemExit(f"import {job.status}: {job.error}")
    m = manifests.load_namespace(vs.store, name, ds.namespace)
    assert m is not None
    if m.record_count != len(ds.base):
        raise SystemExit(
            f"imported {m.record_count} of {len(ds.base)} records (skipped: {job.records_skipped})"
        )
    print(
        f"  imported {job.records_imported:,} records (skipped {job.records_skipped}) in "
        f"{wall:.1f} s: {len(m.clusters)} clusters ({load()})"
    )
    marker.write_text(json.dumps(tag))
    return vs.store, vs.describe_index(name), ds.namespace


def from_store(uri: str, index: str, namespace: str, nq: int) -> tuple[Dataset, Store, IndexSpec]:
    """An existing namespace: its vectors become the base; queries are perturbed rows."""
    store = Store(uri)
    spec = IndexSpec.model_validate_json(store.read_bytes(f"indexes/{index}/index.json"))
    m = manifests.load_namespace(store, index, namespace)
    if m is None:
        raise SystemExit(f"namespace {namespace!r} not found in {uri}/{index}")
    from vecstore.layout import namespace_prefix
    from vecstore.segments import read_table

    ids: list[str] = []
    mats = []
    for c in m.clusters:
        t = read_table(store, f"{namespace_prefix(index, namespace)}/{c.segment}", ["id", "values"])
        ids += t.column("id").to_pylist()
        mats.append(dense_matrix(t.column("values"), int(spec.dimension or 0)))
    base = np.ascontiguousarray(np.concatenate(mats))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(base), nq, replace=False)
    queries = base[pick] + 0.05 * base.std() * rng.standard_normal(
        base[pick].shape, dtype=np.float32
    )
    queries = queries.astype(np.float32)
    import faiss

    if spec.metric == "euclidean":
        flat: Any = faiss.IndexFlatL2(base.shape[1])
        flat.add(base)
        _, gt = flat.search(queries, TOP)
    else:
        b = base / np.linalg.norm(base, axis=1, keepdims=True) if spec.metric == "cosine" else base
        flat = faiss.IndexFlatIP(base.shape[1])
        flat.add(np.ascontiguousarray(b, np.float32))
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        _, gt = flat.search(np.ascontiguousarray(qn if spec.metric == "cosine" else queries), TOP)
    ds = Dataset(f"{index}/{namespace}", spec.metric, base, queries, gt, ids, None, namespace)
    return ds, store, spec


# ------------------------------------------------------------- engines


def recall(found: list[list[int]], gt: np.ndarray) -> float:
    hit = sum(len(set(f[:TOP]) & set(g[:TOP].tolist())) for f, g in zip(found, gt, strict=True))
    return hit / (TOP * len(found))


def pctl(lat: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(lat) * 1e3, p))


def timed_best(fn: Any, reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _row(engine: str, nprobe: str, r_b: float, qps_b: float, r_s: float, lat: list[float]) -> Row:
    return Row(
        engine, nprobe, r_b, qps_b, r_s, len(lat) / sum(lat), pctl(lat, 50), pctl(lat, 99), load()
    )


def bench_pair(
    reader: Reader,
    ds: Dataset,
    pos: dict[str, int],
    p: int | None,
    faiss_index: Any,
    fq: np.ndarray,
    n_single: int,
    faiss_p: int,
) -> list[Row]:
    """Both engines at one nprobe (vecstore's default: FAISS at the same
    number of lists): the batch timings back to back, then the single queries
    interleaved query by query, so that both see the same load and the same
    cold caches (each engine's query runs after the other's scan)."""
    ns = ds.namespace
    secs, res = timed_best(lambda: reader.query_batch(ds.queries, TOP, ns, nprobe=p), 3)
    r_b = recall([[pos[i] for i, _ in hits] for hits in res], ds.gt)
    qps_b = len(ds.queries) / secs
    faiss_index.nprobe = faiss_p
    f_secs, (_, idx) = timed_best(lambda: faiss_index.search(fq, TOP), 3)
    f_rb, f_qps = recall(idx.tolist(), ds.gt), len(fq) / f_secs
    lat, f_lat, found, f_found = [], [], [], []
    for qi in range(n_single):
        v = ds.queries[qi]
        t = time.perf_counter()
        out = reader.query(namespace=ns, vector=v, top_k=TOP, nprobe=p)
        lat.append(time.perf_counter() - t)
        found.append([pos[m.id] for m in out.matches])
        t = time.perf_counter()
        _, one = faiss_index.search(fq[qi : qi + 1], TOP)
        f_lat.append(time.perf_counter() - t)
        f_found.append(one[0].tolist())
    label = "default" if p is None else str(p)
    f_label = str(faiss_p) if p is not None else f"({faiss_p})"
    rows = [
        _row("vecstore", label, r_b, qps_b, recall(found, ds.gt[:n_single]), lat),
        _row("faiss", f_label, f_rb, f_qps, recall(f_found, ds.gt[:n_single]), f_lat),
    ]
    for r in rows:
        print_row(r)
    return rows


def alone(reader: Reader, ds: Dataset, n_single: int) -> tuple[float, float, float]:
    """p50 / p99 ms and recall of single queries at the default nprobe, back to
    back (no other engine between them: the way a service runs them)."""
    lat, found = [], []
    for qi in range(n_single):
        t = time.perf_counter()
        out = reader.query(namespace=ds.namespace, vector=ds.queries[qi], top_k=TOP)
        lat.append(time.perf_counter() - t)
        found.append([m.id for m in out.matches])
    pos = {id_: i for i, id_ in enumerate(ds.ids)}
    rec = recall([[pos[i] for i in f] for f in found], ds.gt[:n_single])
    return pctl(lat, 50), pctl(lat, 99), rec


def build_faiss(ds: Dataset, nlist: int) -> tuple[Any, np.ndarray]:
    import faiss

    d = ds.base.shape[1]
    base, queries = ds.base, ds.queries
    if ds.metric == "euclidean":
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        if ds.metric == "cosine":
            base = ds.base / np.linalg.norm(ds.base, axis=1, keepdims=True)
            queries = ds.queries / np.linalg.norm(ds.queries, axis=1, keepdims=True)
    t = time.perf_counter()
    index.train(np.ascontiguousarray(base, np.float32))
    index.add(np.ascontiguousarray(base, np.float32))
    print(f"  faiss IVFFlat {nlist}: train + add {time.perf_counter() - t:.1f} s")
    return index, np.ascontiguousarray(queries, np.float32)


HEADER = (
    f"{'engine':<9} {'nprobe':>7} {'recall(b)':>9} {'QPS batch':>10} "
    f"{'recall(1)':>9} {'QPS single':>10} {'p50 ms':>7} {'p99 ms':>7}  load (1/5/15 min)"
)


def print_row(r: Row) -> None:
    print(
        f"{r.engine:<9} {r.nprobe:>7} {r.recall_batch:>9.4f} {r.qps_batch:>10.0f} "
        f"{r.recall_single:>9.4f} {r.qps_single:>10.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f}  "
        f"{r.load.removeprefix('load ')}",
        flush=True,
    )


def best_at(rows: list[Row], floor: float, batch: bool) -> Row | None:
    ok = [r for r in rows if (r.recall_batch if batch else r.recall_single) >= floor]
    if not ok:
        return None
    return max(ok, key=lambda r: r.qps_batch if batch else r.qps_single)


def summary(ours: list[Row], faiss_rows: list[Row], floor: float = FLOOR) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, batch in (("batch", True), ("single", False)):
        a, b = best_at(ours, floor, batch), best_at(faiss_rows, floor, batch)
        qa = None if a is None else (a.qps_batch if batch else a.qps_single)
        qb = None if b is None else (b.qps_batch if batch else b.qps_single)
        ratio = (qa / qb) if qa and qb else None
        out[mode] = {
            "vecstore": qa,
            "vecstore_nprobe": a and a.nprobe,
            "faiss": qb,
            "faiss_nprobe": b and b.nprobe,
            "ratio": ratio,
        }
        print(
            f"  best {mode:<6} QPS at recall@10 >= {floor}: vecstore "
            f"{'-' if qa is None else f'{qa:,.0f}'} (nprobe {a and a.nprobe}), faiss "
            f"{'-' if qb is None else f'{qb:,.0f}'} (nprobe {b and b.nprobe}), ratio "
            f"{'-' if ratio is None else f'{ratio:.2f}x'}  [{load()}]"
        )
    default = next(r for r in ours if r.nprobe == "default")
    out["default"] = {
        "recall_single": default.recall_single,
        "p50_ms": default.p50_ms,
        "p99_ms": default.p99_ms,
    }
    print(
        f"  single query at the default nprobe (interleaved with FAISS): recall@10 "
        f"{default.recall_single:.4f}, p50 {default.p50_ms:.2f} ms, p99 {default.p99_ms:.2f} ms"
        f"  [{default.load}]"
    )
    return out


def fetch_latency(
    store: Store, spec: IndexSpec, ds: Dataset, warm_reader: Reader, reps: int = 20, seed: int = 0
) -> dict[str, float]:
    """Fetch of 100 random ids: cold (a new Reader: id lookup files, footers and
    row groups read from storage; the OS page cache is warm), warm (the same
    Reader, fresh random ids), the same ids again, and on the Reader that ran
    the queries (vectors of scanned segments in memory)."""
    ns = ds.namespace
    rng = np.random.default_rng(1 + seed)

    def pick() -> list[str]:
        return [ds.ids[i] for i in rng.choice(len(ds.ids), 100, replace=False)]

    def timed(reader: Reader, ids: list[str]) -> float:
        t = time.perf_counter()
        res = reader.fetch(ids, namespace=ns)
        dt = time.perf_counter() - t
        assert len(res.vectors) == 100, len(res.vectors)
        assert all(res.vectors[i].values and res.vectors[i].id == i for i in ids)
        return dt

    fresh = Reader(store, spec)
    first = pick()
    cold = timed(fresh, first)
    warm = [timed(fresh, pick()) for _ in range(reps)]
    again = [timed(fresh, first) for _ in range(reps)]
    hot = [timed(warm_reader, pick()) for _ in range(reps)]
    out = {
        "cold_ms": cold * 1e3,
        "warm_p50_ms": pctl(warm, 50),
        "warm_max_ms": max(warm) * 1e3,
        "repeat_p50_ms": pctl(again, 50),
        "after_queries_p50_ms": pctl(hot, 50),
    }
    print(
        f"  fetch 100 ids: cold {out['cold_ms']:.1f} ms (new Reader); warm p50 "
        f"{out['warm_p50_ms']:.1f} ms (max {out['warm_max_ms']:.1f}) with fresh ids; same ids "
        f"again p50 {out['repeat_p50_ms']:.1f} ms; on the querying Reader p50 "
        f"{out['after_queries_p50_ms']:.1f} ms  [{load()}]"
    )
    return out


def run_dataset(
    ds: Dataset,
    store: Store,
    spec: IndexSpec,
    grid: list[int],
    n_single: int,
    fetch: bool,
    rounds: int,
    threads: int,
) -> dict[str, Any]:
    ns = ds.namespace
    n_single = min(n_single, len(ds.queries))
    print(
        f"\n== {ds.name}: {ds.base.shape[0]:,} x {ds.base.shape[1]} {ds.metric}, "
        f"{len(ds.queries)} queries (batch), {n_single} single  [{load()}] =="
    )
    reader = Reader(store, spec, threads=threads)
    state = reader.namespace_state(ns)
    assert state is not None
    k = state.k
    grid = sorted({p for p in grid if p <= k} | ({k} if k <= 64 else set()))
    reader.query_batch(ds.queries[:64], TOP, ns, nprobe=k)  # load every cluster
    from vecstore.query.planner import probe_count

    default_p = probe_count(state, None)
    print(f"  clusters: {k}; default nprobe: {default_p}")
    pos = {id_: i for i, id_ in enumerate(ds.ids)}
    faiss_index, fq = build_faiss(ds, k)
    result: dict[str, Any] = {"dataset": ds.name, "clusters": k, "rounds": []}
    for rnd in range(rounds):
        print(f"  -- round {rnd + 1}/{rounds}")
        print(HEADER)
        rows = [
            r
            for p in [None, *grid]
            for r in bench_pair(reader, ds, pos, p, faiss_index, fq, n_single, p or default_p)
        ]
        ours = [r for r in rows if r.engine == "vecstore"]
        theirs = [r for r in rows if r.engine == "faiss"]
        summ = summary(ours, theirs)
        p50, p99, rec = alone(reader, ds, n_single)
        summ["default_alone"] = {"p50_ms": p50, "p99_ms": p99, "recall_single": rec}
        print(
            f"  single queries alone (back to back, default nprobe): recall@10 {rec:.4f}, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms  [{load()}]"
        )
        if fetch:
            summ["fetch"] = fetch_latency(store, spec, ds, reader, seed=rnd)
        result["rounds"].append({"rows": [r.__dict__ for r in ours + theirs], "summary": summ})
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="200k synthetic vectors instead of 1M")
    ap.add_argument("--threads", type=int, default=2, help="BLAS / OpenMP threads (both engines)")
    ap.add_argument("--single", type=int, default=500, help="queries timed one at a time")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the timings this many times")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--reimport", action="store_true", help="import again even if cached")
    ap.add_argument("--store", help="benchmark an existing store URI instead of the synthetic set")
    ap.add_argument("--index", default="bench")
    ap.add_argument("--namespace", default="ns")
    ap.add_argument("--json", help="also write the results as JSON here")
    opts = ap.parse_args()

    import faiss
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    results = []
    datasets: list[tuple[Dataset, Store, IndexSpec, list[int], bool]] = []
    # imports first (each starts and closes its own Dask cluster), timings after
    if not opts.skip_real:
        ds = load_real()
        store, spec, _ = imported(ds, opts.reimport)
        datasets.append((ds, store, spec, [1, 2, 4, 6, 8, 10, 12, 16, 24], False))
    if opts.store:
        ds, store, spec = from_store(opts.store, opts.index, opts.namespace, 1000)
        datasets.append((ds, store, spec, [1, 2, 4, 8, 16, 32, 64, 128], True))
    elif not opts.skip_synthetic:
        ds = load_synthetic(200_000 if opts.quick else 1_000_000)
        store, spec, _ = imported(ds, opts.reimport)
        datasets.append((ds, store, spec, [1, 2, 3, 4, 8, 16, 32, 64], True))

    faiss.omp_set_num_threads(opts.threads)
    with threadpool_limits(opts.threads):
        print(f"\nthreads: {opts.threads} (faiss OpenMP and numpy BLAS)  [{load()}]")
        for ds, store, spec, grid, fetch in datasets:
            results.append(
                run_dataset(ds, store, spec, grid, opts.single, fetch, opts.rounds, opts.threads)
            )
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1, default=float))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
