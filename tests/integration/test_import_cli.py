"""The `vecstore` CLI end to end, as a scheduler would run it: `vecstore import
URI --index NAME --wait --store STORE` exits 0 on Completed and non-zero on
Failed, and the jobs show in `vecstore imports list`. Each import runs in the
CLI's own process with its own LocalCluster."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from datagen import VENV_BIN, dense_import

pytestmark = pytest.mark.dask

CLI = str(VENV_BIN / "vecstore")


def vecstore(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_cli_import_exit_codes_and_listing(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    src = tmp_path / "import"
    dense_import(src, {"a": 3000, "__default__": 1000}, dim=8, files=2)
    empty = tmp_path / "empty"
    empty.mkdir()

    r = vecstore("indexes", "create", "docs", "--dimension", "8", "--store", store)
    assert r.returncode == 0, r.stderr

    ok = vecstore("import", str(src), "--index", "docs", "--wait", "--no-progress", "--store", store)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Completed" in ok.stdout

    failed = vecstore("import", str(empty), "--index", "docs", "--wait", "--no-progress",
                      "--store", store)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert failed.returncode == 1  # docs/cli.md: 1 = the import Failed
    assert "No Parquet files found under" in failed.stdout + failed.stderr

    again = vecstore("import", str(src), "--index", "docs", "--wait", "--error-mode", "abort",
                     "--no-progress", "--store", store)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "already exists" in again.stdout + again.stderr

    listing = vecstore("imports", "list", "--index", "docs", "--all", "--json", "--store", store)
    assert listing.returncode == 0, listing.stderr
    jobs = json.loads(listing.stdout)
    assert [(j["uri"], j["status"]) for j in jobs] == [
        (str(src), "Failed"),
        (str(empty), "Failed"),
        (str(src), "Completed"),
    ]
    assert jobs[2]["records_imported"] == 4000 and jobs[2]["percent_complete"] == 100
    assert jobs[1]["error"] == (
        f'No Parquet files found under "{empty}". Files must be stored with the specified bucket '
        "prefix."
    )
    assert jobs[0]["error"] == (
        'The namespace "__default__" already exists. Imports are only allowed into nonexistent '
        "namespaces."
    )
    text = vecstore("imports", "list", "--index", "docs", "--store", store)
    assert text.returncode == 0 and all(j["id"] in text.stdout for j in jobs)
    stats = vecstore("stats", "--index", "docs", "--json", "--store", store)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_vector_count"] == 4000
