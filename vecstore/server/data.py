"""Data plane of every index, under the index's host prefix ``/idx/<name>``:
query, fetch, stats, list, namespaces, and the write path (upsert, update,
delete) when the installed ``Index`` has it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vecstore import layout, pagination
from vecstore.api import Index
from vecstore.server import codec, convert
from vecstore.server.codec import JSONResponse
from vecstore.server.context import Ctx, endpoint, quick, threaded
from vecstore.server.errors import ApiError

MAX_NAMESPACE = 512
DEFAULT_NS_LIMIT = 100
MAX_NS_LIMIT = 1_000
MAX_FETCH_IDS = 1_000
MAX_NS_DIR = 255


def index_of(ctx: Ctx, request: Request) -> Index:
    return ctx.state.index(ctx.project, request.path_params["index"])


def reading(ctx: Ctx, request: Request, namespace: str) -> Index:
    """The index, with this worker's view of ``namespace`` fresh (other
    workers' acknowledged writes included: :mod:`vecstore.server.fresh`)."""
    index = index_of(ctx, request)
    ctx.state.fresh(ctx.project, index, namespace)
    return index


def namespace_arg(value: Any, field: str = "namespace") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise codec.bad(field, "a string", value)
    if len(value) > MAX_NAMESPACE:
        raise ApiError(
            400, "INVALID_ARGUMENT", f"Namespace names are at most {MAX_NAMESPACE} characters"
        )
    if "\x00" in value:
        raise ApiError(400, "INVALID_ARGUMENT", "Namespace names cannot contain NUL")
    return value


def storable(ns: str) -> bool:
    """Whether a namespace fits a directory name of the store (255 bytes,
    the limit of local file systems, applied everywhere for one rule). One
    that does not cannot exist: reads find nothing, writes are refused."""
    return len(layout.ns_dir(ns).encode()) <= MAX_NS_DIR


def check_storable(ns: str) -> str:
    if not storable(ns):
        raise ApiError(
            400, "INVALID_ARGUMENT",
            f"Namespace name too long once encoded for storage (at most {MAX_NS_DIR} bytes)",
        )
    return ns


def namespace_not_found(ns: str, index: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f'Namespace "{ns}" not found in index "{index}"')


