"""Quality figures at the end of an import (issue 12 item 4, docs/quality.md):
computed by a task on the Dask workers after the commit and kept in the job
record's ``report["quality"]``; a failure of the estimate never fails the
import. Real LocalCluster, real Parquet, local store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datagen import clustered_vectors, dense_table, run_import, split_write

from vecstore import layout, manifests, quality
from vecstore.api import Index
from vecstore.cli.app import main as cli_main
from vecstore.pipelines import tasks

pytestmark = pytest.mark.dask

DIM = 128


def _source(src: Path, sizes: dict[str, int]) -> None:
    for k, (ns, n) in enumerate(sorted(sizes.items())):
        x = clustered_vectors(n, DIM, 30, seed=k)
        split_write(src / ns, dense_table([f"{ns}-{i}" for i in range(n)], x), 2)


def test_an_import_record_has_plausible_quality_figures(
    make_index: Callable[..., Index],
    src: Path,
    store_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = make_index("q", dimension=DIM, metric="euclidean")
    _source(src, {"big": 20_000, "small": 600})
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    q = (job.report or {})["quality"]
    assert q["namespaces"] == 2 and set(q["by_namespace"]) == {"big", "small"}
    big = q["by_namespace"]["big"]
    m = manifests.load_namespace(index.store, "q", "big")
    assert m is not None
    sizes = [c.row_count for c in m.clusters]
    assert big["records"] == 20_000 == sum(sizes) and big["clusters"] == len(sizes)
    assert (big["largest"], big["smallest"]) == (max(sizes), min(sizes))
    assert big["ratio"] == pytest.approx(max(sizes) / np.mean(sizes), abs=1e-3)
    assert big["nprobe"] == quality.default_probe(len(sizes)) < len(sizes)
    assert 0.9 <= big["recall_at_10"] <= 1.0  # well separated clusters
    small = q["by_namespace"]["small"]
    assert small["recall_at_10"] == 1.0 and small["exact"]  # one cluster: exact scan
    assert q["recall_namespaces"] == 2 and q["seconds"] >= 0
    # kept in the stored record, shown by the CLI
    stored = json.loads(index.store.read_bytes(layout.job_key("q", job.id)))
    assert stored["report"]["quality"] == q
    assert index.describe_import(job.id).report == job.report
    assert (
        cli_main(["--store", str(store_root), "imports", "describe", job.id, "--index", "q"]) == 0
    )
    out = capsys.readouterr().out
    assert "recall@10" in out and "RECALL@10" in out and "nprobe" in out


def test_a_failing_estimate_does_not_fail_the_import(
    make_index: Callable[..., Index], src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index("q", dimension=DIM, metric="cosine")
    _source(src, {"a": 3000})

    # the task itself raises on the worker (the function is pickled by value)
    def boom(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("estimate exploded")

    monkeypatch.setattr(tasks, "report_figures", boom)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert job.records_imported == 3000
    err = (job.report or {})["quality"]["error"]
    assert "RuntimeError" in err and "estimate exploded" in err
    assert index.describe_import(job.id).report == job.report
    assert index.describe_index_stats().namespaces["a"].vector_count == 3000


def test_a_slow_estimate_is_abandoned(
    make_index: Callable[..., Index], src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index("q", dimension=DIM)
    _source(src, {"a": 3000})
    monkeypatch.setattr(quality, "TIMEOUT_SECONDS", 0.0)
    job = run_import(index, src)
    assert job.status == "Completed", job.error
    assert "TimeoutError" in (job.report or {})["quality"]["error"]
