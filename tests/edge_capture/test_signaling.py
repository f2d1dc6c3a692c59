"""edge_capture.signaling: the edge's socket to a consultation's room, against the real server (typed messages
both ways, rejoining after the server drops it, leaving when the consultation ends) and against a server that
sends what the edge cannot decode (the network is the seam: a small aiohttp app plays the server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edge_capture.client import ServerClient
from edge_capture.signaling import SignalingSession
from signaling_server.signaling import messages as m
from signaling_server.signaling.rooms import ROOMS
from tests.conftest import THYROID_REQUEST
from tests.waiting import eventually

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class Edge:
    """A signaling session and what it heard, in order; it leaves for good when the consultation ends."""

    def __init__(self, client: ServerClient, cid: str) -> None:
        self.heard: asyncio.Queue[m.ServerMessage] = asyncio.Queue()
        self.drops = 0
        self.session = SignalingSession(client, cid, self.on_message, self.on_drop)

    async def on_message(self, message: m.ServerMessage) -> None:
        self.heard.put_nowait(message)
        if isinstance(message, m.StateChanged) and message.consultation["state"] == "ended":
            await self.session.finish()

    async def on_drop(self) -> None:
        self.drops += 1

    async def next(self, kind: type[Any]) -> Any:
        while True:
            message = await asyncio.wait_for(self.heard.get(), 10)
            if isinstance(message, kind):
                return message


@pytest.fixture
async def edge_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_the_edge_joins_negotiates_and_leaves_when_the_consultation_ends(
    people: Any, edge_session: aiohttp.ClientSession
) -> None:
    client, world, open_api = people
    sono, expert = await open_api("sono_a"), await open_api("expert")
    _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = consultation["id"]
    edge = Edge(ServerClient(str(client.make_url("/")), world.device_a_credential, edge_session), cid)
    running = asyncio.create_task(edge.session.run())

    welcome = await edge.next(m.Welcome)
    assert welcome.you.role == "edge" and welcome.peers == () and welcome.consultation["id"] == cid
    assert edge.session.connected
    page = await expert.ws(f"/api/v1/consultations/{cid}/signal")
    await page.send_json({"type": "join"})
    joined = await edge.next(m.PeerJoined)
    assert joined.peer.role == "expert" and joined.peer.user_id == world.users["expert"]
    assert (await edge.next(m.StateChanged)).consultation["state"] == "live"

    await edge.session.send(m.Offer(to=joined.peer.id, sdp=SDP))
    offer = await page.receive_json(timeout=5)
    while offer["type"] != "offer":
        offer = await page.receive_json(timeout=5)
    assert offer == {"type": "offer", "from": welcome.you.id, "sdp": SDP}
    await page.send_json({"type": "answer", "to": welcome.you.id, "sdp": SDP})
    assert await edge.next(m.RelayedAnswer) == m.RelayedAnswer(joined.peer.id, SDP)

    status, _ = await expert.post(f"/api/v1/consultations/{cid}/end")
    assert status == 200
    await asyncio.wait_for(running, 10)  # the ended state finished the session: no rejoin
    assert edge.session.finished and not edge.session.connected and edge.drops == 1
    await page.close()


async def test_the_edge_rejoins_as_a_new_peer_when_the_server_drops_it(
    people: Any, edge_session: aiohttp.ClientSession
) -> None:
    client, world, open_api = people
    sono = await open_api("sono_a")
    _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    edge = Edge(ServerClient(str(client.make_url("/")), world.device_a_credential, edge_session), consultation["id"])
    running = asyncio.create_task(edge.session.run())
    try:
        first = await edge.next(m.Welcome)
        await client.server.app[ROOMS].close_room(consultation["id"])  # 4001; the consultation is still open
        again = await edge.next(m.Welcome)
        assert again.you.id != first.you.id and edge.drops == 1 and not edge.session.finished
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_what_does_not_decode_is_dropped_and_a_failing_handler_does_not_leave_the_room(
    aiohttp_server: Any, edge_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    joins: list[Any] = []

    async def signal(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        joins.append(await ws.receive_json())
        for text in ("{not json", json.dumps({"type": "peer-left"}), json.dumps({"type": "teleport"})):
            await ws.send_str(text)
        await ws.send_json({"type": "peer-left", "peer_id": "p1"})
        await ws.send_json({"type": "peer-left", "peer_id": "p2", "why": "ignored"})
        await ws.close(code=4001)
        return ws

    async def open_consultations(request: web.Request) -> web.Response:
        return web.json_response({"consultations": []})  # it ended meanwhile: do not come back

    app = web.Application()
    app.router.add_get("/api/v1/consultations/c1/signal", signal)
    app.router.add_get("/api/v1/devices/me/consultations", open_consultations)
    server = await aiohttp_server(app)
    heard: list[m.ServerMessage] = []

    async def on_message(message: m.ServerMessage) -> None:
        heard.append(message)
        raise RuntimeError("a bug in handling one message")

    async def on_drop() -> None:
        pass

    session = SignalingSession(
        ServerClient(str(server.make_url("/")), "dev_x_y", edge_session), "c1", on_message, on_drop
    )
    await asyncio.wait_for(session.run(), 10)
    assert joins == [{"type": "join", "observe": False}]
    assert heard == [m.PeerLeft("p1"), m.PeerLeft("p2")] and session.finished
    undecodable = [r.getMessage() for r in caplog.records if "undecodable" in r.getMessage()]
    assert [line.split("dropped: ", 1)[1] for line in undecodable] == [
        "bad_json the message is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "bad_message 'peer_id' must be a non-empty string",
        "unknown_type unknown message type 'teleport'",
    ]


async def test_a_message_that_is_not_json_is_not_sent(
    aiohttp_server: Any, edge_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """NaN in a capture report: the server would refuse it and a page's JSON.parse could not read it; the edge logs
    it and sends the next message as usual."""
    received: list[Any] = []
    sent = asyncio.Event()

    async def signal(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            received.append(json.loads(msg.data))
            if received[-1]["type"] == "capture-failed":
                sent.set()
        return ws

    app = web.Application()
    app.router.add_get("/api/v1/consultations/c1/signal", signal)
    server = await aiohttp_server(app)

    async def ignore(message: m.ServerMessage) -> None:
        pass

    async def on_drop() -> None:
        pass

    session = SignalingSession(ServerClient(str(server.make_url("/")), "dev_x_y", edge_session), "c1", ignore, on_drop)
    running = asyncio.create_task(session.run())
    await eventually(lambda: session.connected, what="the edge's socket")
    await session.send(m.Captured("c-1", "1.2.3", 1, float("nan")))
    await session.send(m.CaptureFailed("c-2", "no_frame", "no frame yet"))
    await asyncio.wait_for(sent.wait(), 10)
    assert [r["type"] for r in received] == ["join", "capture-failed"]
    assert any("not sent, not JSON" in r.getMessage() for r in caplog.records)
    await session.finish()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


async def test_a_silent_socket_is_given_up_and_the_edge_joins_again_at_once(
    aiohttp_server: Any, edge_session: aiohttp.ClientSession
) -> None:
    """A cut link looks like a server that stops answering: the heartbeat's pong never comes. The edge gives the
    socket up and, the consultation being live, opens a fresh one without backing off (the network is the seam: a
    small aiohttp app plays a server whose first socket goes silent)."""
    joins: list[float] = []

    async def signal(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=len(joins) > 0)  # the first socket answers no ping: a dead link
        await ws.prepare(request)
        async for msg in ws:
            if json.loads(msg.data)["type"] == "join":
                joins.append(asyncio.get_running_loop().time())
                await ws.send_str(m.encode(m.Welcome(m.Peer("e", "edge", "edge", None, "d"), (), LIVE)))
        return ws

    app = web.Application()
    app.router.add_get("/api/v1/consultations/c1/signal", signal)
    server = await aiohttp_server(app)
    edge = Edge(ServerClient(str(server.make_url("/")), "dev_x_y", edge_session), "c1")
    edge.session = SignalingSession(
        edge.session.client, "c1", edge.on_message, edge.on_drop, live=lambda: True, heartbeat=0.5
    )
    running = asyncio.create_task(edge.session.run())
    try:
        await eventually(lambda: len(joins) == 2, timeout=30, what="a second join on a fresh socket")
        assert edge.drops >= 1 and edge.session.sessions == 2
    finally:
        await edge.session.finish()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


LIVE = {"id": "c1", "state": "live"}
