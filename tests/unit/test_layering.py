"""Dependencies point one way: vecstore.schemas <- vecstore <- vecstore.pipelines.

No module of ``vecstore`` (outside ``vecstore/pipelines``) nor of ``schemas``
imports ``vecstore.pipelines``; the one hand-off, ``vecstore/runners.py``,
finds the import runner by a name string, which is not an import statement.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIPELINES = ("vecstore.pipelines", "pipelines")


def _sources() -> list[Path]:
    """Every .py of the vecstore package and of schemas/, not of pipelines/."""
    out: list[Path] = []
    for root in (REPO / "vecstore", REPO / "schemas"):
        for dirpath, dirnames, filenames in os.walk(root):  # symlinks are not followed
            dirnames[:] = [d for d in dirnames if d not in ("pipelines", "schemas", "__pycache__")]
            out += [Path(dirpath, f) for f in filenames if f.endswith(".py")]
    return sorted(out)


def _is_pipelines(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PIPELINES)


def _pipeline_imports(path: Path) -> list[str]:
    """``module:line`` of each import statement of ``path`` reaching the pipelines."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            # relative imports only occur inside vecstore/: ``from . import x`` is vecstore.x
            module = (
                node.module
                if node.level == 0
                else ".".join(filter(None, ["vecstore", node.module]))
            )
            names = (
                [module]
                if module and _is_pipelines(module)
                else [f"{module}.{a.name}" for a in node.names]
            )
        found += [f"{name}:{node.lineno}" for name in names if _is_pipelines(name)]
    return found


def test_sources_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in _sources()}
    assert {"vecstore/writes.py", "vecstore/records.py", "vecstore/runners.py"} <= names
    assert "schemas/arrow.py" in names
    assert not any(n.startswith(("vecstore/pipelines/", "pipelines/")) for n in names)


def test_no_vecstore_module_imports_the_pipelines() -> None:
    offenders = {
        p.relative_to(REPO).as_posix(): hits for p in _sources() if (hits := _pipeline_imports(p))
    }
    assert offenders == {}


def test_the_checker_sees_pipeline_imports(tmp_path: Path) -> None:
    """The AST check catches every spelling (it would have flagged the old lazy import)."""
    src = tmp_path / "m.py"
    src.write_text(
        textwrap.dedent(
            """
            import vecstore.pipelines.runner
            from vecstore.pipelines.validate import validate_batch
            from vecstore import pipelines
            def f():
                from vecstore.pipelines import tasks
            NAME = "vecstore.pipelines.runner:DaskRunner"  # a string is no import
            """
        )
    )
    assert sorted(h.split(":")[0] for h in _pipeline_imports(src)) == [
        "vecstore.pipelines",
        "vecstore.pipelines",
        "vecstore.pipelines.runner",
        "vecstore.pipelines.validate",
    ]


def test_writes_load_no_pipelines_module() -> None:
    """At run time too: a write (validation included) loads nothing of the pipelines."""
    code = textwrap.dedent(
        """
        import sys, tempfile
        from vecstore import writes
        from vecstore.schemas import IndexSpec
        from vecstore.storage import Store
        store = Store(tempfile.mkdtemp())
        spec = IndexSpec(name="i", dimension=2)
        writes.upsert(store, spec, "ns", [("a", [1.0, 2.0], {"k": "v"})])
        print(sorted(m for m in sys.modules if m.startswith(("vecstore.pipelines", "dask"))))
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
