"""JSON in and out of the server with orjson, and the checks every body gets.

Bodies are read whole up to a cap (``MAX_BODY_BYTES``, 413 beyond it; the
seeds' upsert limit is 2 MB, so the cap leaves room for JSON overhead) and
must be one JSON object. Field readers check the JSON type of each field, so
a wrong type is a 400 that names the field, never an exception further in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from vecstore.server.errors import ApiError

MAX_BODY_BYTES = 4 * 1024 * 1024
_NUMBERS = frozenset({int, float})  # exact types: bool (a subclass of int) is not a number


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def read_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty and not ``required``)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "INVALID_ARGUMENT", "Invalid Content-Length header") from None
        if size > MAX_BODY_BYTES:
            raise too_large(size)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise too_large(total)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise ApiError(400, "INVALID_ARGUMENT", "The request body is empty: expected a JSON object")
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(
            400, "INVALID_ARGUMENT",
            f"The request body must be a JSON object, got {json_type(body)}",
        )
    return body


def too_large(size: int) -> ApiError:
    return ApiError(
        413, "OUT_OF_RANGE",
        f"Request size {size} bytes exceeds the maximum supported size of {MAX_BODY_BYTES} bytes",
    )


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def bad(field: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400, "INVALID_ARGUMENT", f"Invalid value for {field}: expected {expected}, got {json_type(value)}"
    )


# ------------------------------------------------------------- field readers


def opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(key, "a string", value)
    return value


def req_str(body: Mapping[str, Any], key: str) -> str:
    value = opt_str(body, key)
    if value is None:
        raise ApiError(400, "INVALID_ARGUMENT", f"Missing required field {key!r}")
    return value


def opt_bool(body: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(key, "a boolean", value)
    return value


def opt_object(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(key, "an object", value)
    return value


def number_list(value: Any, field: str) -> list[float]:
    """A JSON array of finite numbers (booleans and strings refused)."""
    if not isinstance(value, list):
        raise bad(field, "an array of numbers", value)
    if set(map(type, value)) <= _NUMBERS and all(map(math.isfinite, value)):
        return value  # the common case, checked in C loops
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ApiError(
                400, "INVALID_ARGUMENT",
                f"Invalid value for {field}: expected an array of finite numbers, found {json_type(x)}",
            )
    return value


def sparse_values(value: Any, field: str) -> dict[str, list[Any]] | None:
    """``{"indices": [uint32...], "values": [float...]}`` checked for types."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(field, "an object with indices and values", value)
    indices = value.get("indices")
    values = value.get("values")
    if not isinstance(indices, list) or any(
        isinstance(i, bool) or not isinstance(i, int) for i in indices
    ):
        raise bad(f"{field}.indices", "an array of integers", indices)
    checked = number_list(values, f"{field}.values")
    extra = set(value) - {"indices", "values"}
    if extra:
        raise ApiError(
            400, "INVALID_ARGUMENT", f"Unknown field(s) in {field}: {', '.join(sorted(extra))}"
        )
    return {"indices": indices, "values": checked}


def str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(x, str) for x in value):
        raise bad(field, "an array of strings", value)
    return value
