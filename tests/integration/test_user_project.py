"""One installed top-level package (issue 8 item 5).

A user project with its own ``schemas.py`` (FastAPI-style models) and
``pipelines/`` package imports and runs vecstore: an import of a small
Parquet directory on a real LocalCluster, then a query, in a subprocess whose
working directory is the project (so its modules come first on ``sys.path``,
in the driver and in the Dask workers). vecstore is put on the path the way
an installation does it: a directory holding only ``vecstore``.

And the built wheel holds nothing at top level but ``vecstore`` (with
``vecstore/schemas`` and ``vecstore/pipelines`` as real files, not links).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from datagen import dense_table, vectors, write

ROOT = Path(__file__).resolve().parents[2]

USER_SCHEMAS = '''
"""The user's API models (every FastAPI app has a schemas.py)."""
from pydantic import BaseModel


class Hit(BaseModel):
    id: str
    score: float
'''

USER_PIPELINES = '''
"""The user's own ETL pipelines."""
STEPS = ["extract", "load"]
'''

APP = """
import json
import sys

import pipelines
import schemas


def modules_named(names):
    # loaded modules of those top-level names, with their files
    return {{
        m: getattr(sys.modules[m], "__file__", None)
        for m in sorted(sys.modules)
        if m.split(".")[0] in names
    }}


def main():
    from vecstore import VecStore
    from vecstore.runners import close_runners, get_runner

    import vecstore

    vs = VecStore({store!r})
    vs.create_index(name="docs", dimension=4, metric="euclidean")
    index = vs.Index("docs")
    job = index.wait_for_import(index.start_import(uri={src!r}).id, timeout=180)
    res = index.query(namespace="books", vector={query!r}, top_k=3)
    hits = [schemas.Hit(id=m.id, score=m.score) for m in res.matches]
    workers = get_runner().client.run(modules_named, ("schemas", "pipelines"))
    close_runners()
    print(json.dumps({{
        "status": job.status,
        "imported": job.records_imported,
        "error": job.error,
        "hits": [h.id for h in hits],
        "vecstore": vecstore.__file__,
        "vecstore.schemas": sys.modules["vecstore.schemas"].__file__,
        "schemas": schemas.__file__,
        "pipelines": pipelines.__file__,
        "steps": pipelines.STEPS,
        "driver_modules": modules_named(("schemas", "pipelines")),
        "worker_modules": {{m: f for mods in workers.values() for m, f in mods.items()}},
    }}))


if __name__ == "__main__":
    main()
"""


@pytest.mark.dask
def test_a_user_project_with_its_own_schemas_and_pipelines(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "schemas.py").write_text(USER_SCHEMAS)
    (project / "pipelines" / "__init__.py").write_text(USER_PIPELINES)
    site = tmp_path / "site"  # what an installation puts on sys.path: vecstore only
    site.mkdir()
    (site / "vecstore").symlink_to(ROOT / "vecstore", target_is_directory=True)

    src = tmp_path / "data"
    x = vectors(60, 4, seed=3)
    ids = [f"v{i}" for i in range(60)]
    write(src / "books" / "part-0.parquet", dense_table(ids[:30], x[:30]))
    write(src / "books" / "part-1.parquet", dense_table(ids[30:], x[30:]))
    app = APP.format(store=str(tmp_path / "store"), src=str(src), query=x[7].tolist())
    (project / "app.py").write_text(textwrap.dedent(app))

    env = {**os.environ, "PYTHONPATH": str(site), "VECSTORE_WORKERS": "1"}
    for var in ("VECSTORE_RUNNER", "VECSTORE_SCHEDULER"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["status"], out["imported"]) == ("Completed", 60), out
    assert out["hits"][0] == "v7"
    assert out["vecstore"] == str(site / "vecstore" / "__init__.py")
    assert out["vecstore.schemas"] == str(site / "vecstore" / "schemas" / "__init__.py")
    # the user's modules are the user's, and vecstore never imported them
    assert out["schemas"] == str(project / "schemas.py")
    assert out["pipelines"] == str(project / "pipelines" / "__init__.py")
    assert out["steps"] == ["extract", "load"]
    # (a spawned worker re-imports app.py, and with it the user's modules)
    user = {"pipelines": out["pipelines"], "schemas": out["schemas"]}
    assert out["driver_modules"] == user
    assert out["worker_modules"] in (user, {})


def _build_wheel(tmp_path: Path) -> Path:
    """``pip wheel . --no-deps`` of a copy of the repository (links kept)."""
    tree = tmp_path / "repo"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("vecstore", "schemas", "pipelines"):
        shutil.copytree(ROOT / name, tree / name, symlinks=True, ignore=skip)
    assert (tree / "vecstore" / "schemas").is_symlink()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "-w", "dist", "-q"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tree / "dist").glob("vecstore-*.whl")
    return wheel


def test_the_wheel_installs_only_vecstore(tmp_path: Path) -> None:
    pytest.importorskip("wheel", reason="setuptools < 70.1 builds wheels with the wheel package")
    with zipfile.ZipFile(_build_wheel(tmp_path)) as whl:
        infos = whl.infolist()
        names = [i.filename for i in infos]
        top = {n.split("/", 1)[0] for n in names}
        (dist_info,) = top - {"vecstore"}
        assert dist_info.endswith(".dist-info")
        assert whl.read(f"{dist_info}/top_level.txt").decode().split() == ["vecstore"]
        for must in (
            "vecstore/__init__.py",
            "vecstore/storage/registry.py",
            "vecstore/schemas/__init__.py",
            "vecstore/schemas/models.py",
            "vecstore/schemas/py.typed",
            "vecstore/pipelines/__init__.py",
            "vecstore/pipelines/runner.py",
            "vecstore/py.typed",
        ):
            assert must in names, must
        for info in infos:  # real files, not links
            assert not stat.S_ISLNK(info.external_attr >> 16), info.filename
        assert whl.read("vecstore/schemas/models.py") == (ROOT / "schemas" / "models.py").read_bytes()


def test_the_installed_distribution_names_only_vecstore() -> None:
    dist = importlib.metadata.distribution("vecstore")
    assert (dist.read_text("top_level.txt") or "").split() == ["vecstore"]
