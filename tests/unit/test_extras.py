"""Optional dependencies (issue 8 item 6): the extras in pyproject.toml match
vecstore/extras.py; without an extra, the base install still reads and
queries a local store, and a cloud store or an import job says in one line
which extra to install. "Not installed" is simulated in a subprocess by a
meta-path finder that refuses the extras' modules (and in-process by
``sys.modules[name] = None``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from segwriter import records_to_table, write_namespace

from vecstore import extras
from vecstore.api import VecStore
from vecstore.errors import MissingExtraError
from vecstore.storage import Store

ROOT = Path(__file__).resolve().parents[2]
HINTS = {
    "s3://bucket/dir": 's3:// needs the s3 extra: pip install "vecstore[s3]"',
    "gs://bucket/dir": 'gs:// needs the gcs extra: pip install "vecstore[gcs]"',
    "az://container/dir": 'az:// needs the azure extra: pip install "vecstore[azure]"',
    "abfs://container/dir": 'abfs:// needs the azure extra: pip install "vecstore[azure]"',
    "https://acct1.blob.core.windows.net/container/dir": (
        'https://ACCOUNT.blob.core.windows.net needs the azure extra: pip install "vecstore[azure]"'
    ),
}
# every module an extra brings (the blocked "not installed" world)
BLOCKED = ("s3fs", "gcsfs", "adlfs", "azure", "dask", "distributed", "sklearn", "botocore")


def _pyproject() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]  # type: ignore[no-any-return]


def test_pyproject_extras_match_the_extras_module() -> None:
    project = _pyproject()
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    for extra in (*extras.EXTRAS, "server", "all", "test", "bench"):
        assert extra in optional, extra
    everything = optional["all"][0]
    for extra in (*extras.EXTRAS, "server"):
        assert extra in everything.split("[", 1)[1], f"[all] lacks {extra}"
    base = " ".join(project["dependencies"])  # type: ignore[arg-type]
    for heavy in ("s3fs", "gcsfs", "adlfs", "dask", "scikit-learn", "starlette"):
        assert heavy not in base, f"{heavy} is a base dependency"
    assert "[all,test,bench]" in (ROOT / "Makefile").read_text()  # make install: everything


@pytest.mark.parametrize(("uri", "hint"), HINTS.items())
def test_missing_backend_module_gives_a_one_line_hint(
    uri: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("s3fs", "gcsfs", "adlfs"):
        monkeypatch.setitem(sys.modules, module, None)  # "not installed"
    with pytest.raises(MissingExtraError) as info:
        Store(uri, {"anon": True})
    assert str(info.value) == hint
    assert isinstance(info.value, ImportError)


def test_has_module() -> None:
    assert extras.has_module("json")
    assert not extras.has_module("vecstore_no_such_module")


_BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""

_BASE_INSTALL = """
import json, sys
import vecstore
from vecstore import VecStore
from vecstore.errors import MissingExtraError
from vecstore.storage import Store

out = {{}}
vs = VecStore({root!r})
index = vs.Index("docs")
res = index.query(vector=[1.0, 0.0, 0.0, 0.0], top_k=2)
out["query"] = [m.id for m in res.matches]
out["fetch"] = sorted(index.fetch(["r0", "r3"]).vectors)
hints = {{}}
for uri in {uris!r}:
    try:
        Store(uri, {{"anon": True}})
    except MissingExtraError as exc:
        hints[uri] = str(exc)
out["hints"] = hints
try:
    index.start_import(uri={src!r})
except MissingExtraError as exc:
    out["import"] = str(exc)
out["jobs"] = [j.id for j in index.list_imports()]
out["loaded"] = sorted({{m.split(".")[0] for m in sys.modules}} & set({blocked!r}))
print(json.dumps(out))
"""


def test_base_install_reads_queries_and_hints(tmp_path: Path) -> None:
    """Without any extra: a local store opens and answers queries and
    fetches; each cloud scheme and an import job give their one-line hint,
    and the refused import leaves no job record behind."""
    root = tmp_path / "store"
    vs = VecStore(str(root))
    vs.create_index(name="docs", dimension=4, metric="cosine")
    spec = vs.describe_index("docs")
    records = [
        {"id": f"r{i}", "values": [1.0 if j == i % 4 else 0.0 for j in range(4)]} for i in range(8)
    ]
    write_namespace(vs.store, spec, "", records_to_table(records, spec))
    (tmp_path / "src").mkdir()
    script = _BLOCKER.format(blocked=BLOCKED) + _BASE_INSTALL.format(
        root=str(root), uris=list(HINTS), src=str(tmp_path / "src"), blocked=BLOCKED
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VECSTORE_RUNNER", None)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(out["query"]) == ["r0", "r4"]
    assert out["fetch"] == ["r0", "r3"]
    assert out["hints"] == HINTS
    assert out["import"] == 'An import job needs the dask extra: pip install "vecstore[dask]"'
    assert out["jobs"] == []
    assert out["loaded"] == []
