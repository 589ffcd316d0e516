"""Query benchmark: recall@10 against queries/s, beside FAISS IndexIVFFlat.

Datasets:
  (a) the real MiniLM embeddings in shared/data/pypi-minilm-25k (cosine);
  (b) a seeded synthetic clustered set, 1,000,000 x 128 float32 (euclidean);
      ``--quick``: 200,000 x 128.

For each dataset a namespace is written with ``vecstore.writer.write_namespace``
into ``benchmarks/.cache/`` (reused by later runs), or an existing one is used
with ``--store URI --index NAME --namespace NS`` (then ground truth is exact
search over the namespace's own vectors). FAISS gets the same vectors, the
same number of lists (= clusters in the manifest) and the same thread count
(``faiss.omp_set_num_threads``; numpy's BLAS via threadpoolctl).

Printed per nprobe: recall@10 and QPS of (i) all queries as one batch
(``Reader.query_batch``) and (ii) one query at a time (``Reader.query``,
p50 / p99 latency), FAISS's numbers, then the best QPS at recall >= 0.95 and
the ratios. Also: fetch latency of 100 ids (warm).

    .venv/bin/python benchmarks/query_bench.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
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

from schemas import IndexSpec  # noqa: E402
from vecstore import manifests  # noqa: E402
from vecstore.reader import Reader  # noqa: E402
from vecstore.segments import dense_matrix, fixed_list  # noqa: E402
from vecstore.storage import Store  # noqa: E402
from vecstore.writer import write_namespace  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
REAL = ROOT.parent / "shared" / "data" / "pypi-minilm-25k"
if not REAL.exists():
    REAL = Path("/work/shared/data/pypi-minilm-25k")
TOP = 10


@dataclass
class Dataset:
    name: str
    metric: str
    base: np.ndarray  # (n, d) float32
    queries: np.ndarray  # (q, d) float32
    gt: np.ndarray  # (q, >=10) row positions in base
    ids: list[str]  # id of each base row


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


# ------------------------------------------------------------------ data


def load_real() -> Dataset:
    def mat(path: Path) -> tuple[list[str], np.ndarray]:
        t = pq.read_table(path, columns=["id", "values"])
        col = t.column("values").combine_chunks()
        x = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32).reshape(len(col), -1)
        return t.column("id").to_pylist(), x

    parts = [mat(p) for p in sorted((REAL / "base").glob("*.parquet"))]
    ids = [i for p in parts for i in p[0]]
    base = np.concatenate([p[1] for p in parts])
    _, queries = mat(REAL / "queries.parquet")
    gt = np.load(REAL / "gt.npz")["idx"]
    return Dataset("pypi-minilm-25k", "cosine", base, queries, gt, ids)


def exact_l2(base: np.ndarray, queries: np.ndarray, k: int = TOP) -> np.ndarray:
    sq = np.einsum("ij,ij->i", base, base)
    out = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), 256):
        q = queries[s : s + 256]
        d = sq[None, :] - 2.0 * (q @ base.T)
        part = np.argpartition(d, k, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1)
        out[s : s + 256] = np.take_along_axis(part, order, axis=1)
    return out


def load_synthetic(n: int, d: int = 128, nq: int = 1000, seed: int = 7) -> Dataset:
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = f"synth-{n}x{d}-s{seed}"
    xf, qf, gf = CACHE / f"{tag}.base.npy", CACHE / f"{tag}.queries.npy", CACHE / f"{tag}.gt.npy"
    if xf.exists() and qf.exists() and gf.exists():
        base, queries, gt = np.load(xf), np.load(qf), np.load(gf)
    else:
        rng = np.random.default_rng(seed)
        centers = rng.standard_normal((1024, d)).astype(np.float32)
        labels = rng.integers(0, len(centers), n + nq)
        data = centers[labels] + rng.standard_normal((n + nq, d), dtype=np.float32)
        base, queries = np.ascontiguousarray(data[:n]), np.ascontiguousarray(data[n:])
        t = time.perf_counter()
        gt = exact_l2(base, queries)
        print(f"  ground truth for {tag}: {time.perf_counter() - t:.1f} s")
        for path, arr in ((xf, base), (qf, queries), (gf, gt)):
            np.save(path, arr)
    return Dataset(tag, "euclidean", base, queries, gt, [f"v{i}" for i in range(len(base))])


def build_namespace(ds: Dataset) -> tuple[Store, IndexSpec, str]:
    """Write ds into a local store under .cache (once)."""
    store = Store(str(CACHE / f"store-{ds.name}"))
    spec = IndexSpec(name="bench", dimension=ds.base.shape[1], metric=ds.metric)
    ns = "ns"
    m = manifests.load_namespace(store, spec.name, ns)
    if m is None or m.record_count != len(ds.base):
        if m is not None:
            manifests.delete_namespace(store, spec.name, ns)
        t = time.perf_counter()
        table = pa.table({"id": pa.array(ds.ids, pa.string()), "values": fixed_list(ds.base)})
        m = write_namespace(store, spec, ns, table)
        print(
            f"  wrote namespace {ds.name}: {len(m.clusters)} clusters in {time.perf_counter() - t:.1f} s"
        )
    return store, spec, ns


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
    if spec.metric == "euclidean":
        gt = exact_l2(base, queries)
    else:
        b = base / np.linalg.norm(base, axis=1, keepdims=True) if spec.metric == "cosine" else base
        s = queries @ b.T
        gt = np.argsort(-s, axis=1)[:, :TOP]
    ds = Dataset(f"{index}/{namespace}", spec.metric, base, queries.astype(np.float32), gt, ids)
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


def bench_ours(
    reader: Reader, ds: Dataset, ns: str, grid: list[int | None], n_single: int
) -> list[Row]:
    pos = {id_: i for i, id_ in enumerate(ds.ids)}
    rows = []
    for p in grid:
        secs, res = timed_best(lambda p=p: reader.query_batch(ds.queries, TOP, ns, nprobe=p), 2)
        r_b = recall([[pos[i] for i, _ in hits] for hits in res], ds.gt)
        lat, found = [], []
        for qi in range(n_single):
            v = ds.queries[qi]
            t = time.perf_counter()
            out = reader.query(namespace=ns, vector=v, top_k=TOP, nprobe=p)
            lat.append(time.perf_counter() - t)
            found.append([pos[m.id] for m in out.matches])
        rows.append(
            Row(
                "vecstore",
                "default" if p is None else str(p),
                r_b,
                len(ds.queries) / secs,
                recall(found, ds.gt[:n_single]),
                n_single / sum(lat),
                pctl(lat, 50),
                pctl(lat, 99),
            )
        )
        print_row(rows[-1])
    return rows


def bench_faiss(ds: Dataset, nlist: int, grid: list[int], n_single: int) -> list[Row]:
    import faiss

    d = ds.base.shape[1]
    if ds.metric == "euclidean":
        quant: Any = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_L2)
        base, queries = ds.base, ds.queries
    else:
        quant = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
        base = ds.base / np.linalg.norm(ds.base, axis=1, keepdims=True)
        queries = ds.queries / np.linalg.norm(ds.queries, axis=1, keepdims=True)
        if ds.metric == "dotproduct":
            base, queries = ds.base, ds.queries
    t = time.perf_counter()
    index.train(np.ascontiguousarray(base, np.float32))
    index.add(np.ascontiguousarray(base, np.float32))
    print(f"  faiss IVFFlat {nlist}: train + add {time.perf_counter() - t:.1f} s")
    queries = np.ascontiguousarray(queries, np.float32)
    rows = []
    for p in grid:
        index.nprobe = p
        secs, (_, idx) = timed_best(lambda: index.search(queries, TOP), 2)
        r_b = recall(idx.tolist(), ds.gt)
        lat, found = [], []
        for qi in range(n_single):
            t = time.perf_counter()
            _, one = index.search(queries[qi : qi + 1], TOP)
            lat.append(time.perf_counter() - t)
            found.append(one[0].tolist())
        rows.append(
            Row(
                "faiss",
                str(p),
                r_b,
                len(queries) / secs,
                recall(found, ds.gt[:n_single]),
                n_single / sum(lat),
                pctl(lat, 50),
                pctl(lat, 99),
            )
        )
        print_row(rows[-1])
    return rows


HEADER = (
    f"{'engine':<9} {'nprobe':>7} {'recall(b)':>9} {'QPS batch':>10} "
    f"{'recall(1)':>9} {'QPS single':>10} {'p50 ms':>7} {'p99 ms':>7}"
)


def print_row(r: Row) -> None:
    print(
        f"{r.engine:<9} {r.nprobe:>7} {r.recall_batch:>9.4f} {r.qps_batch:>10.0f} "
        f"{r.recall_single:>9.4f} {r.qps_single:>10.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f}",
        flush=True,
    )


def best_at(rows: list[Row], floor: float, batch: bool) -> Row | None:
    ok = [r for r in rows if (r.recall_batch if batch else r.recall_single) >= floor]
    if not ok:
        return None
    return max(ok, key=lambda r: r.qps_batch if batch else r.qps_single)


def summary(ours: list[Row], faiss_rows: list[Row], floor: float = 0.95) -> dict[str, Any]:
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
            f"{'-' if ratio is None else f'{ratio:.2f}x'}"
        )
    return out


def fetch_latency(reader: Reader, ds: Dataset, ns: str, reps: int = 20) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    lat = []
    for r in range(reps + 1):
        ids = [ds.ids[i] for i in rng.choice(len(ds.ids), 100, replace=False)]
        t = time.perf_counter()
        res = reader.fetch(ids, namespace=ns)
        dt = time.perf_counter() - t
        assert len(res.vectors) == 100
        if r == 0:
            cold = dt
            # warm: the same ids again, then fresh random ids over a warm cache
            t = time.perf_counter()
            reader.fetch(ids, namespace=ns)
            continue
        lat.append(dt)
    return cold * 1e3, pctl(lat, 50)


def warm(reader: Reader, ds: Dataset, ns: str, k: int) -> None:
    reader.query_batch(ds.queries[:64], TOP, ns, nprobe=k)


def run_dataset(
    ds: Dataset,
    store: Store,
    spec: IndexSpec,
    ns: str,
    grid: list[int],
    n_single: int,
    fetch: bool,
) -> dict[str, Any]:
    print(
        f"\n== {ds.name}: {ds.base.shape[0]:,} x {ds.base.shape[1]} {ds.metric}, "
        f"{len(ds.queries)} queries (batch), {n_single} single =="
    )
    reader = Reader(store, spec)
    state = reader.namespace_state(ns)
    assert state is not None
    k = state.k
    grid = sorted({p for p in grid if p <= k} | ({k} if k <= 64 else set()))
    warm(reader, ds, ns, k)
    print(f"  clusters: {k}")
    print(HEADER)
    ours = bench_ours(reader, ds, ns, [None, *grid], n_single)
    theirs = bench_faiss(ds, k, grid, n_single)
    result: dict[str, Any] = {
        "dataset": ds.name,
        "clusters": k,
        "rows": [r.__dict__ for r in ours + theirs],
    }
    result["summary"] = summary(ours, theirs)
    if fetch:
        cold, warm_ms = fetch_latency(reader, ds, ns)
        print(f"  fetch 100 ids: first call {cold:.1f} ms, warm p50 {warm_ms:.1f} ms")
        result["fetch_ms"] = {"first": cold, "warm_p50": warm_ms}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="200k synthetic vectors instead of 1M")
    ap.add_argument("--threads", type=int, default=2, help="BLAS / OpenMP threads (both engines)")
    ap.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--store", help="benchmark an existing store URI instead of the synthetic set")
    ap.add_argument("--index", default="bench")
    ap.add_argument("--namespace", default="ns")
    ap.add_argument("--json", help="also write the results as JSON here")
    opts = ap.parse_args()

    import faiss
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    faiss.omp_set_num_threads(opts.threads)
    results = []
    with threadpool_limits(opts.threads):
        print(f"threads: {opts.threads} (faiss OpenMP and numpy BLAS)")
        if not opts.skip_real:
            ds = load_real()
            store, spec, ns = build_namespace(ds)
            results.append(
                run_dataset(ds, store, spec, ns, [1, 2, 3, 4, 6, 8, 10], opts.single, False)
            )
        if opts.store:
            ds, store, spec = from_store(opts.store, opts.index, opts.namespace, 1000)
            results.append(
                run_dataset(
                    ds,
                    store,
                    spec,
                    opts.namespace,
                    [1, 2, 4, 8, 16, 32, 64, 128],
                    opts.single,
                    True,
                )
            )
        elif not opts.skip_synthetic:
            ds = load_synthetic(200_000 if opts.quick else 1_000_000)
            store, spec, ns = build_namespace(ds)
            results.append(
                run_dataset(ds, store, spec, ns, [1, 2, 4, 8, 16, 32, 64, 128], opts.single, True)
            )
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1, default=float))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
