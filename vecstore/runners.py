"""The one hand-off from the public API to a job runner.

``vecstore`` does not import ``pipelines`` statically (dependencies point
one way: schemas <- vecstore <- pipelines). The runner is located by name,
``module:attribute``: the runner of the job's kind (the registry in
:mod:`vecstore.jobs.kinds`; ``vecstore.pipelines.runner:DaskRunner`` for
imports), overridden by the ``VECSTORE_RUNNER`` environment variable, and
created once per process and scheduler address.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Protocol

from vecstore.schemas import ImportJob, IndexSpec
from vecstore.settings import settings
from vecstore.storage import Store


class ImportRunner(Protocol):
    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        """Start the job in the background; return at once."""

    def recover(
        self, store: Store, index: str, source_for: Callable[[ImportJob], Store] | None = None
    ) -> list[str]:
        """Resume or fail jobs of ``index`` whose runner died; their ids.
        ``source_for(job)``: the source Store of a job to resume (with the
        credentials of its integration)."""

    def close(self, *, abandon: bool = False) -> None:
        """Stop; ``abandon``: leave running jobs to recovery instead of waiting."""


_runners: dict[tuple[str, str | None], ImportRunner] = {}
_lock = threading.Lock()


def get_runner(
    scheduler_address: str | None = None, name: str | None = None, *, kind: str = "import"
) -> ImportRunner:
    """The runner of jobs of ``kind`` (or the factory ``name``)."""
    if not name:
        from vecstore.jobs.kinds import kind_of

        name = settings().runner or kind_of(kind).runner
    address = scheduler_address or settings().scheduler
    with _lock:
        runner = _runners.get((name, address))
        if runner is None:
            module, _, attr = name.partition(":")
            factory = getattr(importlib.import_module(module), attr)
            runner = factory(scheduler_address=address)
            _runners[(name, address)] = runner
        return runner


def close_runners(*, abandon: bool = False) -> None:
    with _lock:
        for r in _runners.values():
            r.close(abandon=abandon)
        _runners.clear()
