"""Quality figures of a clustered namespace: cluster balance and estimated recall@10.

- :func:`balance`: largest / mean / smallest cluster (rows) of a manifest or
  of an assignment.
- :func:`estimate_recall`: recall@10 at the default ``nprobe`` on a sample of
  the namespace's own vectors (docs/rebuild.md "Recall estimate"). A sample
  of at most ``SAMPLE`` records is drawn; ``QUERIES`` of them are the
  queries and are *held out* of the searched set (a query never finds
  itself). The exact nearest sample rows of each query are computed over
  the rest of the sample (the top ``10 x sample / rows``, within 1..10:
  :func:`depth`); the approximate ones are what the cluster search finds
  among the same rows: the rows of the ``nprobe`` clusters whose centroids
  score best for the query (the query path's default ``nprobe`` for the
  namespace's k), plus rows that are in no cluster (the log tail, searched
  exactly by the query path). Restricting both to the sample estimates, per
  true neighbour, the probability that its cluster is probed -- which is
  what the default ``nprobe`` loses -- at a cost of O(queries x sample x d).
- :func:`import_report`: the same figures (after only) for the namespaces of
  an import or load, from the committed manifests and a bounded sample of
  row groups of the largest namespaces (docs/quality.md); its steps run as
  Dask tasks by the import driver (an estimate per namespace), kept in the
  job record's ``report["quality"]``.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from vecstore import manifests
from vecstore.errors import VecstoreError
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest, RecordLayout
from vecstore.schemas.metrics import Metric
from vecstore.segments import dense_matrix, read_deleted
from vecstore.storage import Store

log = logging.getLogger("vecstore.quality")

SAMPLE = 20_000
QUERIES = 200
TOP_K = 10


@dataclass(frozen=True, slots=True)
class Balance:
    clusters: int
    largest: int
    mean: float
    smallest: int

    @property
    def ratio(self) -> float:
        """Largest cluster / mean cluster (1.0: perfectly even)."""
        return float(self.largest / self.mean) if self.mean else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "clusters": self.clusters,
            "largest": self.largest,
            "mean": round(self.mean, 1),
            "smallest": self.smallest,
            "ratio": round(self.ratio, 3),
        }


def balance(sizes: list[int] | np.ndarray) -> Balance:
    """Balance of clusters of the given row counts (empty clusters skipped)."""
    # plain Python: most namespaces have one cluster or a few (10,000 tiny
    # ones: three numpy reductions each were 0.29 s of an import's commit)
    s = [int(x) for x in sizes if int(x) > 0]
    if not s:
        return Balance(0, 0, 0.0, 0)
    return Balance(len(s), max(s), sum(s) / len(s), min(s))


def default_probe(k: int) -> int:
    """Clusters the query path probes by default out of ``k`` (planner's rule)."""
    from vecstore.query.planner import EXACT_FRACTION, EXACT_MAX_CLUSTERS, default_nprobe

    if k <= EXACT_MAX_CLUSTERS:
        return k
    p = default_nprobe(k)
    return k if p / k >= EXACT_FRACTION else p


def _scores(metric: Metric, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Higher is nearer, in ``metric``."""
    if metric == Metric.COSINE:
        qn = Metric.COSINE.normalize_rows(q)
        xn = Metric.COSINE.normalize_rows(x)
        return np.asarray(qn @ xn.T)
    if metric == Metric.DOTPRODUCT:
        return np.asarray(q @ x.T)
    return np.asarray(2.0 * (q @ x.T) - np.einsum("ij,ij->i", x, x)[None, :])


def _top(scores: np.ndarray, k: int) -> list[set[int]]:
    k = min(k, scores.shape[1])
    if k <= 0:
        return [set() for _ in range(scores.shape[0])]
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return [set(row.tolist()) for row in idx]


def estimate_recall(
    x: np.ndarray,
    assignment: np.ndarray,
    centroids: np.ndarray | None,
    metric: Metric,
    *,
    seed: int = 0,
    sample: int = SAMPLE,
    queries: int = QUERIES,
    nprobe: int | None = None,
) -> float | None:
    """Estimated recall@10 at the default ``nprobe`` (see the module doc).

    ``assignment[i]``: the centroid row of record ``i``, or -1 for a record
    in no cluster (always found). None when there are too few records."""
    metric = Metric(metric)
    n = len(x)
    if n < queries + TOP_K or centroids is None or not len(centroids):
        return None
    rng = np.random.default_rng(seed)
    pick = rng.choice(n, min(n, sample), replace=False)
    q_idx, s_idx = pick[:queries], pick[queries:]
    q = np.ascontiguousarray(x[q_idx], dtype=np.float32)
    xs = np.ascontiguousarray(x[s_idx], dtype=np.float32)
    a = np.asarray(assignment)[s_idx]
    k = len(centroids)
    p = nprobe or default_probe(k)
    # the clusters each query probes: best centroids in the clustering space
    qc = metric.normalize_rows(q)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    cscore = qc @ c.T - 0.5 * np.einsum("ij,ij->i", c, c)[None, :]
    probed = np.argpartition(-cscore, min(p, k) - 1, axis=1)[:, : min(p, k)]
    return _recall(_scores(metric, q, xs), a, probed, population=n - len(q))


def depth(sampled: int, population: int) -> int:
    """Sample neighbours compared per query: ``10 x sampled / population``,
    within [1, 10] (docs/quality.md "Sample density"). In a sample of a
    fraction f of the rows, the j-th nearest sample row is about the
    (j / f)-th nearest row of the namespace: the true top 10 are the
    sample's top 10 f. Comparing the sample's top 10 instead would measure
    the recall of neighbours up to rank 10 / f (biased low, 0.47 against a
    true 0.60 at f = 2.5%, 200,000 x 128 Gaussian)."""
    if population <= 0:
        return TOP_K
    return int(max(1, min(TOP_K, round(TOP_K * sampled / population))))


def _recall(
    s: np.ndarray, a: np.ndarray, probed: np.ndarray, population: int | None = None
) -> float:
    """Share of each query's exact nearest sample rows (the columns of
    ``s``; :func:`depth` of them) that its approximate search finds: those
    whose cluster ``a[j]`` is one of the query's ``probed`` clusters (or -1:
    no cluster, searched exactly)."""
    kd = min(depth(int(s.shape[1]), population or int(s.shape[1])), int(s.shape[1]))
    exact = _top(s, kd)
    hits = 0
    for i in range(len(s)):
        allowed = np.isin(a, probed[i]) | (a < 0)
        si = np.where(allowed, s[i], -np.inf)
        got = _top(si[None, :], kd)[0]
        got = {j for j in got if allowed[j]}
        hits += len(got & exact[i])
    return round(hits / (len(s) * kd), 4) if kd else 0.0


# ------------------------------------------------- figures of an import or load
# (docs/quality.md): computed after the commit by Dask tasks (one per estimated
# namespace), bounded reads.
IMPORT_SAMPLE = 5_000  # searched rows read per namespace (whole row groups)
IMPORT_QUERIES = 100  # queries, from other row groups than the searched rows
QUERIES_PER_GROUP = 4  # queries taken from one row group
ROWS_PER_GROUP = 16  # rows kept of one row group: a sample spread over more clusters
READ_THREADS = 8
RECALL_NAMESPACES = 10  # the largest namespaces get a recall estimate (and detail)
MANIFEST_THREADS = 16
TIMEOUT_SECONDS = 120.0  # the driver waits this long for the task, then reports none


def _seed_of(seed: int, ns: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(ns.encode())) % (2**32)


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = np.asarray(values, dtype=np.float64)
    return {
        "min": round(float(v.min()), 4),
        "median": round(float(np.median(v)), 4),
        "max": round(float(v.max()), 4),
    }


def _short(exc: BaseException) -> str:
    msg = exc.message if isinstance(exc, VecstoreError) else str(exc)
    return f"{type(exc).__name__}: {msg}"[:300]


def _load_manifests(store: Store, spec: IndexSpec, names: Sequence[str]) -> dict[str, Manifest]:
    """The visible manifests of ``names`` that have one (read on a few threads)."""
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(store.io_threads(MANIFEST_THREADS), len(names)))) as pool:
        found = list(pool.map(lambda ns: manifests.load_namespace(store, spec.name, ns), names))
    return {ns: m for ns, m in zip(names, found, strict=True) if m is not None}


def namespace_balance(manifest: Manifest) -> dict[str, Any]:
    """Records and cluster balance of a namespace version (live rows, from its manifest)."""
    live = [c.row_count - c.deleted_count for c in manifest.clusters]
    return {"records": int(sum(live)), **balance(live).as_dict()}


def _sample_groups(
    store: Store, prefix: str, manifest: Manifest, want: int, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """Up to ``want`` distinct row groups of the namespace's cluster files,
    drawn with probability about proportional to their rows, and at most
    ``ROWS_PER_GROUP`` random rows of each: (cluster position, (rows, d)
    vectors) per group, deleted rows left out. Files are read by a few
    threads (footer, then the chosen row groups' vectors only)."""
    clusters = manifest.clusters
    live = np.array([max(0, c.row_count - c.deleted_count) for c in clusters], dtype=np.float64)
    if not live.sum():
        return []
    # draw (cluster, part) pairs; a part's rows are estimated (deltas share the delta rows)
    draws = rng.choice(len(clusters), size=want, p=live / live.sum())
    per_file: dict[tuple[int, int], int] = {}
    for pos in draws.tolist():
        c = clusters[pos]
        part = 0
        if c.deltas:
            seg_rows = max(0, c.row_count - c.delta_rows)
            w = np.array([seg_rows] + [c.delta_rows / len(c.deltas)] * len(c.deltas), np.float64)
            part = int(rng.choice(len(w), p=w / w.sum())) if w.sum() else 0
        per_file[(pos, part)] = per_file.get((pos, part), 0) + 1
    d = int(manifest.dimension or 0)
    seeds = rng.integers(0, 2**32, size=len(per_file)).tolist()

    def read(job: tuple[tuple[int, int], int, int]) -> list[tuple[int, np.ndarray]]:
        (pos, part), count, seed = job
        r = np.random.default_rng(seed)
        c = clusters[pos]
        got: list[tuple[int, np.ndarray]] = []
        with store.open_input(f"{prefix}/{c.parts()[part]}") as f:
            pf = pq.ParquetFile(f)
            groups = pf.metadata.num_row_groups
            starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(groups)])
            dead = _deleted_in(store, prefix, c, part) if c.deleted else None
            for g in sorted(r.choice(groups, size=min(count, groups), replace=False).tolist()):
                # one small row group: pyarrow's pool would only add hand-offs
                group = pf.read_row_group(g, columns=["values"], use_threads=False)
                x = dense_matrix(group.column("values"), d)
                rows = np.arange(len(x))
                if dead is not None and len(dead):
                    rows = rows[~np.isin(rows + starts[g], dead)]
                if len(rows) > ROWS_PER_GROUP:
                    rows = np.sort(r.choice(rows, ROWS_PER_GROUP, replace=False))
                if len(rows):
                    got.append((pos, np.ascontiguousarray(x[rows], dtype=np.float32)))
        return got

    jobs = [(key, n, sd) for (key, n), sd in zip(per_file.items(), seeds, strict=True)]
    # threads on a remote store only: on local disk the files were just
    # written (page cache) and 8 threads took twice the time of one (GIL)
    with ThreadPoolExecutor(max_workers=max(1, min(store.io_threads(READ_THREADS), len(jobs)))) as pool:
        return [g for part in pool.map(read, jobs) for g in part]


