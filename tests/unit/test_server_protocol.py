"""The server's HTTP protocol (vecstore.server.protocol): each response goes
to the socket in one write, and HTTP/1.1 behaves as uvicorn's own: keep-alive,
pipelining, ``Connection: close``, ``Expect: 100-continue``, HEAD, chunked
request bodies, errors. A real uvicorn server (the config of ``vecstore
serve``) on a real socket, serving the real app of an empty store."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("uvicorn", reason="the server extra is not installed")
pytest.importorskip("httptools", reason="the server extra is not installed")

import uvicorn  # noqa: E402

from vecstore.server.protocol import CoalescingProtocol, CoalescingTransport  # noqa: E402
from vecstore.server.run import make_app, uvicorn_config  # noqa: E402

WRITES: list[bytes] = []  # what the real transport was asked to send, in order


class _Recording:
    """The socket transport, with its writes recorded."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._t = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._t.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class RecordingProtocol(CoalescingProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    store = Path(tmp_path_factory.mktemp("store"))
    app = make_app(str(store))
    port = _free_port()
    config = uvicorn_config(app, "127.0.0.1", port, "warning")
    assert config.http is CoalescingProtocol  # what `vecstore serve` runs
    config.http = RecordingProtocol
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(30)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _read_response(s: socket.socket, buf: bytearray, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response from ``s`` (``buf``: bytes already read, left with the rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed before a response"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[: end + 4]
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    size = 0 if head or status in (100, 204, 304) else int(headers.get("content-length", "0"))
    while len(buf) < size:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside a body"
        buf += chunk
    body = bytes(buf[:size])
    del buf[:size]
    return status, headers, body


def _request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _wait_writes(n: int) -> list[bytes]:
    deadline = time.monotonic() + 5
    while len(WRITES) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(WRITES)


def test_each_response_is_one_write(server: int) -> None:
    WRITES.clear()
    with _connect(server) as s:
        buf = bytearray()
        for _ in range(3):  # keep-alive: three requests on one connection
            s.sendall(_request("GET", "/health"))
            status, headers, body = _read_response(s, buf)
            assert status == 200 and orjson.loads(body) == {"status": "ok"}
            assert headers["content-type"] == "application/json"
        s.sendall(_request("GET", "/no/such/route"))
        status, _, body = _read_response(s, buf)
        assert status == 404 and orjson.loads(body)["error"]["code"] == "NOT_FOUND"
        create = orjson.dumps({"name": "docs", "dimension": 3, "metric": "cosine",
                               "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}})
        s.sendall(_request("POST", "/indexes", create))
        status, _, body = _read_response(s, buf)
        assert status == 201, body
        s.sendall(_request("POST", "/idx/docs/query", orjson.dumps({"vector": [1, 0, 0], "topK": 3})))
        status, _, body = _read_response(s, buf)
        assert status == 200 and orjson.loads(body)["matches"] == []
    writes = _wait_writes(6)
    assert len(writes) == 6, [w[:40] for w in writes]
    for w in writes:  # status line, headers and body together
        assert w.startswith(b"HTTP/1.1 ") and b"\r\n\r\n" in w and not w.endswith(b"\r\n\r\n")


def test_pipelined_requests_answered_in_order(server: int) -> None:
    with _connect(server) as s:
        s.sendall(_request("GET", "/health") + _request("GET", "/nope") + _request("GET", "/health"))
        buf = bytearray()
        assert [_read_response(s, buf)[0] for _ in range(3)] == [200, 404, 200]


def test_connection_close_is_honoured(server: int) -> None:
    with _connect(server) as s:
        s.sendall(_request("GET", "/health", extra="Connection: close\r\n"))
        buf = bytearray()
        status, _, body = _read_response(s, buf)
        assert status == 200 and body == b'{"status":"ok"}'
        assert s.recv(100) == b""  # closed by the server, after the whole response


def test_expect_100_continue(server: int) -> None:
    body = orjson.dumps({"vector": [1, 0, 0], "topK": 1})
    with _connect(server) as s:
        s.sendall(
            b"POST /idx/missing/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        buf = bytearray()
        status, _, _ = _read_response(s, buf)  # sent before the body: not held back
        assert status == 100
        s.sendall(body)
        status, _, answer = _read_response(s, buf)
        assert status == 404 and orjson.loads(answer)["error"]["code"] == "NOT_FOUND"


def test_chunked_request_and_head(server: int) -> None:
    body = orjson.dumps({"vector": "not numbers", "topK": 1})
    with _connect(server) as s:
        s.sendall(
            b"POST /idx/missing/query HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        )
        buf = bytearray()
        status, _, answer = _read_response(s, buf)
        assert status == 400 and orjson.loads(answer)["error"]["code"] == "INVALID_ARGUMENT"
        s.sendall(_request("HEAD", "/health"))
        status, headers, _ = _read_response(s, buf, head=True)
        assert status in (200, 400) and "content-length" in headers
        s.sendall(_request("GET", "/health"))  # the connection still works after HEAD
        assert _read_response(s, buf)[:1] == (200,)


def test_bad_request_line_gets_400_and_close(server: int) -> None:
    with _connect(server) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        buf = bytearray()
        status, _, _ = _read_response(s, buf)
        assert status == 400
        assert s.recv(100) == b""


# ----------------------------------------------------- the proxy on its own


class _Sink:
    """A transport that keeps what is written (the proxy's unit checks)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_proxy_holds_a_response_head_until_the_next_write() -> None:
    sink = _Sink()
    t = CoalescingTransport(sink)  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    assert sink.sent == [] and t.get_write_buffer_size() == 38
    t.write(bytearray(b"body"))
    assert sink.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"]
    t.write(b"more")  # not a head: at once
    assert sink.sent[-1] == b"more"
    t.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # interim: at once
    assert sink.sent[-1] == b"HTTP/1.1 100 Continue\r\n\r\n"
    t.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    t.write(b"")  # an empty body: the head alone
    assert sink.sent[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")  # HEAD: no body write; the protocol flushes
    t.flush()
    t.flush()
    assert sink.sent[-1] == b"HTTP/1.1 200 OK\r\n\r\n" and len(sink.sent) == 5
    t.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    t.close()  # flushes before closing
    assert sink.sent[-1] == b"HTTP/1.1 400 Bad Request\r\n\r\n" and sink.closing
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"late")
    assert len(sink.sent) == 6  # a closing transport is not written to
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest: the real one's

    sink2 = _Sink()
    t2 = CoalescingTransport(sink2)  # type: ignore[arg-type]
    t2.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t2.abort()
    assert sink2.sent == [] and sink2.closing
