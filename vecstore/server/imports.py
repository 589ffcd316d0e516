"""Bulk imports of an index: ``/idx/<name>/bulk/imports``.

``errorMode`` omitted means Pinecone's default, ``continue``. The URI may be
``s3://``, ``gs://``, an Azure ``https://`` URL or a local path; credentials
come from the integrations of ``--config`` by ``integrationId``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vecstore.server import codec, convert
from vecstore.server.codec import JSONResponse
from vecstore.server.context import Ctx, endpoint, threaded
from vecstore.server.data import index_of, query_int
from vecstore.server.errors import ApiError

DEFAULT_ERROR_MODE = "continue"
MAX_ID = 128
IMPORT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _import_id(request: Request) -> str:
    value = str(request.path_params["id"])
    if not IMPORT_ID.fullmatch(value) or value in (".", ".."):
        raise ApiError(404, "NOT_FOUND", f"Import {value[:MAX_ID]!r} not found")
    return value


@endpoint(write=True)
async def start_import(request: Request, ctx: Ctx) -> Response:
    body = await codec.read_body(request)
    uri = codec.req_str(body, "uri")
    integration_id = codec.opt_str(body, "integrationId")
    mode = codec.opt_object(body, "errorMode")
    # checked by the API (InvalidArgumentError: 400)
    on_error = DEFAULT_ERROR_MODE if mode is None else mode.get("onError", DEFAULT_ERROR_MODE)

    def work() -> dict[str, Any]:
        op = index_of(ctx, request).start_import(
            uri=uri, integration_id=integration_id, error_mode=on_error
        )
        return {"id": str(op.id)}

    return JSONResponse(await threaded(work))


@endpoint(write=False)
async def describe_import(request: Request, ctx: Ctx) -> Response:
    job_id = _import_id(request)

    def work() -> dict[str, Any]:
        return convert.import_model(index_of(ctx, request).describe_import(job_id))

    return JSONResponse(await threaded(work))


@endpoint(write=False)
async def list_imports(request: Request, ctx: Ctx) -> Response:
    limit = query_int(request, "limit", 1, 100)
    token = request.query_params.get("paginationToken") or None

    def work() -> dict[str, Any]:
        page = index_of(ctx, request).list_imports_paginated(limit=limit, pagination_token=token)
        out: dict[str, Any] = {"data": [convert.import_model(j) for j in page.data]}
        if page.pagination is not None and page.pagination.next:
            out["pagination"] = {"next": page.pagination.next}
        return out

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def cancel_import(request: Request, ctx: Ctx) -> Response:
    job_id = _import_id(request)

    def work() -> None:
        index_of(ctx, request).cancel_import(job_id)

    await threaded(work)
    return JSONResponse({})


P = "/idx/{index}/bulk/imports"
routes = [
    Route(P, start_import, methods=["POST"]),
    Route(P, list_imports, methods=["GET"]),
    Route(f"{P}/{{id}}", describe_import, methods=["GET"]),
    Route(f"{P}/{{id}}", cancel_import, methods=["DELETE"]),
]
