"""The registry of job kinds: what each kind of job needs from the lifecycle.

The lifecycle (:mod:`vecstore.jobs.lifecycle`) is the same for every kind;
a kind supplies the few things that differ: the runner that does its work,
how to clean up after it, and how to tell whether it committed. Adding a
kind is one new module defining a :class:`JobKindSpec` plus one line in
:data:`KINDS` (see :mod:`vecstore.jobs.import_kind`, the import kind).
Kind modules are imported when first used, so registering one costs
nothing at ``import vecstore``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from vecstore.errors import InvalidArgumentError
from vecstore.storage import Store


@dataclass(frozen=True)
class JobKindSpec:
    """What the lifecycle needs to know about one kind of job."""

    name: str
    # ``module:attribute`` of the runner factory (see vecstore.runners);
    # VECSTORE_RUNNER overrides it
    runner: str
    # cleanup(store, index, job_id, keep_rejects): remove what an unfinished job wrote
    cleanup: Callable[[Store, str, str, bool], None]
    # finish(store, index, job_id): drop scratch files of a completed job
    finish: Callable[[Store, str, str], None]
    # committed(store, index, job_id): the job's commit point was passed
    committed: Callable[[Store, str, str], bool]
    # committed_counts(store, index, job_id): records made visible, per namespace
    committed_counts: Callable[[Store, str, str], dict[str, int]]


# kind name -> "module:attribute" of its JobKindSpec
KINDS: dict[str, str] = {
    "import": "vecstore.jobs.import_kind:KIND",
    "rebuild": "vecstore.jobs.rebuild_kind:KIND",
    "build": "vecstore.jobs.build_kind:KIND",
}

_loaded: dict[str, JobKindSpec] = {}
_lock = threading.Lock()


def register(spec: JobKindSpec) -> None:
    """Register a kind at run time (tests, plugins); modules in KINDS need not."""
    with _lock:
        _loaded[spec.name] = spec


def kind_of(name: str) -> JobKindSpec:
    """The spec of kind ``name``."""
    with _lock:
        spec = _loaded.get(name)
        if spec is not None:
            return spec
        where = KINDS.get(name)
        if where is None:
            raise InvalidArgumentError(f"Unknown job kind {name!r}: expected one of {sorted(KINDS)}")
        module, _, attr = where.partition(":")
        spec = getattr(importlib.import_module(module), attr)
        if not isinstance(spec, JobKindSpec) or spec.name != name:
            raise TypeError(f"{where} is not the JobKindSpec of kind {name!r}")
        _loaded[name] = spec
        return spec


__all__ = ["KINDS", "JobKindSpec", "kind_of", "register"]
