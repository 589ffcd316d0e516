"""Numeric kernels of the query executors: scoring that never leaves the
calling thread (unless the work is large enough to pay for threads), and a
reusable per-thread score buffer.

OpenBLAS runs a gemv on one thread below 9,216 matrix elements and a gemm
below 262,144 multiply-adds (``GEMM_MULTITHREAD_THRESHOLD`` 4), and on all
its threads above. Threads cost synchronisation on every call and stall when
the cores are shared with other processes (docs/query.md measured 4-10x
slowdowns for single queries). The kernels below view a matrix as a stack of
row blocks each under those thresholds and run them all with one batched
``matmul`` call from C: single-threaded BLAS speed without touching the
process-wide BLAS thread setting.
"""

from __future__ import annotations

import threading

import numpy as np

_NP_VECDOT = getattr(np, "vecdot", None)
_LOCAL = threading.local()

SINGLE_THREAD_GEMV = 9_215  # elements of one gemv that OpenBLAS keeps on one thread
MIN_STACK_ROWS = 32  # narrower gemv blocks: numpy's vecdot loop is as fast
SINGLE_THREAD_GEMM = 262_143  # multiply-adds of one gemm that OpenBLAS keeps on one thread
MIN_STACK_GEMM_ROWS = 16  # thinner gemm blocks lose to one threaded gemm


def scratch(n: int) -> np.ndarray:
    """A float32 buffer of ``n`` for this thread's single queries, reused:
    no allocation (and no page faults for large ones) per query. Valid until
    the thread's next call."""
    buf: np.ndarray | None = getattr(_LOCAL, "buf", None)
    if buf is None or len(buf) < n:
        buf = np.empty(max(n, 4096), dtype=np.float32)
        _LOCAL.buf = buf
    return buf[:n]


def vecdot(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise dot products ``x @ q`` on the calling thread (a new array)."""
    out = np.empty(len(x), dtype=np.float32)
    matvec_into(x, q, out)
    return out


def matvec_into(x: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = x @ q`` on the calling thread only.

    For short rows (up to ~288 dimensions) the rows are viewed as a stack of
    blocks small enough for a single-threaded BLAS gemv each, run by one
    batched ``matmul``: ~20% faster than ``vecdot``'s per-row dot products at
    128 dimensions (the speed of FAISS's own scan loop). Longer rows use
    numpy's ``vecdot``."""
    n, d = x.shape
    rows = SINGLE_THREAD_GEMV // max(d, 1)
    if (
        rows >= MIN_STACK_ROWS
        and n >= 8 * rows
        and x.flags.c_contiguous
        and out.flags.c_contiguous  # reshaped below: must stay a view
    ):
        m = n - n % rows
        np.matmul(x[:m].reshape(-1, rows, d), q, out=out[:m].reshape(-1, rows))
        if m < n:
            _vecdot_plain(x[m:], q, out[m:])
        return
    _vecdot_plain(x, q, out)


def _vecdot_plain(x: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    if _NP_VECDOT is not None:
        _NP_VECDOT(x, q, out=out)
    else:
        np.einsum("ij,j->i", x, q, out=out)


def threaded_matvec_into(x: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = x @ q`` with BLAS gemv (multi-threaded above its threshold)."""
    np.matmul(x, q, out=out)


def gemm_single_threaded(m: int, d: int) -> bool:
    """Whether :func:`gemm_t` of ``m`` rows of ``d`` keeps to one thread."""
    return m == 1 or SINGLE_THREAD_GEMM // max(m * d, 1) >= MIN_STACK_GEMM_ROWS


def gemm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` (m, n) for a (m, d) and b (n, d) row-major.

    With up to ~128 rows in ``a`` (at 128 dimensions; fewer for longer
    vectors) the product runs single-threaded, as a stack of ``b`` row blocks
    each small enough for BLAS to stay on one thread, in one batched
    ``matmul`` call: threading products of a few milliseconds costs more in
    synchronisation than it saves, and OpenBLAS's threads stall when the
    cores are shared (a 1,000-query batch at nprobe 1 took 2x longer with 2
    BLAS threads than with 1 on a busy machine). Larger products are
    compute-bound and use the multi-threaded GEMM."""
    m, d = a.shape
    n = len(b)
    rows = SINGLE_THREAD_GEMM // max(m * d, 1)
    if rows < MIN_STACK_GEMM_ROWS or n < 2 * rows or not b.flags.c_contiguous:
        # many rows in a (e.g. a batch of queries against the centroids):
        # stack a's rows instead
        per = SINGLE_THREAD_GEMM // max(n * d, 1)
        if per >= 4 and m >= 2 * per and a.flags.c_contiguous:
            top = m - m % per
            s = np.empty((m, n), dtype=np.float32)
            np.matmul(a[:top].reshape(-1, per, d), b.T, out=s[:top].reshape(-1, per, n))
            if top < m:
                s[top:] = a[top:] @ b.T
            return s
        out: np.ndarray = a @ b.T
        return out
    full = n - n % rows
    s = np.empty((m, n), dtype=np.float32)
    blocks = np.matmul(b[:full].reshape(-1, rows, d), a.T)  # (blocks, rows, m)
    s[:, :full] = blocks.reshape(full, m).T
    if full < n:
        s[:, full:] = a @ b[full:].T
    return s