def _deleted_in(store: Store, prefix: str, c: ClusterEntry, part: int) -> np.ndarray:
    """Deleted row numbers of a cluster falling in part ``part``, relative to that part."""
    dead = read_deleted(store, f"{prefix}/{c.deleted}").astype(np.int64)
    offset = 0
    for rel in c.parts()[:part]:
        with store.open_input(f"{prefix}/{rel}") as f:
            offset += pq.ParquetFile(f).metadata.num_rows
    return dead - offset


def namespace_recall(
    store: Store,
    spec: IndexSpec,
    manifest: Manifest,
    *,
    seed: int = 0,
    sample: int = IMPORT_SAMPLE,
    queries: int = IMPORT_QUERIES,
) -> dict[str, Any]:
    """Estimated recall@10 of unfiltered queries at the default ``nprobe``
    on the namespace's own vectors, from a bounded sample (docs/quality.md):
    ``recall_at_10`` (None: not estimable), ``nprobe``, ``clusters``, and the
    ``queries`` / ``sampled`` rows used."""
    from vecstore.query.planner import build_state, probe_count, rank_clusters

    if spec.record_layout == RecordLayout.SPARSE or (
        not manifest.centroids and len(manifest.clusters) > 1
    ):  # one cluster needs no centroids (a packed tiny namespace): exact below
        return {"recall_at_10": None, "why": "no centroids"}
    state = build_state(store, manifest)
    k, p = state.k, probe_count(state, None)
    base: dict[str, Any] = {"nprobe": p, "clusters": k}
    if p >= k:  # the default query scans every cluster: exact
        return {"recall_at_10": 1.0, **base, "exact": True}
    rng = np.random.default_rng(seed)
    q_groups = max(1, -(-queries // QUERIES_PER_GROUP))
    want = max(1, -(-sample // ROWS_PER_GROUP)) + q_groups
    groups = _sample_groups(store, state.prefix, manifest, want, rng)
    order = rng.permutation(len(groups))
    # queries: a few rows of each of q_groups groups, none of which is searched
    # (a quarter of the groups at most when the namespace has few)
    q_groups = min(q_groups, max(1, len(groups) // 4))
    per_group = -(-queries // q_groups)
    q_parts: list[np.ndarray] = []
    for i in order[:q_groups]:
        x = groups[i][1]
        q_parts.append(x[rng.choice(len(x), min(len(x), per_group), replace=False)])
    rest = [groups[i] for i in order[q_groups:]]
    if not q_parts or not rest:
        return {"recall_at_10": None, **base, "why": "too few records"}
    q = np.concatenate(q_parts)[:queries]
    xs = np.concatenate([x for _, x in rest])
    a = np.concatenate([np.full(len(x), pos, np.int64) for pos, x in rest])
    if len(xs) < TOP_K:
        return {"recall_at_10": None, **base, "why": "too few records"}
    metric = Metric(spec.metric)
    probed = rank_clusters(state, metric.prepare_queries(q), state.nonempty, metric, p)[:, :p]
    population = max(len(xs), int(sum(c.row_count - c.deleted_count for c in manifest.clusters)))
    recall = _recall(_scores(metric, q, xs), a, probed, population=population)
    return {
        "recall_at_10": recall,
        **base,
        "queries": len(q),
        "sampled": len(xs),
        "depth": min(depth(len(xs), population), len(xs)),
    }


Figures = dict[str, dict[str, Any]]
"""Balance figures by namespace (:func:`namespace_balance`), recall merged in."""


def report_figures(
    store: Store,
    spec: IndexSpec,
    namespaces: Sequence[str],
    *,
    recall_namespaces: int = RECALL_NAMESPACES,
    balances: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Figures, list[str]]:
    """The first step of :func:`import_report`: every namespace's balance
    (from ``balances`` or its visible manifest) and the ``recall_namespaces``
    largest, which get a recall estimate (:func:`detail_recall`)."""
    names = list(dict.fromkeys(namespaces))
    wanted = set(names)
    given = {ns: dict(b) for ns, b in (balances or {}).items() if ns in wanted}
    mans = _load_manifests(store, spec, [ns for ns in names if ns not in given])
    figures = {
        ns: given[ns] if ns in given else namespace_balance(mans[ns])
        for ns in names
        if ns in given or ns in mans
    }
    largest = sorted(figures, key=lambda ns: (-int(figures[ns]["records"]), ns))
    return figures, largest[: max(0, recall_namespaces)]


def detail_recall(
    store: Store,
    spec: IndexSpec,
    part: tuple[Figures, list[str]],
    i: int,
    *,
    seed: int = 0,
    sample: int = IMPORT_SAMPLE,
    queries: int = IMPORT_QUERIES,
) -> tuple[str, dict[str, Any]] | None:
    """The recall estimate of the ``i``-th namespace of ``part``'s detail
    list (None past its end): (namespace, figures). An error is logged and
    leaves ``recall_at_10`` None with ``error``; this never raises for one
    namespace's data. One task each in an import, so the estimates run on
    every worker (10 namespaces of 100k records: 1.8 s in one task)."""
    _, detail = part
    if i >= len(detail):
        return None
    ns = detail[i]
    try:
        m = manifests.load_namespace(store, spec.name, ns)
        if m is None:
            raise VecstoreError(f'namespace "{ns}" has no visible manifest')
        r = namespace_recall(store, spec, m, seed=_seed_of(seed, ns), sample=sample, queries=queries)
    except Exception as exc:  # never fails the job: the figure is missing
        log.warning("recall estimate of namespace %r failed", ns, exc_info=True)
        r = {"recall_at_10": None, "error": _short(exc)}
    return ns, r


def assemble_report(
    part: tuple[Figures, list[str]], *recalls: tuple[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """The last step of :func:`import_report`: the summaries and the detail
    (``seconds``: 0, the caller times the whole)."""
    figures, detail = part
    got = {r[0]: r[1] for r in recalls if r is not None}
    shown = {ns: {**figures[ns], **got.get(ns, {})} for ns in detail}
    recall_values = [
        float(f["recall_at_10"]) for f in shown.values() if f.get("recall_at_10") is not None
    ]
    ratios = [float(f["ratio"]) for f in figures.values() if f["clusters"]]
    return {
        "namespaces": len(figures),
        "balance_ratio": _summary(ratios),
        "recall_at_10": _summary(recall_values),
        "recall_namespaces": len(recall_values),
        "by_namespace": shown,
        "seconds": 0.0,
    }


def import_report(
    store: Store,
    spec: IndexSpec,
    namespaces: Sequence[str],
    *,
    seed: int = 0,
    sample: int = IMPORT_SAMPLE,
    queries: int = IMPORT_QUERIES,
    recall_namespaces: int = RECALL_NAMESPACES,
    balances: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Quality figures of the visible versions of ``namespaces`` (an import's
    or a load's, after its commit), for the job record's ``report``:

    - ``namespaces``; ``balance_ratio`` (largest / mean cluster) and
      ``recall_at_10`` as ``{min, median, max}`` over the namespaces that
      have them (``recall_namespaces``: how many were estimated);
    - ``by_namespace``: records, balance (clusters, largest, mean,
      smallest, ratio), ``recall_at_10``, ``nprobe`` of the
      ``recall_namespaces`` largest namespaces (every one when fewer);
    - ``seconds``.

    Balance comes from the manifests (every namespace); recall reads a
    bounded sample of each of the largest namespaces only. An error in one
    namespace's estimate is logged and leaves its ``recall_at_10`` None
    (with ``error``); this function only raises if the manifests cannot be read.

    ``balances``: :func:`namespace_balance` of namespaces whose committed
    manifests the caller holds (an import's new namespaces): their manifests
    are not read again, only those of the namespaces estimated.

    In one process; the import driver runs the same three steps
    (:func:`report_figures`, :func:`detail_recall` per namespace,
    :func:`assemble_report`) as Dask tasks."""
    t0 = time.perf_counter()
    part = report_figures(
        store, spec, namespaces, recall_namespaces=recall_namespaces, balances=balances
    )
    recalls = [
        detail_recall(store, spec, part, i, seed=seed, sample=sample, queries=queries)
        for i in range(len(part[1]))
    ]
    return {**assemble_report(part, *recalls), "seconds": round(time.perf_counter() - t0, 3)}


__all__ = [
    "Balance",
    "Figures",
    "assemble_report",
    "detail_recall",
    "report_figures",
    "balance",
    "default_probe",
    "estimate_recall",
    "import_report",
    "namespace_balance",
    "namespace_recall",
]
