"""examples/hourly_load.py: ``run_load`` (what the cron line and the Airflow
task call) against a local store, with the real engine and a LocalCluster.

The second hour adds a file and a delete file: ``run_load`` over the whole
directory loads the new files only (the load history) and applies the delete.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datagen import dense_import, dense_table, vectors

from vecstore import VecStore

pytestmark = pytest.mark.dask

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hourly_load.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hourly_load", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hourly_load"] = module
    spec.loader.exec_module(module)
    return module


def test_imports_without_airflow_and_refuses_bad_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mod = example()
    if importlib.util.find_spec("airflow") is None:
        assert mod.dag is None
    with pytest.raises(SystemExit) as e:
        mod.main(["s3://b/d"])  # no --index
    assert e.value.code == 64
    assert "5 * * * *" in mod.__doc__  # the cron line is documented
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    assert "hourly_load.py" in capsys.readouterr().out


def test_run_load_twice_loads_each_file_once(tmp_path: Path) -> None:
    mod = example()
    store = str(tmp_path / "store")
    src = tmp_path / "export"
    dense_import(src, {"books": 600}, dim=8, files=2)
    vs = VecStore(store)
    vs.create_index("docs", dimension=8, metric="cosine")

    assert mod.run_load(str(src), "docs", store=store, timeout=300) == 0
    index = vs.Index("docs")
    assert index.describe_namespace("books").record_count == 600

    # the next hour: one more file (new ids and overwrites) and a delete file
    ids = [f"books-{i}" for i in range(590, 610)]
    pq.write_table(dense_table(ids, vectors(len(ids), 8, seed=7)), src / "books" / "hour2.parquet")
    (src / "books" / "deletes").mkdir()
    pq.write_table(
        pa.table({"id": ["books-0", "books-1"]}), src / "books" / "deletes" / "d.parquet"
    )
    assert mod.run_load(str(src), "docs", store=store, timeout=300) == 0
    assert index.describe_namespace("books").record_count == 600 + 10 - 2
    fetched = index.fetch(["books-0", "books-600", "books-595"], namespace="books")
    assert sorted(fetched.vectors) == ["books-595", "books-600"]

    # nothing new: the history skips every file, nothing changes
    assert mod.run_load(str(src), "docs", store=store, timeout=300) == 0
    assert index.describe_namespace("books").record_count == 608
