"""vecstore's models -> Pinecone's wire JSON (camelCase where Pinecone uses it).

Optional keys are left out rather than sent as null: the SDKs' models
default missing keys, while some refuse a null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vecstore.schemas import ImportJob, IndexSpec


def timestamp(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def index_model(
    spec: IndexSpec,
    *,
    host: str,
    deletion_protection: str,
    tags: dict[str, str],
    private_host: str | None = None,
) -> dict[str, Any]:
    """IndexModel in the 2026-07 shape, plus the older top-level keys
    (``dimension``, ``metric``, ``vector_type``, ``spec``) older clients read."""
    if spec.vector_type == "sparse":
        fields: dict[str, Any] = {"_sparse_values": {"type": "sparse_vector"}}
    else:
        fields = {
            "_values": {"type": "dense_vector", "dimension": spec.dimension, "metric": spec.metric}
        }
    out: dict[str, Any] = {
        "name": spec.name,
        "status": {"ready": True, "state": "Ready"},
        "schema": {"fields": fields},
        "deployment": {"deployment_type": "managed", "cloud": spec.cloud, "region": spec.region},
        "deletion_protection": deletion_protection,
        "host": host,
        "tags": tags,
        "metric": spec.metric,
        "vector_type": spec.vector_type,
        "spec": {"serverless": {"cloud": spec.cloud, "region": spec.region}},
    }
    if spec.dimension is not None:
        out["dimension"] = spec.dimension
    if private_host is not None:
        out["private_host"] = private_host
    return out


def import_model(job: ImportJob) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "uri": job.uri,
        "status": job.status,
        "createdAt": timestamp(job.created_at),
        "percentComplete": float(job.percent_complete),
        "recordsImported": int(job.records_imported),
    }
    if job.finished_at is not None:
        out["finishedAt"] = timestamp(job.finished_at)
    if job.error:
        out["error"] = job.error
    return out


def sparse(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"indices": list(value.indices), "values": list(value.values)}


def scored(match: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": match.id, "score": float(match.score)}
    if match.values is not None:
        out["values"] = list(match.values)
    if match.sparse_values is not None:
        out["sparseValues"] = sparse(match.sparse_values)
    if match.metadata is not None:
        out["metadata"] = match.metadata
    return out


def vector(v: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": v.id}
    if v.values is not None:
        out["values"] = list(v.values)
    if v.sparse_values is not None:
        out["sparseValues"] = sparse(v.sparse_values)
    if v.metadata is not None:
        out["metadata"] = v.metadata
    return out


def usage(resp: Any) -> dict[str, int]:
    u = getattr(resp, "usage", None)
    return {"readUnits": int(getattr(u, "read_units", 0) or 0)}


def query_response(resp: Any) -> dict[str, Any]:
    return {
        "matches": [scored(m) for m in resp.matches],
        "namespace": resp.namespace,
        "usage": usage(resp),
    }


def fetch_response(resp: Any) -> dict[str, Any]:
    return {
        "vectors": {k: vector(v) for k, v in resp.vectors.items()},
        "namespace": resp.namespace,
        "usage": usage(resp),
    }


def list_response(resp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "vectors": [{"id": v.id} for v in resp.vectors],
        "namespace": resp.namespace,
        "usage": usage(resp) if getattr(resp, "usage", None) else {"readUnits": 1},
    }
    if resp.pagination is not None and resp.pagination.next:
        out["pagination"] = {"next": resp.pagination.next}
    return out


def stats_response(
    spec: IndexSpec, counts: dict[str, int]
) -> dict[str, Any]:
    return {
        "namespaces": {ns: {"vectorCount": n} for ns, n in sorted(counts.items())},
        "dimension": spec.dimension,
        "indexFullness": 0.0,
        "totalVectorCount": sum(counts.values()),
        "metric": spec.metric,
        "vectorType": spec.vector_type,
    }


