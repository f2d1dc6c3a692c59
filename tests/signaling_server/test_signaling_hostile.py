"""The signaling socket under hostile input, with the real app on SQLite and PostgreSQL: what the fuzzing of issue 10
found (deep JSON, lone surrogates, NaN, the size limit in bytes, ghost peers, floods), the per-user socket quota and
rate limits, and the paged chat history."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from signaling_server.appkeys import DB
from signaling_server.db.models import ChatMessage
from signaling_server.signaling import messages as m
from signaling_server.signaling.limits import SIGNAL_LIMITS
from signaling_server.signaling.rooms import ROOMS
from tests.clocks import FakeClock
from tests.conftest import THYROID_REQUEST, Api, World, make_app, seed
from tests.waiting import eventually

from .test_signaling import recv_type

CAPTURED = {"type": "captured", "id": "c-1", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": None}


@dataclass
class Place:
    client: TestClient
    world: World
    clock: FakeClock
    open_api: Callable[..., Awaitable[Api]]

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def consultation(self, sono: Api) -> str:
        status, created = await sono.post("/api/v1/consultations", THYROID_REQUEST)
        assert status == 201, created
        return str(created["id"])

    async def chat_rows(self) -> int:
        async with self.app[DB]() as db:
            return int(await db.scalar(select(func.count()).select_from(ChatMessage)) or 0)


Start = Callable[..., Awaitable[Place]]


@pytest.fixture
async def start(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Start]:
    """`await start(**settings)`: the real app on each database, seeded, its limits' clock a FakeClock."""
    opened: list[Api] = []

    async def go(**settings: Any) -> Place:
        app = await make_app(db_url, tmp_path, **settings)
        client = await aiohttp_client(app)
        world = await seed(app)
        clock = FakeClock()
        app[SIGNAL_LIMITS].clock = clock

        async def open_api(username: str | None = None, bearer: str | None = None) -> Api:
            api = Api(client, bearer)
            opened.append(api)
            if username:
                await api.login(username)
            return api

        return Place(client, world, clock, open_api)

    yield go
    for api in opened:
        await api.close()


async def joined(api: Api, cid: str, **extra: Any) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await api.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "join", **extra})
    return ws, (await recv_type(ws, "welcome"))["you"]


async def a_live_room(place: Place) -> tuple[str, Any, Any, Any, dict[str, Any]]:
    """A consultation with its edge, sonographer and expert in the room: (cid, edge, sono, expert, expert peer)."""
    sono_api = await place.open_api("sono_a")
    cid = await place.consultation(sono_api)
    edge, _ = await joined(await place.open_api(bearer=place.world.device_a_credential), cid)
    sono, _ = await joined(sono_api, cid)
    expert, expert_peer = await joined(await place.open_api("expert"), cid)
    return cid, edge, sono, expert, expert_peer


async def heard(ws: aiohttp.ClientWebSocketResponse, text: str) -> dict[str, Any]:
    """The chat line with `text`, skipping earlier lines."""
    while (line := await recv_type(ws, "chat"))["text"] != text:
        pass
    return line


async def closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The first message that is not text (the close), skipping what the room sent before it."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg


# ---- what the fuzzing found -------------------------------------------------------------------------------------


async def test_deep_json_is_refused_with_bad_json_and_the_socket_stays_open(start: Start) -> None:
    place = await start()
    cid, edge, sono, expert, _ = await a_live_room(place)
    for ws in (edge, sono):
        for depth in (17, 1000, 30000):
            await ws.send_str('{"type": "ice", "to": "p1", "candidate": ' + "[" * depth + "]" * depth + "}")
            error = await recv_type(ws, "error")
            assert error["code"] == "bad_json" and "nested deeper than 16 levels" in error["message"]
    await sono.send_json({"type": "chat", "text": "still here"})
    assert (await recv_type(expert, "chat"))["text"] == "still here"


async def test_a_lone_surrogate_is_refused_and_never_reaches_the_room(start: Start) -> None:
    place = await start()
    cid, edge, sono, expert, expert_peer = await a_live_room(place)
    bad = [
        '{"type": "captured", "id": "\\ud800", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": null}',
        '{"type": "capture-failed", "id": "c-1", "code": "no_frame", "message": "\\udfff"}',
    ]
    for raw in bad:
        await edge.send_str(raw)
        error = await recv_type(edge, "error")
        assert error["code"] == "bad_json" and "lone surrogate" in error["message"]
    await sono.send_str('{"type": "chat", "text": "\\ud83d half an emoji"}')
    assert (await recv_type(sono, "error"))["code"] == "bad_json"
    assert await place.chat_rows() == 0
    # Nobody received a capture-status; everyone still receives what comes next; the sender is still in the room.
    await edge.send_json(CAPTURED)
    for ws in (sono, expert, edge):
        status = await recv_type(ws, "capture-status")
        assert (status["id"], status["state"]) == ("c-1", "captured")
    await sono.send_json({"type": "chat", "text": "after the bad line"})
    assert (await recv_type(expert, "chat"))["text"] == "after the bad line"
    assert await place.chat_rows() == 1


