"""signaling_server.app's error middleware: an unexpected error after a WebSocket upgrade must not be answered with
HTTP (which would land as garbage inside the socket); before the upgrade it is a JSON 500 as usual."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from aiohttp import web

from signaling_server.app import error_middleware


async def _fails_after_upgrade(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    raise RecursionError("maximum recursion depth exceeded")  # what a deep JSON message used to raise


async def _fails_before(request: web.Request) -> web.StreamResponse:
    raise RecursionError("maximum recursion depth exceeded")


async def _raw_upgrade(host: str, port: int, path: str, until: bytes = b"") -> bytes:
    """What the server writes back to an upgrade request, up to the connection's end (or `until`)."""
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    received = b""
    while not (until and until in received) and (chunk := await asyncio.wait_for(reader.read(65536), 10)):
        received += chunk
    writer.close()
    await writer.wait_closed()
    return received


async def test_an_error_after_the_upgrade_writes_no_http_answer_into_the_socket(aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/after", _fails_after_upgrade)
    app.router.add_get("/before", _fails_before)
    client = await aiohttp_client(app)
    host, port = client.server.host, client.server.port
    assert isinstance(port, int)

    after = await _raw_upgrade(host, port, "/after")
    assert after.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"HTTP/1.1 500" not in after and b"internal" not in after

    before = await _raw_upgrade(host, port, "/before", until=b"internal server error")
    assert before.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b'{"error": "internal", "message": "internal server error"}' in before
