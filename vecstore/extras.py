"""Optional dependencies: which extra provides which module, and the one-line
install hint raised when a feature needs an extra that is not installed.

``pip install vecstore`` reads and queries a local (or ``memory://``) store;
``[s3]``, ``[gcs]``, ``[azure]`` add the object-store backends, ``[dask]`` the
import jobs, ``[server]`` the REST server, ``[all]`` everything. The
dependency lists themselves are in ``pyproject.toml`` (a test checks that every
extra named here exists there).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading

from vecstore.errors import MissingExtraError

EXTRAS: dict[str, tuple[str, ...]] = {
    "s3": ("s3fs",),
    "gcs": ("gcsfs",),
    "azure": ("adlfs",),
    "dask": ("distributed", "sklearn"),
    "server": ("starlette", "uvicorn", "orjson"),
}
"""The modules each extra provides (those vecstore imports; checked lazily)."""


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_hint(what: str, extra: str) -> str:
    return f'{what} needs the {extra} extra: pip install "vecstore[{extra}]"'


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` (one line: what to install) unless
    every module of ``extra`` is importable. ``what`` names the feature."""
    for module in EXTRAS[extra]:
        if not has_module(module):
            raise MissingExtraError(install_hint(what, extra), extra=extra, module=module)


def preload(*modules: str, name: str = "vecstore-preload") -> threading.Thread:
    """Import ``modules`` on a daemon thread (started) and return it: a slow
    import (scikit-learn's k-means: ~1-2 s in a fresh process) runs while the
    caller does other work. A module that is missing is left to the code
    that needs it to report; one already imported costs nothing."""

    def run() -> None:
        for m in modules:
            with contextlib.suppress(ImportError):
                importlib.import_module(m)

    t = threading.Thread(target=run, daemon=True, name=name)
    t.start()
    return t
