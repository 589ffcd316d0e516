"""Import what import tasks need on each worker as it joins, not in a task.

A fresh worker process pays ~0.3 s to import the task module and ~1.3-1.6 s
for scikit-learn's k-means on these machines. Left to the tasks, the second
lands in the k-means training task, which is one task per namespace: every
other worker waits for it (1M x 128 on 2 workers: 2.4 s of training, 1.6 s
of it the import). :class:`WarmImports` is a worker plugin whose ``setup``
starts those imports on a daemon thread (:func:`vecstore.extras.preload`),
so they run while the cluster is otherwise idle (between connecting and the
first import) or overlap the first tasks' reads. A task that needs a module
before the thread has it waits on Python's import lock, no longer than the
import would have taken it.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from vecstore import extras

MODULES = ("vecstore.pipelines.tasks", "pyarrow.parquet", "sklearn.cluster")


class WarmImports(WorkerPlugin):
    """Worker plugin: :data:`MODULES` imported on each worker as it starts."""

    idempotent = True

    def setup(self, worker: Any) -> None:
        extras.preload(*MODULES, name="vecstore-warm-imports")


__all__ = ["MODULES", "WarmImports"]