async def test_a_message_that_cannot_be_sent_is_dropped_and_no_peer_becomes_a_ghost(start: Start) -> None:
    """The same lone surrogate built inside the server (past the codec): each member's writer drops that one
    message and goes on; a member who then leaves is announced with peer-left."""
    place = await start()
    cid, edge, sono, expert, expert_peer = await a_live_room(place)
    room = place.app[ROOMS].existing(cid)
    room.broadcast(m.CaptureStatus("\ud800", "failed", None, {"message": "\udfff"}))
    room.broadcast(m.CaptureStatus("c-2", "failed", None, {"code": "no_frame"}))
    for ws in (edge, sono, expert):
        assert (await recv_type(ws, "capture-status"))["id"] == "c-2"
    await expert.close()
    assert (await recv_type(sono, "peer-left"))["peer_id"] == expert_peer["id"]
    assert (await recv_type(edge, "peer-left"))["peer_id"] == expert_peer["id"]
    assert expert_peer["id"] not in room.members


async def test_nan_and_infinity_are_refused_in_a_capture_request(start: Start) -> None:
    place = await start()
    cid, edge, sono, expert, _ = await a_live_room(place)
    sono_api = await place.open_api("sono_a")
    url = f"{sono_api.base}/api/v1/consultations/{cid}/captures"
    headers = {"X-CSRF-Token": sono_api.csrf or "", "Content-Type": "application/json"}
    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = f'{{"kind": "still", "labels": {{}}, "frame_capture_ms": {number}}}'
        async with sono_api.session.post(url, data=body, headers=headers) as r:
            answer = await r.json()
        assert (r.status, answer["error"]) == (400, "invalid_request"), answer
    body = '{"kind": "still", "labels": {"side": NaN}}'
    async with sono_api.session.post(url, data=body, headers=headers) as r:
        assert r.status == 400
    # The edge was sent nothing: the next thing it hears is a real request.
    status, _ = await sono_api.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still", "labels": {}})
    assert status == 202
    command = await recv_type(edge, "capture")
    assert command["frame_capture_ms"] is None


