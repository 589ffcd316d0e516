"""The ASGI application: one Starlette app for the control plane and the
data plane of every index (``/idx/<name>/...``), with Pinecone's error
bodies for unknown routes and methods, and one debug log line per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vecstore.server import control, data, imports
from vecstore.server.codec import JSONResponse
from vecstore.server.context import INFLIGHT
from vecstore.server.errors import error_body
from vecstore.server.state import ServerState

log = logging.getLogger("vecstore.server")

_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "ALREADY_EXISTS",
    413: "OUT_OF_RANGE",
}


class AccessLog:
    """Pure ASGI middleware: counts requests in flight (see
    :func:`vecstore.server.context.quick`) and writes one debug line per
    request (method, path, status, milliseconds). Headers are never logged:
    they carry the Api-Key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        INFLIGHT[0] += 1
        try:
            await self._logged(scope, receive, send)
        finally:
            INFLIGHT[0] -= 1

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.debug(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status[0] or 500,
                (time.perf_counter() - start) * 1000,
            )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = exc.detail
    if status == 404:
        message = f"Not found: {request.method} {request.url.path}"
    elif status == 405:
        status, message = 400, f"Method {request.method} is not allowed on {request.url.path}"
    return JSONResponse(error_body(status, _CODES.get(status, "UNKNOWN"), message), status_code=status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse(
        error_body(500, "INTERNAL", "Internal server error (see the server log)"), status_code=500
    )


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def openapi(routes: list[Any]) -> dict[str, Any]:
    """A minimal OpenAPI 3 description of what is served (paths, methods,
    summaries); the request and response shapes are Pinecone's, API version
    2026-07."""
    from vecstore import __version__

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = route.path.replace(":path}", "}")
        doc = (route.endpoint.__doc__ or route.name or "").strip().split("\n")[0]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            params = [
                {"name": p.split(":")[0], "in": "path", "required": True, "schema": {"type": "string"}}
                for p in (seg[1:-1] for seg in route.path.split("/") if seg.startswith("{"))
            ]
            paths.setdefault(path, {})[method.lower()] = {
                "operationId": f"{route.name}_{method.lower()}",
                "summary": doc,
                "parameters": params,
                "responses": {"default": {"description": "Pinecone's response or error body"}},
            }
    return {
        "openapi": "3.0.3",
        "info": {"title": "vecstore serve (Pinecone REST API, 2026-07)", "version": __version__},
        "paths": paths,
    }


def create_app(state: ServerState) -> Starlette:
    """The app serving ``state``'s store."""
    routes: list[Any] = [  # the router tries them in order: the data plane (query first) is hottest
        *data.routes,
        *imports.routes,
        *control.routes,
        Route("/health", health, methods=["GET"]),
    ]
    described = openapi(routes)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(described)

    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.vecstore = state
    app.add_middleware(AccessLog)
    return app
