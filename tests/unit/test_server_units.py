"""Units of vecstore.server without a running server: error mapping, JSON
field checks, key format, the wire conversion of an import record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")

from vecstore import errors as ve  # noqa: E402
from vecstore.schemas import ImportJob  # noqa: E402
from vecstore.server import codec, convert  # noqa: E402
from vecstore.server.auth import split_key  # noqa: E402
from vecstore.server.errors import ApiError, from_vecstore  # noqa: E402


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ve.InvalidArgumentError("x"), 400, "INVALID_ARGUMENT"),
        (ve.FilterError("x"), 400, "INVALID_ARGUMENT"),
        (ve.NotFoundError("x"), 404, "NOT_FOUND"),
        (ve.AlreadyExistsError("x"), 409, "ALREADY_EXISTS"),
        (ve.NotImplementedYet("x"), 400, "UNIMPLEMENTED"),
        (ve.StorageError("x"), 503, "UNAVAILABLE"),
        (ve.FormatError("x"), 500, "INTERNAL"),
    ],
)
def test_error_mapping(exc: ve.VecstoreError, status: int, code: str) -> None:
    err = from_vecstore(exc)
    assert (err.status, err.code) == (status, code)
    assert err.body() == {"error": {"code": code, "message": "x"}, "status": status}


def test_rate_limited_write_is_429() -> None:
    err = from_vecstore(ve.RateLimitedError("tail full"))
    assert err.status == 429 and err.headers == {"Retry-After": "1"}


def test_field_checks() -> None:
    assert codec.number_list([1, 2.5, -3], "v") == [1, 2.5, -3]
    for bad in (["1"], [True], [None], "x", [float("nan")], [[1.0]]):
        with pytest.raises(ApiError) as e:
            codec.number_list(bad, "v")
        assert e.value.status == 400
    assert codec.sparse_values({"indices": [1], "values": [0.5]}, "s") == {"indices": [1], "values": [0.5]}
    for bad in ({"indices": [1.5], "values": [1]}, {"indices": [1]}, {"indices": [1], "values": [1], "x": 1}, 3):
        with pytest.raises(ApiError):
            codec.sparse_values(bad, "s")
    with pytest.raises(ApiError):
        codec.req_str({}, "name")
    assert codec.opt_bool({}, "x") is False


def test_key_format() -> None:
    assert split_key("vsk_0123456789abcdef_" + "s" * 43) == ("0123456789abcdef", "s" * 43)
    for bad in ("", "pclocal", "vsk_0123_" + "s" * 43, "vsk_0123456789abcdef" + "s" * 43,
                "vsk_0123456789ABCDEF_" + "s" * 43, "vsk_0123456789abcdef_short"):
        assert split_key(bad) is None


def test_import_model_is_camel_case() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    job = ImportJob(id="7", index="i", uri="s3://b/x", status="Completed", created_at=t,
                    finished_at=t, percent_complete=100.0, records_imported=5)
    assert convert.import_model(job) == {
        "id": "7", "uri": "s3://b/x", "status": "Completed",
        "createdAt": "2026-01-02T03:04:05.678Z", "finishedAt": "2026-01-02T03:04:05.678Z",
        "percentComplete": 100.0, "recordsImported": 5,
    }



def test_quick_reads_run_inline_only_alone_and_local() -> None:
    import asyncio
    import threading

    from vecstore.server import context

    def where() -> str:
        return threading.current_thread().name

    async def main() -> None:
        loop_thread = threading.current_thread().name
        try:
            context.INFLIGHT[0] = 1  # alone: inline when local
            assert await context.quick(True, where) == loop_thread
            assert (await context.quick(False, where)).startswith("vecstore-serve")
            context.INFLIGHT[0] = 5  # other requests in flight: the pool
            assert (await context.quick(True, where)).startswith("vecstore-serve")
        finally:
            context.INFLIGHT[0] = 0
            context.close_pool()

    asyncio.run(main())
