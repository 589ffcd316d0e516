"""Keep expected errors of import tasks out of the workers' logs.

A task that raises logs ``Compute Failed ... Traceback`` on its worker's
``distributed.worker`` logger, and a LocalCluster's workers write that on the
caller's stderr. An ordinary user error -- a bad record, an unusable file,
a limit, a cancel -- is an expected outcome of an import, reported in the
job record, not a crash. :class:`QuietExpectedErrors` is a worker plugin
that installs :class:`ExpectedErrorFilter` on every worker; other failures
(bugs, a lost worker) are still logged.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from vecstore.errors import CancelledError, IngestError

WORKER_LOGGER = "distributed.worker"


def _expected_names() -> frozenset[str]:
    """Class names of the expected errors (every IngestError, and cancels)."""
    out: set[str] = set()
    todo: list[type[BaseException]] = [IngestError, CancelledError]
    while todo:
        cls = todo.pop()
        out.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(out)


class ExpectedErrorFilter(logging.Filter):
    """Drops ``Compute Failed`` records whose exception is an expected error."""

    def __init__(self) -> None:
        super().__init__()
        self.names = _expected_names()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Compute Failed"):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        # args: key, state, task, exception_text (repr of the exception), traceback
        text = str(args[3]) if len(args) > 3 else ""
        name = text.strip("'\"").split("(", 1)[0]
        return name not in self.names


def install(logger_name: str = WORKER_LOGGER) -> None:
    """Install the filter on ``logger_name`` once (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, ExpectedErrorFilter) for f in logger.filters):
        logger.addFilter(ExpectedErrorFilter())


class QuietExpectedErrors(WorkerPlugin):
    """Worker plugin: :func:`install` on each worker as it starts."""

    idempotent = True

    def setup(self, worker: Any) -> None:
        install()


__all__ = ["ExpectedErrorFilter", "QuietExpectedErrors", "install"]
