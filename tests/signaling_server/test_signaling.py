"""The signaling WebSocket with the real app: joining, relaying, chat, refusals that leave the room running."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import THYROID_REQUEST

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def recv_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        data = await recv(ws)
        if data["type"] == kind:
            return data


async def join(api: Any, cid: str, **extra: Any) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await api.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "join", **extra})
    return ws, await recv_type(ws, "welcome")


@pytest.fixture
async def room(people: Any) -> Any:
    client, world, open_api = people
    sono = await open_api("sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    edge_api = await open_api(bearer=world.device_a_credential)
    edge, welcome = await join(edge_api, c["id"])
    assert welcome["you"]["role"] == "edge" and welcome["peers"] == []
    return world, open_api, c["id"], sono, edge, welcome["you"]["id"]


async def test_expert_join_goes_live_and_negotiation_is_relayed(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    expert = await open_api("expert")
    ws, welcome = await join(expert, cid)
    me = welcome["you"]
    assert me["role"] == "expert" and [p["role"] for p in welcome["peers"]] == ["edge"]
    assert welcome["consultation"]["state"] == "live"
    assert (await recv_type(edge, "peer-joined"))["peer"]["id"] == me["id"]
    assert (await recv_type(edge, "state"))["consultation"]["expert"]["name"] == "Expert"

    await edge.send_json({"type": "offer", "to": me["id"], "sdp": SDP})
    assert await recv_type(ws, "offer") == {"type": "offer", "from": edge_id, "sdp": SDP}
    cand = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await edge.send_json({"type": "ice", "to": me["id"], "candidate": cand})
    assert (await recv_type(ws, "ice"))["candidate"] == cand
    await ws.send_json({"type": "answer", "to": edge_id, "sdp": SDP})
    assert (await recv_type(edge, "answer"))["from"] == me["id"]

    # The same answer again: no pending offer any more.
    await ws.send_json({"type": "answer", "to": edge_id, "sdp": SDP})
    err = await recv_type(ws, "error")
    assert (err["code"], err["ref"]) == ("wrong_state", "answer")
    # An offer from a page: only the edge offers.
    await ws.send_json({"type": "offer", "to": edge_id, "sdp": SDP})
    assert (await recv_type(ws, "error"))["code"] == "not_allowed"
    # Two offers in a row from the edge: the second waits for an answer.
    await edge.send_json({"type": "offer", "to": me["id"], "sdp": SDP})
    await edge.send_json({"type": "offer", "to": me["id"], "sdp": SDP})
    assert (await recv_type(edge, "error"))["code"] == "wrong_state"
    await ws.close()
    await edge.close()


async def test_malformed_messages_get_errors_and_the_room_goes_on(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    ws = await sono.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "chat", "text": "before join"})
    assert (await recv(ws))["code"] == "not_joined"
    await ws.send_json({"type": "join"})
    me = (await recv_type(ws, "welcome"))["you"]
    cases = [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"no": "type"}), "bad_message"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "join"}), "already_joined"),
        (json.dumps({"type": "answer", "to": edge_id, "sdp": "hello"}), "bad_message"),
        (json.dumps({"type": "ice", "to": "p-nobody", "candidate": None}), "unknown_peer"),
        (json.dumps({"type": "ice", "to": edge_id, "candidate": {"candidate": 5}}), "bad_message"),
        (json.dumps({"type": "chat", "text": "x" * 2001}), "bad_message"),
    ]
    for raw, code in cases:
        await ws.send_str(raw)
        err = await recv_type(ws, "error")
        assert err["code"] == code, (raw[:40], err)
        assert err["message"]
    await ws.send_bytes(b"\x00\x01")
    assert (await recv_type(ws, "error"))["code"] == "bad_json"
    # The room still works for everyone.
    await ws.send_json({"type": "chat", "text": "gain looks high"})
    line = await recv_type(edge, "chat")
    assert (line["text"], line["role"], line["name"]) == ("gain looks high", "sonographer", "Sono A")
    assert (await recv_type(ws, "chat"))["from"] == me["user_id"]
    status, history = await sono.get(f"/api/v1/consultations/{cid}/chat")
    assert [m["text"] for m in history["messages"]] == ["gain looks high"] and history["next_before"] is None
    await ws.close()
    await edge.close()


async def test_observers_and_second_expert_are_view_only(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    expert, expert2, trainer = await open_api("expert"), await open_api("expert2"), await open_api("trainer")
    ws1, w1 = await join(expert, cid)
    ws2, w2 = await join(expert2, cid)
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:  # a trainer observes only when invited
        await trainer.ws(f"/api/v1/consultations/{cid}/signal")
    assert exc.value.status == 404
    status, invited = await sono.post(f"/api/v1/consultations/{cid}/observers", {"user_id": world.users["trainer"]})
    assert status == 201 and invited["grant_id"]
    ws3, w3 = await join(trainer, cid)
    ws4, w4 = await join(expert, cid, observe=True)
    assert [w["you"]["role"] for w in (w1, w2, w3, w4)] == ["expert", "observer", "observer", "observer"]
    await ws3.send_json({"type": "chat", "text": "hello"})
    assert (await recv_type(ws3, "error"))["code"] == "not_allowed"
    # The expert dropping and coming back is the expert again.
    await ws1.close()
    assert (await recv_type(ws2, "peer-left"))["peer_id"] == w1["you"]["id"]
    ws1b, w1b = await join(expert, cid)
    assert w1b["you"]["role"] == "expert" and w1b["you"]["id"] != w1["you"]["id"]
    for ws in (ws1b, ws2, ws3, ws4, edge):
        await ws.close()


async def test_outsiders_are_refused_before_the_upgrade(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    for username, status, code in [("sono_b", 404, "not_found"), ("sono_a2", 403, "not_participant")]:
        api = await open_api(username)
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await api.ws(f"/api/v1/consultations/{cid}/signal")
        assert exc.value.status == status
        url = api.base + f"/api/v1/consultations/{cid}/signal"
        async with api.session.get(url, headers={"Origin": api.base}) as r:
            assert (r.status, (await r.json())["error"]) == (status, code)
    device_b = await open_api(bearer=world.device_b_credential)
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await device_b.ws(f"/api/v1/consultations/{cid}/signal")
    assert exc.value.status == 404
    # A cookie socket from another origin is refused.
    async with sono.session.get(
        sono.base + f"/api/v1/consultations/{cid}/signal", headers={"Origin": "http://evil.example"}
    ) as r:
        assert (r.status, (await r.json())["error"]) == (403, "bad_origin")
    await edge.close()


async def test_revoked_device_is_dropped_and_others_keep_the_room(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    expert, admin = await open_api("expert"), await open_api("admin")
    ws, _ = await join(expert, cid)
    await admin.post(f"/api/v1/devices/{world.device_a}/revoke")
    msg = await asyncio.wait_for(edge.receive(), 5)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(edge.receive(), 5)
    assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 4001, "device revoked")
    assert (await recv_type(ws, "peer-left"))["peer_id"] == edge_id
    await ws.send_json({"type": "chat", "text": "still here"})
    assert (await recv_type(ws, "chat"))["text"] == "still here"
    again = await open_api(bearer=world.device_a_credential)
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await again.ws(f"/api/v1/consultations/{cid}/signal")
    assert exc.value.status == 401
    await ws.close()


async def test_ending_closes_the_room_for_everyone(room: Any) -> None:
    world, open_api, cid, sono, edge, edge_id = room
    expert = await open_api("expert")
    ws, _ = await join(expert, cid)
    status, ended = await expert.post(f"/api/v1/consultations/{cid}/end")
    assert status == 200 and ended["state"] == "ended"
    assert (await recv_type(edge, "state"))["consultation"]["state"] == "live"  # when the expert joined
    assert (await recv_type(edge, "state"))["consultation"]["state"] == "ended"
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await expert.ws(f"/api/v1/consultations/{cid}/signal")
    assert exc.value.status == 409
    await ws.close()
    await edge.close()


async def test_an_edge_back_on_a_new_socket_replaces_its_ghost(room: Any) -> None:
    """A cut link leaves the edge's old socket open on the server for up to its heartbeat; the edge, back first on
    a new socket, takes its place at once: pages hear peer-left (old) before peer-joined (new), never twice."""
    world, open_api, cid, sono, edge, edge_id = room
    expert = await open_api("expert")
    ws, _ = await join(expert, cid)
    await recv_type(edge, "peer-joined")
    again = await open_api(bearer=world.device_a_credential)
    edge2, welcome = await join(again, cid)
    assert welcome["you"]["role"] == "edge" and welcome["you"]["id"] != edge_id
    assert [p["role"] for p in welcome["peers"]] == ["expert"]  # no ghost edge in the room
    assert (await recv_type(ws, "peer-left"))["peer_id"] == edge_id
    assert (await recv_type(ws, "peer-joined"))["peer"]["id"] == welcome["you"]["id"]

    msg = await asyncio.wait_for(edge.receive(), 5)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(edge.receive(), 5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4002)
    # The new edge negotiates with the page; the ghost's end tells nobody anything more.
    await edge2.send_json({"type": "offer", "to": _peer_id(welcome, "expert"), "sdp": SDP})
    assert (await recv_type(ws, "offer"))["from"] == welcome["you"]["id"]
    await ws.send_json({"type": "chat", "text": "back"})
    while (data := await recv(ws))["type"] != "chat":
        assert data["type"] != "peer-left", data
    await ws.close()
    await edge2.close()


async def test_a_ping_is_answered_pong_to_its_sender_only(room: Any) -> None:
    """The page's liveness check: a browser cannot send WebSocket pings, so it asks the room's socket itself."""
    world, open_api, cid, sono, edge, edge_id = room
    expert = await open_api("expert")
    ws = await expert.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "ping"})  # before join too
    assert await recv(ws) == {"type": "pong"}
    await ws.send_json({"type": "join"})
    await recv_type(ws, "welcome")
    await ws.send_json({"type": "ping"})
    assert await recv_type(ws, "pong") == {"type": "pong"}
    await ws.send_json({"type": "chat", "text": "after the ping"})
    while (data := await recv(edge))["type"] != "chat":
        assert data["type"] != "pong", data
    await ws.close()


def _peer_id(welcome: dict[str, Any], role: str) -> str:
    return str(next(p["id"] for p in welcome["peers"] if p["role"] == role))
