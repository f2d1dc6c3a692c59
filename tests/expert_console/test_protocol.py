"""protocol.js in Chromium: validated decode of signaling and data-channel messages, and the encoders."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PEER = {"id": "p1", "role": "expert", "name": "Dr A", "user_id": "u1", "device_id": None}
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def refusal(page: Page, decoder: str, frame: str) -> str | None:
    """The ProtocolError code the decoder gives for `frame`, or None when it accepts it."""
    return await run(
        page,
        f"""
        try {{ p.{decoder}(arg); return null; }}
        catch (err) {{ if (!(err instanceof p.ProtocolError)) throw err; return err.code; }}
        """,
        frame,
    )


async def decode(page: Page, decoder: str, message: object) -> dict:
    return await run(page, f"return p.{decoder}(arg);", json.dumps(message))


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ("null", "bad_json"),
        ('{"no": "type"}', "bad_message"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "offer", "from": "e1"}', "bad_message"),
        ('{"type": "offer", "from": "e1", "sdp": "hello"}', "bad_message"),
        ('{"type": "peer-left"}', "bad_message"),
        (
            '{"type": "welcome", "you": {"id": "p", "role": "pilot", "name": "x"}, "peers": [], "consultation": {}}',
            "bad_message",
        ),
        (
            '{"type": "welcome", "you": {"id": "p", "role": "expert", "name": "x"}, "peers": {}, "consultation": {}}',
            "bad_message",
        ),
        ('{"type": "ice", "from": "e1", "candidate": {"candidate": "c", "sdpMLineIndex": -1}}', "bad_message"),
        ('{"type": "ice", "from": "e1", "candidate": "candidate:1"}', "bad_message"),
        ('{"type": "state", "consultation": {"id": "c"}}', "bad_message"),
        ('{"type": "chat", "from": "u", "name": "A"}', "bad_message"),
        ('{"type": "chat-history", "messages": {}, "next_before": null}', "bad_message"),
        ('{"type": "chat-history", "messages": [{"id": 1}], "next_before": null}', "bad_message"),
        ('{"type": "chat-history", "messages": [], "next_before": "5"}', "bad_message"),
    ],
)
async def test_signal_refusals(page: Page, frame: str, code: str) -> None:
    assert await refusal(page, "decodeSignal", frame) == code


async def test_signal_messages_decode(page: Page) -> None:
    welcome = await decode(
        page,
        "decodeSignal",
        {
            "type": "welcome",
            "you": PEER,
            "consultation": {"id": "c1", "state": "live"},
            "extra": 1,
            "peers": [{"id": "e1", "role": "edge", "name": "north-us-1", "user_id": None, "device_id": "d1"}],
        },
    )
    assert welcome["you"] == PEER
    assert welcome["peers"][0]["role"] == "edge"
    assert "extra" not in welcome
    ice = await decode(page, "decodeSignal", {"type": "ice", "from": "e1", "candidate": None})
    assert ice == {"type": "ice", "from": "e1", "candidate": None}
    offer = await decode(page, "decodeSignal", {"type": "offer", "from": "e1", "sdp": SDP})
    assert offer["sdp"] == SDP
    error = await decode(
        page, "decodeSignal", {"type": "error", "code": "wrong_state", "message": "no", "ref": "answer"}
    )
    assert error == {"type": "error", "code": "wrong_state", "message": "no", "ref": "answer"}
    line = {"type": "chat", "id": 7, "from": "u1", "name": "Dr A", "role": "expert", "text": "ok", "at": "2026"}
    page_of_chat = await decode(page, "decodeSignal", {"type": "chat-history", "messages": [line], "next_before": 7})
    assert page_of_chat == {"type": "chat-history", "messages": [line], "next_before": 7}


def mark(**changes: object) -> dict:
    base = {"type": "mark", "id": "m1", "kind": "arrow", "points": [[0.1, 0.2], [0.3, 0.4]], "from": "p1", "at": 1.7e12}
    return {**base, **changes}


@pytest.mark.parametrize(
    "message",
    [
        mark(points=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),  # an arrow has two points
        mark(kind="circle", points=[[0.5, 0.5]]),
        mark(kind="freehand", points=[[0.5, 0.5]]),
        mark(kind="freehand", points=[[0.5, 0.5]] * 2001),
        mark(points=[[0.1, 1.2], [0.3, 0.4]]),  # off the image
        mark(points=[[0.1, "0.2"], [0.3, 0.4]]),
        mark(points=[[0.1], [0.3, 0.4]]),
        mark(kind="square"),
        mark(color="red"),
        mark(id="x" * 65),
        mark(id=""),
        mark(at="yesterday"),
        {"type": "marks", "marks": [mark(), mark(kind="blob")]},  # one bad mark refuses the snapshot
        {"type": "marks"},
    ],
)
async def test_guidance_refusals(page: Page, message: dict) -> None:
    assert await refusal(page, "decodeGuidance", json.dumps(message)) == "bad_message"


async def test_guidance_messages_decode(page: Page) -> None:
    relayed = await decode(page, "decodeGuidance", mark(color="#FFAA00"))
    assert relayed == mark(color="#FFAA00")
    freehand = await decode(page, "decodeGuidance", mark(kind="freehand", points=[[0, 0], [1, 1], [0.5, 0.5]]))
    assert len(freehand["points"]) == 3
    snapshot = await decode(page, "decodeGuidance", {"type": "marks", "marks": [mark(), mark(id="m2")]})
    assert [m["id"] for m in snapshot["marks"]] == ["m1", "m2"]
    assert (await decode(page, "decodeGuidance", {"type": "clear", "from": "p1", "at": 5}))["type"] == "clear"
    assert await refusal(page, "decodeGuidance", '{"type": "pointer", "x": 0.5, "y": 0.5}') == "unknown_type"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "pointer", "x": 1.5, "y": 0.5},
        {"type": "pointer", "x": 0.5},
        {"type": "pointer", "visible": "no"},
        {"type": "frame", "rtp": -1, "capture_ms": 1},
        {"type": "frame", "rtp": 1.5, "capture_ms": 1},
        {"type": "frame", "rtp": 2**32, "capture_ms": 1},
        {"type": "frame", "rtp": 90000},
        {"type": "pong", "id": 1, "t": 5},
        {"type": "pong", "id": 1, "t": 5, "edge_ms": 6, "encoder": 264},
    ],
)
async def test_live_refusals(page: Page, message: dict) -> None:
    assert await refusal(page, "decodeLive", json.dumps(message)) == "bad_message"


async def test_live_messages_decode(page: Page) -> None:
    pointer = await decode(page, "decodeLive", {"type": "pointer", "x": 0.25, "y": 0.75, "from": "p2", "at": 9})
    assert pointer == {"type": "pointer", "x": 0.25, "y": 0.75, "visible": True, "from": "p2", "at": 9}
    hidden = await decode(page, "decodeLive", {"type": "pointer", "visible": False, "from": "p2", "at": 10})
    assert hidden == {"type": "pointer", "visible": False, "from": "p2", "at": 10}
    frame = await decode(page, "decodeLive", {"type": "frame", "rtp": 2**32 - 1, "capture_ms": 1.7e12})
    assert frame == {"type": "frame", "rtp": 2**32 - 1, "capture_ms": 1.7e12}
    pong = await decode(page, "decodeLive", {"type": "pong", "id": 3, "t": 1.5, "edge_ms": 2.5})
    assert pong == {"type": "pong", "id": 3, "t": 1.5, "edge_ms": 2.5, "encoder": None}
    pong = await decode(page, "decodeLive", {"type": "pong", "id": 4, "t": 1.5, "edge_ms": 2.5, "encoder": "VAAPI"})
    assert pong["encoder"] == "VAAPI"


async def test_encoders(page: Page) -> None:
    result = await run(
        page,
        """
        const refused = (f) => { try { f(); return null; } catch (e) { return e.code; } };
        return {
          join: p.encodeJoin(), observe: p.encodeJoin({observe: true}),
          answer: p.encodeAnswer("e1", "v=0\\r\\n"),
          ice: p.encodeIce("e1", {candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0", sdpMLineIndex: 0}),
          endOfCandidates: p.encodeIce("e1", null),
          chat: p.encodeChat("  hello  "), blank: refused(() => p.encodeChat("   ")),
          long: refused(() => p.encodeChat("x".repeat(2001))),
          mark: p.encodeMark({id: "m1", kind: "circle", points: [[0.5, 0.5], [0.6, 0.5]], color: "#ffd166"}),
          badMark: refused(() => p.encodeMark({id: "m1", kind: "circle", points: [[0.5, 0.5]]})),
          pointer: p.encodePointer(0.1, 0.9), hide: p.encodePointer(null),
          offImage: refused(() => p.encodePointer(-0.1, 0.5)),
          ping: p.encodePing(7, 123.5), clear: p.encodeClear(),
          wss: p.signalingUrl({protocol: "https:", host: "h:8443"}, "c/1"),
          ws: p.signalingUrl({protocol: "http:", host: "127.0.0.1:8080"}, "abc"),
        };
        """,
    )
    parsed = {k: json.loads(v) if isinstance(v, str) and v.startswith("{") else v for k, v in result.items()}
    assert parsed["join"] == {"type": "join"}
    assert parsed["observe"] == {"type": "join", "observe": True}
    assert parsed["answer"] == {"type": "answer", "to": "e1", "sdp": "v=0\r\n"}
    assert parsed["ice"]["candidate"] == {
        "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    assert parsed["endOfCandidates"] == {"type": "ice", "to": "e1", "candidate": None}
    assert parsed["chat"] == {"type": "chat", "text": "hello"}
    assert parsed["blank"] == parsed["long"] == parsed["badMark"] == parsed["offImage"] == "bad_message"
    assert parsed["mark"] == {
        "type": "mark",
        "id": "m1",
        "kind": "circle",
        "points": [[0.5, 0.5], [0.6, 0.5]],
        "color": "#ffd166",
    }
    assert parsed["pointer"] == {"type": "pointer", "x": 0.1, "y": 0.9}
    assert parsed["hide"] == {"type": "pointer", "visible": False}
    assert parsed["ping"] == {"type": "ping", "id": 7, "t": 123.5}
    assert parsed["clear"] == {"type": "clear"}
    assert parsed["wss"] == "wss://h:8443/api/v1/consultations/c%2F1/signal"
    assert parsed["ws"] == "ws://127.0.0.1:8080/api/v1/consultations/abc/signal"