def query_int(request: Request, name: str, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid {name} {raw!r}: expected an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid {name} {value}: expected {lo} to {hi}")
    return value


# --------------------------------------------------------------------- reads


@endpoint(write=False)
async def query(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request)
    top_k = body.get("topK", body.get("top_k"))
    if top_k is None:
        raise ApiError(400, "INVALID_ARGUMENT", "Missing required field 'topK'")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise codec.bad("topK", "an integer", top_k)
    if not 1 <= top_k <= 10_000:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid topK {top_k}: expected 1 to 10000")
    vector = body.get("vector")
    if vector is not None:
        codec.number_list(vector, "vector")
    sparse = codec.sparse_values(body.get("sparseVector", body.get("sparse_vector")), "sparseVector")
    id_ = codec.opt_str(body, "id")
    if vector is None and sparse is None and id_ is None:
        raise ApiError(
            400, "INVALID_ARGUMENT", "A query needs one of vector, sparseVector or id"
        )
    if id_ is not None and (vector is not None or sparse is not None):
        raise ApiError(
            400, "INVALID_ARGUMENT", "A query takes either id or vector/sparseVector, not both"
        )
    flt = codec.opt_object(body, "filter")
    kwargs: dict[str, Any] = {
        "top_k": top_k,
        "namespace": namespace_arg(body.get("namespace")),
        "include_values": codec.opt_bool(body, "includeValues"),
        "include_metadata": codec.opt_bool(body, "includeMetadata"),
    }
    if vector is not None:
        kwargs["vector"] = vector
    if sparse is not None:
        kwargs["sparse_vector"] = sparse
    if id_ is not None:
        kwargs["id"] = id_
    if flt is not None:
        kwargs["filter"] = flt

    def work() -> dict[str, Any]:
        if not storable(kwargs["namespace"]):
            index_of(ctx, request)  # 404 for an unknown index
            return {"matches": [], "namespace": kwargs["namespace"], "usage": {"readUnits": 0}}
        index = reading(ctx, request, kwargs["namespace"])
        return convert.query_response(index.query(**kwargs))

    return JSONResponse(await quick(ctx.state.local, work))


@endpoint(write=False)
async def fetch(request: Request, ctx: Ctx) -> Response:
    ids = request.query_params.getlist("ids")
    if not ids:
        raise ApiError(400, "INVALID_ARGUMENT", "fetch needs at least one id: ?ids=ID")
    if len(ids) > MAX_FETCH_IDS:
        raise ApiError(400, "INVALID_ARGUMENT", f"fetch takes at most {MAX_FETCH_IDS} ids")
    ns = namespace_arg(request.query_params.get("namespace"))

    def work() -> dict[str, Any]:
        if not storable(ns):
            index_of(ctx, request)  # 404 for an unknown index
            return {"vectors": {}, "namespace": ns, "usage": {"readUnits": 1}}
        index = reading(ctx, request, ns)
        return convert.fetch_response(index.fetch(ids=ids, namespace=ns))

    return JSONResponse(await quick(ctx.state.local, work))


@endpoint(write=False)
async def describe_index_stats(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request, required=False)
    flt = codec.opt_object(body, "filter")

    def work() -> dict[str, Any]:
        index = index_of(ctx, request)
        ctx.state.fresh_all(ctx.project, index)
        if flt:
            from vecstore.server.stats import filtered_counts  # pyarrow: loaded on first use

            counts = filtered_counts(index, flt)
        else:
            stats = index.describe_index_stats()
            counts = {ns: s.vector_count for ns, s in stats.namespaces.items()}
        return convert.stats_response(index.spec, counts)

    return JSONResponse(await threaded(work))


@endpoint(write=False)
async def list_vectors(request: Request, ctx: Ctx) -> Response:
    params = request.query_params
    ns = namespace_arg(params.get("namespace"))
    limit = query_int(request, "limit", 1, 10_000)
    prefix = params.get("prefix")
    token = params.get("paginationToken") or None

    def work() -> dict[str, Any]:
        if not storable(ns):
            index_of(ctx, request)  # 404 for an unknown index
            return {"vectors": [], "namespace": ns, "usage": {"readUnits": 1}}
        index = reading(ctx, request, ns)
        page = index.list_paginated(
            prefix=prefix, limit=limit, pagination_token=token, namespace=ns
        )
        return convert.list_response(page)

    return JSONResponse(await threaded(work))


@endpoint(write=False)
async def list_namespaces(request: Request, ctx: Ctx) -> Response:
    params = request.query_params
    prefix = params.get("prefix") or None
    limit = query_int(request, "limit", 1, MAX_NS_LIMIT) or DEFAULT_NS_LIMIT
    after = pagination.decode(params.get("paginationToken"))  # 400 for a bad token

    def work() -> dict[str, Any]:
        index = index_of(ctx, request)
        ctx.state.fresh_all(ctx.project, index)
        nss = sorted(index.list_namespaces(prefix=prefix), key=lambda d: d.name)
        rest = [d for d in nss if after is None or d.name > after]
        page = rest[:limit]
        out: dict[str, Any] = {
            "namespaces": [{"name": d.name, "record_count": d.record_count} for d in page],
            "total_count": len(nss),
        }
        if len(rest) > limit and page:
            out["pagination"] = {"next": pagination.encode(page[-1].name)}
        return out

    return JSONResponse(await threaded(work))


@endpoint(write=False)
async def describe_namespace(request: Request, ctx: Ctx) -> Response:
    ns = namespace_arg(request.path_params["namespace"])

    def work() -> dict[str, Any]:
        index = index_of(ctx, request)
        if not storable(ns):
            raise namespace_not_found(ns, index.name)
        ctx.state.fresh(ctx.project, index, ns)
        d = index.describe_namespace(ns)
        return {"name": d.name, "record_count": d.record_count}

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def delete_namespace(request: Request, ctx: Ctx) -> Response:
    ns = namespace_arg(request.path_params["namespace"])

    def work() -> None:
        index = index_of(ctx, request)
        if not storable(ns):
            raise namespace_not_found(ns, index.name)
        ctx.state.fresh(ctx.project, index, ns)
        index.describe_namespace(ns)  # 404 for an unknown namespace
        index.delete_namespace(ns)
        ctx.state.wrote(ctx.project, index.name, ns)

    await threaded(work)
    return Response(status_code=202)


@endpoint(write=True)
async def create_namespace(request: Request, ctx: Ctx) -> Response:
    await codec.read_body(request, required=False)
    raise ApiError(
        400, "UNIMPLEMENTED",
        "vecstore creates a namespace with its first write or import; create_namespace is not needed",
    )


# -------------------------------------------------------------------- writes


def _records(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise codec.bad("vectors", "an array of records", value)
    if not value:
        raise ApiError(400, "INVALID_ARGUMENT", "vectors must contain at least one record")
    out = []
    for i, rec in enumerate(value):
        if not isinstance(rec, dict):
            raise codec.bad(f"vectors[{i}]", "an object", rec)
        item: dict[str, Any] = {"id": codec.req_str(rec, "id")}
        if rec.get("values") is not None:
            item["values"] = codec.number_list(rec["values"], f"vectors[{i}].values")
        sv = codec.sparse_values(rec.get("sparseValues", rec.get("sparse_values")), f"vectors[{i}].sparseValues")
        if sv is not None:
            item["sparse_values"] = sv
        md = codec.opt_object(rec, "metadata")
        if md is not None:
            item["metadata"] = md
        out.append(item)
    return out


@endpoint(write=True)
async def upsert(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request)
    records = _records(body.get("vectors"))
    ns = check_storable(namespace_arg(body.get("namespace")))

    def work() -> dict[str, Any]:
        index = reading(ctx, request, ns)
        result = index.upsert(records, namespace=ns)
        ctx.state.wrote(ctx.project, index.name, ns)
        return {"upsertedCount": result.upserted_count}

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def update(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request)
    id_ = codec.opt_str(body, "id")
    values = body.get("values")
    if values is not None:
        codec.number_list(values, "values")
    sparse = codec.sparse_values(body.get("sparseValues"), "sparseValues")
    set_metadata = codec.opt_object(body, "setMetadata")
    flt = codec.opt_object(body, "filter")
    dry_run = codec.opt_bool(body, "dryRun")
    ns = check_storable(namespace_arg(body.get("namespace")))
    if id_ is None and flt is None:
        raise ApiError(400, "INVALID_ARGUMENT", "update needs an id or a filter")
    if id_ is not None and flt is not None:
        raise ApiError(400, "INVALID_ARGUMENT", "update takes either id or filter, not both")

    def work() -> dict[str, Any]:
        index = reading(ctx, request, ns)
        result = index.update(
            id_,
            values=values,
            sparse_values=sparse,
            set_metadata=set_metadata,
            namespace=ns,
            filter=flt,
            dry_run=bool(dry_run),
        )
        if not dry_run:
            ctx.state.wrote(ctx.project, index.name, ns)
        n = result.matched_records if result is not None else None
        return {} if n is None else {"matchedRecords": n}

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def delete(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request)
    ids = body.get("ids")
    if ids is not None:
        codec.str_list(ids, "ids")
    delete_all = codec.opt_bool(body, "deleteAll")
    flt = codec.opt_object(body, "filter")
    ns = check_storable(namespace_arg(body.get("namespace")))
    chosen = sum([ids is not None, delete_all, flt is not None])
    if chosen != 1:
        raise ApiError(
            400, "INVALID_ARGUMENT", "delete takes exactly one of ids, deleteAll or filter"
        )

    def work() -> None:
        index = reading(ctx, request, ns)
        index.delete(ids, delete_all=bool(delete_all) or None, namespace=ns, filter=flt)
        ctx.state.wrote(ctx.project, index.name, ns)

    await threaded(work)
    return JSONResponse({})


@endpoint(write=False)
async def fetch_by_metadata(request: Request, ctx: Ctx) -> Response:
    await codec.read_body(request, required=False)
    raise ApiError(400, "UNIMPLEMENTED", "fetch_by_metadata is not supported by vecstore")


P = "/idx/{index}"
routes = [
    Route(f"{P}/query", query, methods=["POST"]),
    Route(f"{P}/vectors/fetch", fetch, methods=["GET"]),
    Route(f"{P}/vectors/fetch_by_metadata", fetch_by_metadata, methods=["POST"]),
    Route(f"{P}/describe_index_stats", describe_index_stats, methods=["POST", "GET"]),
    Route(f"{P}/vectors/list", list_vectors, methods=["GET"]),
    Route(f"{P}/vectors/upsert", upsert, methods=["POST"]),
    Route(f"{P}/vectors/update", update, methods=["POST"]),
    Route(f"{P}/vectors/delete", delete, methods=["POST"]),
    Route(f"{P}/namespaces", list_namespaces, methods=["GET"]),
    Route(f"{P}/namespaces", create_namespace, methods=["POST"]),
    Route(f"{P}/namespaces/{{namespace:path}}", describe_namespace, methods=["GET"]),
    Route(f"{P}/namespaces/{{namespace:path}}", delete_namespace, methods=["DELETE"]),
]