async def test_a_frame_over_64_kib_of_utf8_closes_the_socket_with_1009(start: Start) -> None:
    place = await start()
    cid, edge, sono, expert, expert_peer = await a_live_room(place)
    text = "中" * (m.MAX_MESSAGE_BYTES // 3 + 10)  # fewer characters than the limit, more bytes
    await expert.send_str(json.dumps({"type": "chat", "text": text}, ensure_ascii=False))
    assert (await closed(expert)).data == 1009
    assert (await recv_type(sono, "peer-left"))["peer_id"] == expert_peer["id"]
    assert await place.chat_rows() == 0


async def test_a_text_frame_that_is_not_utf8_closes_the_socket_with_1007(start: Start) -> None:
    place = await start()
    cid, edge, sono, expert, expert_peer = await a_live_room(place)
    await expert.send_frame(b'{"type": "chat", "text": "\xed\xa0\x80"}', aiohttp.WSMsgType.TEXT)  # a UTF-8 surrogate
    assert (await closed(expert)).data == 1007
    assert (await recv_type(sono, "peer-left"))["peer_id"] == expert_peer["id"]
    assert await place.chat_rows() == 0


async def test_a_flood_of_refused_messages_writes_a_few_log_lines_not_one_each(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    place = await start(signal_message_burst=10_000)
    cid, edge, sono, expert, _ = await a_live_room(place)
    caplog.set_level(logging.INFO, logger="signaling_server.signaling.handler")
    for _ in range(200):  # fewer than a socket's outbox holds: the client reads them afterwards
        await sono.send_str("{not json")
    for _ in range(200):
        assert (await recv_type(sono, "error"))["code"] == "bad_json"
    await sono.close()
    await eventually(lambda: any("more, not logged one by one" in r.getMessage() for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records if r.name == "signaling_server.signaling.handler"]
    assert len(lines) <= 3, lines
    assert any("199 bad_json more" in line for line in lines), lines


# ---- per-user limits --------------------------------------------------------------------------------------------


async def test_a_user_holds_at_most_n_sockets_and_the_next_is_refused_before_the_upgrade(start: Start) -> None:
    place = await start(max_sockets_per_user=2, max_sockets_per_device=1)
    sono = await place.open_api("sono_a")
    cid = await place.consultation(sono)
    path = f"/api/v1/consultations/{cid}/signal"
    first, second = await sono.ws(path), await sono.ws(path)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await sono.ws(path)
    assert refused.value.status == 429
    async with sono.session.get(sono.base + path, headers={"Origin": sono.base}) as r:
        assert (r.status, (await r.json())["error"]) == (429, "too_many_sockets")
    # Other people are not affected; the same user gets a socket again once one is closed.
    other = await (await place.open_api("expert")).ws(path)
    await first.close()
    quota = place.app[SIGNAL_LIMITS].sockets
    await eventually(lambda: quota.held.get(f"user:{place.world.users['sono_a']}") == 1)
    third = await sono.ws(path)
    # An edge device has its own limit.
    device = await place.open_api(bearer=place.world.device_a_credential)
    edge = await device.ws(path)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await device.ws(path)
    assert refused.value.status == 429
    for ws in (second, third, other, edge):
        await ws.close()
    await eventually(lambda: not quota.held)


async def test_chat_over_the_rate_limit_is_refused_and_neither_broadcast_nor_stored(start: Start) -> None:
    place = await start(chat_line_burst=3, chat_lines_per_second=1.0)
    cid, edge, sono, expert, _ = await a_live_room(place)
    second, _ = await joined(await place.open_api("sono_a"), cid)  # the user's other socket shares the bucket
    for n in range(3):
        await (sono if n < 2 else second).send_json({"type": "chat", "text": f"line {n}"})
        assert (await recv_type(expert, "chat"))["text"] == f"line {n}"
    await second.send_json({"type": "chat", "text": "one too many"})
    error = await recv_type(second, "error")
    assert (error["code"], error["ref"]) == ("rate_limited", "chat")
    assert await place.chat_rows() == 3
    # Others are not limited by this user; after a second the user may chat again.
    await expert.send_json({"type": "chat", "text": "from the expert"})
    await heard(sono, "from the expert")
    place.clock.advance(1.0)
    await sono.send_json({"type": "chat", "text": "a second later"})
    await heard(expert, "a second later")
    assert await place.chat_rows() == 5


async def test_messages_over_the_rate_limit_are_refused_and_not_relayed(start: Start) -> None:
    place = await start(signal_message_burst=5, signal_messages_per_second=10.0)
    cid, edge, sono, expert, expert_peer = await a_live_room(place)
    candidate = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    for _ in range(5):  # the edge's join took one token
        await edge.send_json({"type": "ice", "to": expert_peer["id"], "candidate": candidate})
    assert (await recv_type(edge, "error"))["code"] == "rate_limited"
    for _ in range(4):
        assert (await recv_type(expert, "ice"))["candidate"] == candidate
    place.clock.advance(0.1)
    await edge.send_json({"type": "ice", "to": expert_peer["id"], "candidate": None})
    assert (await recv_type(expert, "ice"))["candidate"] is None  # the fifth was never relayed


# ---- chat history, paged ------------------------------------------------------------------------------------------


async def test_chat_history_is_paged_over_rest_and_over_the_socket(start: Start) -> None:
    place = await start(chat_line_burst=100)
    cid, edge, sono, expert, _ = await a_live_room(place)
    for n in range(5):
        await sono.send_json({"type": "chat", "text": f"line {n}"})
        await recv_type(expert, "chat")
    sono_api = await place.open_api("sono_a")
    base = f"/api/v1/consultations/{cid}/chat"
    status, page = await sono_api.get(base + "?limit=2")
    assert status == 200 and [x["text"] for x in page["messages"]] == ["line 3", "line 4"]
    status, page = await sono_api.get(base + f"?limit=2&before={page['next_before']}")
    assert [x["text"] for x in page["messages"]] == ["line 1", "line 2"]
    status, page = await sono_api.get(base + f"?limit=2&before={page['next_before']}")
    assert [x["text"] for x in page["messages"]] == ["line 0"] and page["next_before"] is None
    status, everything = await sono_api.get(base)
    assert len(everything["messages"]) == 5 and everything["next_before"] is None
    bad = ("limit=0", "limit=201", "limit=x", "before=-1", "before=0", "before=1e3", "limit=99999999999999999999")
    for query in bad:
        status, error = await sono_api.get(f"{base}?{query}")
        assert (status, error["error"]) == (400, "invalid_request"), query

    await expert.send_json({"type": "chat-history", "limit": 3})
    page = await recv_type(expert, "chat-history")
    assert [x["text"] for x in page["messages"]] == ["line 2", "line 3", "line 4"]
    await expert.send_json({"type": "chat-history", "limit": 3, "before": page["next_before"]})
    older = await recv_type(expert, "chat-history")
    assert [x["text"] for x in older["messages"]] == ["line 0", "line 1"] and older["next_before"] is None
    assert m.decode_server_message(json.dumps(older)) == m.ChatHistory(
        tuple(m.decode_server_message(json.dumps(line)) for line in older["messages"]),  # type: ignore[misc]
        None,
    )
    await expert.send_json({"type": "chat-history", "limit": 1000})
    assert (await recv_type(expert, "error"))["code"] == "bad_message"


async def test_invalid_chat_text_is_refused_to_its_sender_and_the_database_is_untouched(start: Start) -> None:
    """A NUL fails PostgreSQL's commit (and used to drop the sender): it is refused at decode instead."""
    place = await start()
    cid, edge, sono, expert, _ = await a_live_room(place)
    for text in ("a\x00b", "\x1b[2J wipe the screen", "\ud800"):
        await sono.send_str(json.dumps({"type": "chat", "text": text}))
        error = await recv_type(sono, "error")
        assert error["code"] in {"bad_message", "bad_json"} and error["ref"] in {"chat", None}
    assert await place.chat_rows() == 0
    await sono.send_json({"type": "chat", "text": "and now a real line"})
    await heard(expert, "and now a real line")
    assert await place.chat_rows() == 1
