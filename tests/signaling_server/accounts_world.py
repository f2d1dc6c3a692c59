"""The two-site world of tests/conftest.py (`people`), with the app's wall clock in the test's hands, and the socket
helpers the account tests share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from signaling_server.appkeys import CLOCK
from tests.conftest import THYROID_REQUEST, Api, World, make_app, seed

WAIT = 30.0  # generous: a bound on how long a real failure takes to show, not an expected duration


class UtcClock:
    """Aware-UTC wall time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Accounts:
    client: TestClient
    world: World
    clock: UtcClock
    opened: list[Api] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.client.app

    async def api(self, username: str | None = None, bearer: str | None = None, password: str | None = None) -> Api:
        api = Api(self.client, bearer)
        self.opened.append(api)
        if username:
            await (api.login(username, password) if password else api.login(username))
        return api

    def user_id(self, username: str) -> str:
        return self.world.users[username]


@asynccontextmanager
async def accounts_world(aiohttp_client: Any, db_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Accounts]:
    app = await make_app(db_url, tmp_path, **settings)
    clock = UtcClock()
    app[CLOCK] = clock
    client: TestClient = await aiohttp_client(app)
    world = Accounts(client, await seed(app), clock)
    try:
        yield world
    finally:
        for api in world.opened:
            await api.close()


async def patch(api: Api, path: str, body: Any) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": api.csrf} if api.csrf else {}
    async with api.session.patch(api.base + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), WAIT)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def recv_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        data = await recv(ws)
        if data["type"] == kind:
            return data


async def join(api: Api, cid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await api.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "join"})
    await recv_type(ws, "welcome")
    return ws


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes the socket; its close code. Fails if a text message arrives instead of it
    having closed within the bound."""
    seen: list[Any] = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)  # the server's code (ws.close_code is what the client ends up with)
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code
        seen.append(msg.data)


async def live_room(
    w: Accounts,
) -> tuple[str, Api, aiohttp.ClientWebSocketResponse, Api, aiohttp.ClientWebSocketResponse]:
    """A consultation of north with its sonographer and its expert both in the room (and the edge)."""
    sono = await w.api("sono_a")
    status, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    assert status == 201, c
    edge = await w.api(bearer=w.world.device_a_credential)
    await join(edge, c["id"])
    sono_ws = await join(sono, c["id"])
    expert = await w.api("expert")
    expert_ws = await join(expert, c["id"])
    return c["id"], sono, sono_ws, expert, expert_ws
