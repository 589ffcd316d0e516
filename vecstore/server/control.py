"""Control plane: ``/indexes`` (create, list, describe, configure, delete).

Requests come in the 2026-07 shape the SDKs send
(``schema.fields._values`` / ``_sparse_values`` and ``deployment``) or the
older one (``dimension``, ``metric``, ``vector_type``, ``spec.serverless``)
that curl examples and older clients use.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vecstore.schemas import IndexSpec
from vecstore.server import codec
from vecstore.server.codec import JSONResponse
from vecstore.server.context import Ctx, endpoint, threaded
from vecstore.server.errors import ApiError
from vecstore.server.state import Settings, check_deletion_protection

METADATA_FIELD_TYPES = ("string", "string_list", "integer", "float", "boolean")
MAX_TAGS = 20
TAG_KEY = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


# The User-Agent of the official Node.js SDK ("@pinecone-database/pinecone
# v9.0.0; lang=typescript; node v20.20.2")
NODE_SDK = "@pinecone-database/pinecone"


def index_hosts(request: Request, ctx: Ctx, name: str) -> tuple[str, str | None]:
    """An index's ``host`` and, for the Node.js SDK, its ``private_host``.

    The Python SDK keeps an ``http://`` scheme and turns a bare
    ``host:port`` into ``https://``, so it gets ``http://HOST:PORT/idx/NAME``.
    Code written for the Node.js SDK against Pinecone Local (the seed's
    example) adds the scheme itself (``'http://' + host``), as Pinecone and
    Pinecone Local return hosts without one: the Node.js SDK gets the bare
    ``HOST:PORT/idx/NAME``, plus ``private_host`` with the scheme, which that
    SDK prefers when it resolves a host itself (``pc.index(name)``)."""
    url = f"{ctx.base_url(request)}/idx/{name}"
    if request.headers.get("user-agent", "").startswith(NODE_SDK):
        return url.removeprefix("http://"), url
    return url, None


def model_of(request: Request, ctx: Ctx, spec: IndexSpec, settings: Settings) -> dict[str, Any]:
    from vecstore.server.convert import index_model

    host, private_host = index_hosts(request, ctx, spec.name)
    return index_model(
        spec,
        host=host,
        private_host=private_host,
        deletion_protection=settings.deletion_protection,
        tags=ctx.state.tags_of(spec, settings),
    )


def _describe(ctx: Ctx, name: str) -> tuple[IndexSpec, Settings]:
    spec = ctx.state.vecstore(ctx.project).describe_index(name)
    return spec, ctx.state.settings(ctx.project, name)


def check_tags(value: Any, *, allow_empty_values: bool = False) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise codec.bad("tags", "an object of strings", value)
    if len(value) > MAX_TAGS:
        raise ApiError(400, "INVALID_ARGUMENT", f"Too many tags: at most {MAX_TAGS}")
    for k, v in value.items():
        if not isinstance(v, str):
            raise codec.bad(f"tags.{k}", "a string", v)
        if not TAG_KEY.fullmatch(k) or len(v) > 120 or (not v and not allow_empty_values):
            raise ApiError(
                400, "INVALID_ARGUMENT",
                "Invalid tag: keys are 1-80 letters, digits, '_' or '-'; values 1-120 characters",
            )
    return dict(value)


def parse_create(body: dict[str, Any]) -> dict[str, Any]:
    """Arguments of ``VecStore.create_index`` from either request shape."""
    name = codec.req_str(body, "name")
    dimension: Any = body.get("dimension")
    metric: Any = body.get("metric")
    vector_type: Any = body.get("vector_type", body.get("vectorType"))
    cloud: Any = None
    region: Any = None
    schema = codec.opt_object(body, "schema")
    if schema is not None:
        fields = codec.opt_object(schema, "fields") or {}
        vector_fields = []
        for fname, field in fields.items():
            if not isinstance(field, dict):
                raise codec.bad(f"schema.fields.{fname}", "an object", field)
            ftype = field.get("type")
            if ftype in ("dense_vector", "sparse_vector"):
                vector_fields.append(field)
            elif ftype in METADATA_FIELD_TYPES:
                continue  # metadata is indexed as it comes; declarations are hints
            else:
                raise ApiError(
                    400, "INVALID_ARGUMENT",
                    f"Unsupported field type {ftype!r} in schema.fields.{fname}: "
                    "vecstore indexes take one dense_vector or sparse_vector field",
                )
        if len(vector_fields) != 1:
            raise ApiError(
                400, "INVALID_ARGUMENT",
                "schema.fields must declare exactly one dense_vector or sparse_vector field",
            )
        field = vector_fields[0]
        if field["type"] == "dense_vector":
            vector_type, dimension = "dense", field.get("dimension")
            metric = field.get("metric", "cosine")
        else:
            vector_type, dimension = "sparse", None
            metric = field.get("metric", "dotproduct")
    deployment = codec.opt_object(body, "deployment")
    if deployment is not None:
        kind = deployment.get("deployment_type", "managed")
        if kind != "managed":
            raise ApiError(
                400, "INVALID_ARGUMENT",
                f"Unsupported deployment_type {kind!r}: vecstore serves managed (serverless) indexes",
            )
        cloud, region = deployment.get("cloud"), deployment.get("region")
    spec = codec.opt_object(body, "spec")
    if spec is not None:
        serverless = codec.opt_object(spec, "serverless")
        if serverless is None:
            raise ApiError(
                400, "INVALID_ARGUMENT", "Only serverless specs are supported: spec.serverless"
            )
        cloud, region = serverless.get("cloud"), serverless.get("region")
    if region is not None and (not isinstance(region, str) or not 1 <= len(region) <= 64):
        raise codec.bad("region", "a string of 1-64 characters", region)
    if vector_type is None:
        vector_type = "dense"
    return {
        "name": name,
        "dimension": dimension,
        "metric": metric,
        "vector_type": vector_type,
        "cloud": cloud or "aws",
        "region": region,
        "tags": check_tags(body.get("tags")),
        "deletion_protection": check_deletion_protection(
            body.get("deletion_protection") or "disabled"
        ),
    }


@endpoint(write=False)
async def list_indexes(request: Request, ctx: Ctx) -> Response:
    def work() -> list[dict[str, Any]]:
        vs = ctx.state.vecstore(ctx.project)
        return [
            model_of(request, ctx, spec, ctx.state.settings(ctx.project, spec.name))
            for spec in vs.list_indexes()
        ]

    return JSONResponse({"indexes": await threaded(work)})


@endpoint(write=True)
async def create_index(request: Request, ctx: Ctx) -> Response:
    args = parse_create(await codec.read_body(request))
    protection = args.pop("deletion_protection")

    def work() -> dict[str, Any]:
        vs = ctx.state.vecstore(ctx.project)
        spec = vs.create_index(**args)
        settings = Settings(deletion_protection=protection)
        if protection != "disabled":
            ctx.state.save_settings(ctx.project, spec.name, settings)
        ctx.state.forget(ctx.project, spec.name)
        ctx.state.wrote(ctx.project, spec.name)
        return model_of(request, ctx, spec, settings)

    return JSONResponse(await threaded(work), status_code=201)


@endpoint(write=False)
async def describe_index(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]

    def work() -> dict[str, Any]:
        spec, settings = _describe(ctx, name)
        return model_of(request, ctx, spec, settings)

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def configure_index(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]
    body = await codec.read_body(request)
    for key in ("deployment", "schema", "read_capacity", "embed"):
        if body.get(key) is not None:
            raise ApiError(
                400, "INVALID_ARGUMENT",
                f"Cannot configure {key} of a vecstore index: only deletion_protection and tags",
            )
    protection = body.get("deletion_protection")
    if protection is not None:
        check_deletion_protection(protection)
    tags = check_tags(body.get("tags"), allow_empty_values=True)
    if tags is not None and not tags:
        raise ApiError(400, "INVALID_ARGUMENT", "tags cannot be an empty object")
    if protection is None and tags is None:
        raise ApiError(
            400, "INVALID_ARGUMENT", "Nothing to configure: pass deletion_protection or tags"
        )

    def work() -> dict[str, Any]:
        spec, settings = _describe(ctx, name)
        merged = ctx.state.tags_of(spec, settings)
        if tags is not None:
            for k, v in tags.items():
                if v == "":
                    merged.pop(k, None)
                else:
                    merged[k] = v
            if len(merged) > MAX_TAGS:
                raise ApiError(400, "INVALID_ARGUMENT", f"Too many tags: at most {MAX_TAGS}")
        new = Settings(
            deletion_protection=protection or settings.deletion_protection, tags=merged
        )
        ctx.state.save_settings(ctx.project, name, new)
        return model_of(request, ctx, spec, new)

    return JSONResponse(await threaded(work))


@endpoint(write=True)
async def delete_index(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]

    def work() -> None:
        spec, settings = _describe(ctx, name)
        if settings.deletion_protection == "enabled":
            raise ApiError(
                412, "FAILED_PRECONDITION",
                f"Deletion protection is enabled for this index. Disable deletion protection "
                f"before retrying: configure_index(name={name!r}, deletion_protection='disabled')",
            )
        ctx.state.forget(ctx.project, name)
        try:
            ctx.state.vecstore(ctx.project).delete_index(name)
        finally:
            ctx.state.forget(ctx.project, name)
            ctx.state.wrote(ctx.project, name)

    await threaded(work)
    return Response(status_code=202)


routes = [
    Route("/indexes", list_indexes, methods=["GET"]),
    Route("/indexes", create_index, methods=["POST"]),
    Route("/indexes/{name}", describe_index, methods=["GET"]),
    Route("/indexes/{name}", configure_index, methods=["PATCH"]),
    Route("/indexes/{name}", delete_index, methods=["DELETE"]),
]
