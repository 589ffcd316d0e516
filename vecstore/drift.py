"""Cluster drift of a namespace (issue 12 item 6; docs/rebuild.md "Drift").

Two figures, from the visible manifest alone (no data read):

- ``added_fraction``: records assigned to the centroids since they were
  trained / live records. Training (an import, a rebuild, a fresh build)
  sets ``Manifest.trained_records`` and ``added_since_training = 0``; every
  incremental build adds the new and overwritten records it assigned to the
  existing centroids (:func:`carried`). Unbuilt log records are not counted
  (they are not in any cluster yet). A manifest that predates these fields
  counts as trained at its own size (an import) or unknown.
- ``largest_ratio``: largest cluster / mean cluster (rows).

A rebuild is advised when ``added_fraction > DRIFT_ADVISED`` or
``largest_ratio > RATIO_ADVISED``.
"""

from __future__ import annotations

from typing import Any

from vecstore.quality import balance
from vecstore.schemas import Manifest

DRIFT_ADVISED = 0.3
RATIO_ADVISED = 4.0


def carried(base: Manifest, n_assigned: int, retrained: bool, records: int) -> dict[str, Any]:
    """The drift fields of the manifest a build writes on ``base`` (``records``: its size)."""
    if retrained:
        return {"trained_records": records, "added_since_training": 0}
    trained = base.trained_records
    if trained is None and base.import_id is not None:
        trained = base.record_count  # an import trains on everything it writes
    if trained is None:
        return {}
    return {
        "trained_records": trained,
        "added_since_training": (base.added_since_training or 0) + int(n_assigned),
    }


def describe(m: Manifest) -> dict[str, Any]:
    """Drift figures of a manifest, with ``rebuild_advised`` and why."""
    b = balance([c.row_count for c in m.clusters])
    trained = m.trained_records
    added = m.added_since_training
    if trained is None and m.import_id is not None:
        trained, added = m.record_count, 0
    fraction = None
    if added is not None and m.record_count:
        fraction = round(min(1.0, added / m.record_count), 4)
    reasons = []
    if fraction is not None and fraction > DRIFT_ADVISED:
        reasons.append(f"{fraction:.0%} of records were added since the clusters were trained")
    if b.clusters > 1 and b.ratio > RATIO_ADVISED:
        reasons.append(f"the largest cluster is {b.ratio:.1f}x the mean")
    return {
        "added_fraction": fraction,
        "trained_records": trained,
        "added_since_training": added,
        "clusters": b.clusters,
        "largest_ratio": round(b.ratio, 3),
        "rebuild_advised": bool(reasons),
        "reasons": reasons,
    }


__all__ = ["DRIFT_ADVISED", "RATIO_ADVISED", "carried", "describe"]
