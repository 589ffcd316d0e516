"""The query engine behind :class:`vecstore.reader.Reader`.

Modules, in the order a query meets them:

- :mod:`~vecstore.query.args`: argument checks of the read API.
- :mod:`~vecstore.query.filters`: the metadata filter language (parse,
  prune by cluster statistics, evaluate vectorised).
- :mod:`~vecstore.query.planner`: the pinned namespace version, cluster
  pruning and ranking, the default ``nprobe``.
- :mod:`~vecstore.query.executor`: scanning, BLAS scoring, filters, merging.
- :mod:`~vecstore.query.topk`: top-k selection on score tiles.
- :mod:`~vecstore.query.segdata`: column-wise segment reads through
  :mod:`~vecstore.query.cache` (bytes-bounded LRU, disk cache).
- :mod:`~vecstore.query.idindex` and :mod:`~vecstore.query.rows`: ids to
  rows (fetch, list, query by id) and rows to results.

Shared with the rest of vecstore: the metric math is :mod:`vecstore.schemas.metrics`,
the (cluster, row) references :mod:`vecstore.refs`, the list tokens
:mod:`vecstore.pagination`.
"""
