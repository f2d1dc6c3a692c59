"""signaling_server.signaling.redis_rooms: one room across two real server processes' apps (servers A and B) on one
PostgreSQL and one Redis. Every socket, message and Redis key is real; the two apps run in this test process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from signaling_server.signaling.limits import SIGNAL_LIMITS
from signaling_server.signaling.rooms import ROOMS
from tests.conftest import THYROID_REQUEST, Api, seed
from tests.servers import REDIS_URL, two_apps
from tests.signaling_server.test_signaling import SDP, join, recv_type
from tests.waiting import eventually

pytestmark = pytest.mark.postgres


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read past any messages until the server closes the socket; the server's close code."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 30)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code


@pytest.fixture
async def servers(aiohttp_client: Any, tmp_path: Path) -> Any:
    async with two_apps(aiohttp_client, tmp_path) as (a, b):
        world = await seed(a.app)
        opened: list[Api] = []

        async def api(client: Any, username: str | None = None, bearer: str | None = None) -> Api:
            made = Api(client, bearer)
            opened.append(made)
            if username:
                await made.login(username)
            return made

        try:
            yield a, b, world, api
        finally:
            for made in opened:
                await made.close()


async def test_members_on_two_servers_are_one_room(servers: Any) -> None:
    a, b, world, api = servers
    sono = await api(a, "sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = c["id"]
    edge, edge_welcome = await join(await api(a, bearer=world.device_a_credential), cid)  # the edge on A
    edge_id = edge_welcome["you"]["id"]

    expert = await api(b, "expert")  # the expert on B sees the edge on A, and the edge sees the expert join
    ws, welcome = await join(expert, cid)
    me = welcome["you"]["id"]
    assert [p["id"] for p in welcome["peers"]] == [edge_id] and welcome["consultation"]["state"] == "live"
    assert (await recv_type(edge, "peer-joined"))["peer"]["id"] == me
    assert (await recv_type(edge, "state"))["consultation"]["state"] == "live"

    # Negotiation across the servers, checked at both ends: the offer on A, the answer on B.
    await edge.send_json({"type": "offer", "to": me, "sdp": SDP})
    assert await recv_type(ws, "offer") == {"type": "offer", "from": edge_id, "sdp": SDP}
    cand = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await edge.send_json({"type": "ice", "to": me, "candidate": cand})
    assert (await recv_type(ws, "ice"))["candidate"] == cand
    await ws.send_json({"type": "answer", "to": edge_id, "sdp": SDP})
    assert (await recv_type(edge, "answer"))["from"] == me
    await ws.send_json({"type": "answer", "to": edge_id, "sdp": SDP})  # B knows the link is stable now
    assert (await recv_type(ws, "error"))["code"] == "wrong_state"

    # Chat both ways, stored once.
    await ws.send_json({"type": "chat", "text": "tilt caudally"})
    assert (await recv_type(edge, "chat"))["text"] == "tilt caudally"
    sono_ws, sono_welcome = await join(sono, cid)  # the sonographer on A
    assert {p["id"] for p in sono_welcome["peers"]} == {edge_id, me}
    assert (await recv_type(ws, "peer-joined"))["peer"]["role"] == "sonographer"
    await sono_ws.send_json({"type": "chat", "text": "nodule in view"})
    assert (await recv_type(ws, "chat"))["text"] == "nodule in view"
    _, history = await expert.get(f"/api/v1/consultations/{cid}/chat")
    assert [m["text"] for m in history["messages"]] == ["tilt caudally", "nodule in view"]

    # Either server lists everyone; a capture asked on B reaches the edge on A and is announced on both.
    for client in (a, b):
        assert {p.id for p in client.app[ROOMS].peers(cid)} == {edge_id, me, sono_welcome["you"]["id"]}
    status, asked = await expert.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still"})
    assert status == 202, asked
    assert (await recv_type(edge, "capture"))["id"] == asked["id"]
    assert (await recv_type(sono_ws, "capture-status"))["state"] == "requested"

    # Leaving on A is seen on B; ending the consultation on B closes the sockets on A.
    await sono_ws.close()
    assert (await recv_type(ws, "peer-left"))["peer_id"] == sono_welcome["you"]["id"]
    status, _ = await expert.post(f"/api/v1/consultations/{cid}/end")
    assert status == 200
    assert (await recv_type(edge, "state"))["consultation"]["state"] == "ended"
    assert await closed_with(edge) == 4001
    await ws.close()


async def test_ending_credentials_on_one_server_closes_sockets_on_the_other(servers: Any) -> None:
    a, b, world, api = servers
    _, c = await (await api(a, "sono_a")).post("/api/v1/consultations", THYROID_REQUEST)
    edge, _ = await join(await api(b, bearer=world.device_a_credential), c["id"])
    ws, _ = await join(await api(b, "expert"), c["id"])
    admin = await api(a, "admin")
    status, _ = await admin.post(f"/api/v1/users/{world.users['expert']}/disable")
    assert status == 200
    assert await closed_with(ws) == 4003  # the expert's socket on B, closed by the admin's call on A
    status, _ = await admin.post(f"/api/v1/devices/{world.device_a}/revoke")
    assert status == 200
    assert await closed_with(edge) == 4001


async def test_the_members_of_a_server_that_stopped_beating_leave_the_room(servers: Any) -> None:
    a, b, world, api = servers
    _, c = await (await api(a, "sono_a")).post("/api/v1/consultations", THYROID_REQUEST)
    cid = c["id"]
    ws, _ = await join(await api(b, "expert"), cid)
    # What a killed server leaves behind: its member listed in Redis, under a heartbeat key that no longer exists.
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = a.app[ROOMS].cluster.prefix  # type: ignore[attr-defined]
    ghost = {
        "peer": {"id": "pdead", "role": "edge", "name": "edge", "user_id": None, "device_id": world.device_a},
        "server": "s-killed",
    }
    try:
        await redis.hset(f"{prefix}members:{cid}", "pdead", json.dumps(ghost))
        await redis.sadd(f"{prefix}rooms", cid)
        assert (await recv_type(ws, "peer-left"))["peer_id"] == "pdead"
        assert await redis.hget(f"{prefix}members:{cid}", "pdead") is None
    finally:
        await redis.aclose()
    await eventually(lambda: all(p.id != "pdead" for p in b.app[ROOMS].peers(cid)), what="the ghost gone from B")
    await ws.close()


async def test_an_edge_back_on_the_other_server_replaces_its_ghost(servers: Any) -> None:
    """A cut link: the edge's socket on A is dead but A has not noticed; the edge comes back through B."""
    a, b, world, api = servers
    sono = await api(a, "sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = c["id"]
    ghost, first = await join(await api(a, bearer=world.device_a_credential), cid)
    expert, _ = await join(await api(a, "expert"), cid)
    assert (await recv_type(ghost, "peer-joined"))["peer"]["role"] == "expert"
    _, again = await join(await api(b, bearer=world.device_a_credential), cid)
    assert [p["role"] for p in again["peers"]] == ["expert"]  # no ghost edge in the welcome
    assert (await recv_type(expert, "peer-left"))["peer_id"] == first["you"]["id"]
    assert (await recv_type(expert, "peer-joined"))["peer"]["id"] == again["you"]["id"]
    assert await closed_with(ghost) == 4002
    await eventually(lambda: [p.role for p in a.app[ROOMS].peers(cid)] == ["expert", "edge"], what="A's view")
    assert [p.id for p in b.app[ROOMS].peers(cid) if p.role == "edge"] == [again["you"]["id"]]


async def test_a_users_sockets_and_chat_lines_are_counted_on_both_servers(aiohttp_client: Any, tmp_path: Path) -> None:
    """signaling/limits.py shared through Redis: the socket limit and the chat rate hold for both servers together,
    a closed socket frees its place on every server, and a killed server's sockets stop counting."""
    limits = {"max_sockets_per_user": 2, "chat_line_burst": 3, "chat_lines_per_second": 0.01}
    async with two_apps(aiohttp_client, tmp_path, **limits) as (a, b):
        world = await seed(a.app)
        apis: list[Api] = []

        async def api(client: Any, username: str) -> Api:
            made = Api(client)
            apis.append(made)
            await made.login(username)
            return made

        async def refused(client: Any, username: str) -> int:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
                await (await api(client, username)).ws(path)
            return refusal.value.status

        redis = Redis.from_url(REDIS_URL, decode_responses=True)
        prefix = a.app[ROOMS].cluster.prefix  # type: ignore[attr-defined]
        try:
            sono_a = await api(a, "sono_a")
            _, c = await sono_a.post("/api/v1/consultations", THYROID_REQUEST)
            cid, path = c["id"], f"/api/v1/consultations/{c['id']}/signal"
            on_a, _ = await join(sono_a, cid)
            on_b, _ = await join(await api(b, "sono_a"), cid)  # the user's second socket, on the other server
            assert await refused(a, "sono_a") == 429 and await refused(b, "sono_a") == 429

            # One bucket of chat lines for the user's sockets on both servers: three, then refused on either.
            for n, ws in enumerate((on_a, on_b, on_a)):
                await ws.send_json({"type": "chat", "text": f"line {n}"})
                while (await recv_type(ws, "chat"))["text"] != f"line {n}":  # the other socket's lines come too
                    pass
            await on_b.send_json({"type": "chat", "text": "one too many"})
            error = await recv_type(on_b, "error")
            assert (error["code"], error["ref"]) == ("rate_limited", "chat")

            # A socket closed on A frees its place for B.
            await on_a.close()
            sockets = f"{prefix}sockets:user:{world.users['sono_a']}"
            await eventually(lambda: _absent(redis, sockets, a.app[ROOMS].cluster.server_id), what="A's count gone")  # type: ignore[attr-defined]
            again = await (await api(b, "sono_a")).ws(path)

            # What a killed server leaves: its count of the expert's sockets under a heartbeat key that expires.
            expert_sockets = f"{prefix}sockets:user:{world.users['expert']}"
            await redis.set(f"{prefix}server:s-killed", "1", px=60_000)
            await redis.hset(expert_sockets, "s-killed", 2)
            assert await refused(b, "expert") == 429  # its two sockets count while it beats
            await redis.delete(f"{prefix}server:s-killed")  # its heartbeat expired
            expert = await (await api(b, "expert")).ws(path)
            assert await redis.hget(expert_sockets, "s-killed") is None  # and its count is gone
            # A count gone wrong (a decrement lost while Redis was away) is set right by B's next sweep.
            b_id = b.app[ROOMS].cluster.server_id  # type: ignore[attr-defined]
            await redis.hset(sockets, b_id, 7)
            await b.app[SIGNAL_LIMITS].sockets.sweep()
            assert await redis.hget(sockets, b_id) == "2"  # on_b and again
            for ws in (on_b, again, expert):
                await ws.close()
        finally:
            await redis.aclose()
            for made in apis:
                await made.close()


async def _absent(redis: Redis, key: str, field: str) -> bool:
    return await redis.hget(key, field) is None
