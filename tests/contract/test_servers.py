"""The test infrastructure itself: server helpers and the fault proxy."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import Emulator, ServerError, free_port, run_azurite, stop_process, wait_for_port

from vecstore.storage import Store


def test_wait_for_port_fails_early_when_the_process_died() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(ServerError, match="exited with code 3"):
        wait_for_port(free_port(), proc=proc, timeout=30, name="dying")
    assert time.monotonic() - started < 10


def test_wait_for_port_times_out() -> None:
    with pytest.raises(ServerError, match="did not listen"):
        wait_for_port(free_port(), timeout=0.3)


def test_stop_process_kills_what_ignores_terminate() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()  # handler installed
    stop_process(proc, timeout=0.5)
    assert proc.returncode == -9
    proc.stdout.close()


def test_missing_azurite_fails_with_an_install_hint(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="make install"), run_azurite(binary=tmp_path / "nope"):
        pass


def test_stores_do_not_share_filesystem_instances(s3_server: Emulator) -> None:
    s3_server.create_bucket("shared-check")
    a = Store(s3_server.uri("shared-check", "r"), s3_server.options())
    b = Store(s3_server.uri("shared-check", "r"), s3_server.options())
    assert a.fs is not b.fs
    assert s3_server.options() is not s3_server.options()


# --------------------------------------------------------------- the proxy
class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        _Upstream.seen.append(body.decode())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT  # noqa: N815


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Upstream.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _put(proxy: FaultProxy, body: str) -> tuple[int, bytes] | str:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.request("PUT", "/x", body=body.encode())
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (ConnectionError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def test_proxy_fates(upstream: str) -> None:
    with FaultProxy(upstream, statuses=(503,)) as proxy:
        proxy.add_plan(["forward", "fail", "drop", "lose"])
        assert _put(proxy, "a") == (200, b"ok")
        status = _put(proxy, "b")
        assert isinstance(status, tuple) and status[0] == 503
        assert isinstance(_put(proxy, "c"), str)  # dropped: no response
        assert isinstance(_put(proxy, "d"), str)  # lost: no response...
        assert _Upstream.seen == ["a", "d"]  # ...but the upstream got it
        assert proxy.stats["requests"] == 4
        assert proxy.faults() == 3


def test_proxy_is_deterministic_for_a_seed(upstream: str) -> None:
    def run(seed: int) -> list[Any]:
        with FaultProxy(upstream, fail_rate=0.3, drop_rate=0.2, seed=seed) as proxy:
            return [_put(proxy, str(i)) for i in range(30)]

    first = run(11)
    assert run(11) == first
    assert run(12) != first
    assert any(r == (200, b"ok") for r in first) and any(r != (200, b"ok") for r in first)


def test_proxy_rejects_bad_rates(upstream: str) -> None:
    with pytest.raises(ValueError):
        FaultProxy(upstream, fail_rate=0.8, drop_rate=0.5)
    with pytest.raises(ValueError):
        FaultProxy(upstream, plan=["explode"])
