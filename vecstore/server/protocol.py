"""uvicorn's httptools protocol with each response sent in one write.

uvicorn writes a response's status line and headers (ASGI
``http.response.start``) and its body (``http.response.body``) with two
``transport.write`` calls, and uvloop sends each at once: two ``send``
calls and two TCP segments per answer, the first of which wakes the client
up for a head without its body.

:class:`CoalescingProtocol` hands uvicorn a transport proxy that holds a
response head (a write starting with a final status line) and sends it
together with the next write (the body) in one ``send``. A head with no
body write after it (HEAD, 204 / 304) goes out when uvicorn marks the
response complete, and anything held goes out before the connection is
closed. Interim responses (``100 Continue``) are not held. Nothing else
changes: it is uvicorn's protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"  # 1xx: sent at once (the client waits for it)


class CoalescingTransport:
    """A transport proxy that holds a response head until the next write
    (or :meth:`flush`, or :meth:`close`) and sends both in one call."""

    __slots__ = ("_transport", "_held")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            if data[:9] == _HEAD and data[:10] != _INTERIM:
                self._held = bytes(data)
                return
            if data:
                self._transport.write(data)
            return
        self._held = None
        if not self._transport.is_closing():
            self._transport.write(held + data if data else held)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = 0 if self._held is None else len(self._held)
        return self._transport.get_write_buffer_size() + held

    def __getattr__(self, name: str) -> Any:  # everything else: the real transport's
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol sending each response in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        proxy: Any = CoalescingTransport(transport)
        super().connection_made(proxy)

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
