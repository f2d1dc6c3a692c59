"""signaling_server.signaling.messages: every client message decoded, every refusal with its stable code and the
message type it refers to, and every server message encoded as PROTOCOL.md §2 writes it. No sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling_server.signaling import messages as m

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
CANDIDATE = "candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host"


def wire(data: Any) -> str:
    return json.dumps(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "join"}, m.Join(observe=False)),
        ({"type": "join", "observe": True}, m.Join(observe=True)),
        ({"type": "offer", "to": "p1", "sdp": SDP}, m.Offer(to="p1", sdp=SDP)),
        ({"type": "answer", "to": "p2", "sdp": SDP}, m.Answer(to="p2", sdp=SDP)),
        ({"type": "ice", "to": "p1", "candidate": None}, m.Ice(to="p1", candidate=None)),
        (
            {"type": "ice", "to": "p1", "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}},
            m.Ice(to="p1", candidate={"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}),
        ),
        (  # unknown candidate fields are not passed on; missing ones become null
            {"type": "ice", "to": "p1", "candidate": {"candidate": CANDIDATE, "usernameFragment": "x"}},
            m.Ice(to="p1", candidate={"candidate": CANDIDATE, "sdpMid": None, "sdpMLineIndex": None}),
        ),
        ({"type": "chat", "text": "  Tilt the probe  "}, m.ChatSend(text="Tilt the probe")),
        ({"type": "chat", "text": "甲状腺右叶"}, m.ChatSend(text="甲状腺右叶")),
        ({"type": "leave", "extra": 1}, m.Leave()),
        (
            {"type": "captured", "id": "c-1", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": 1767000000123},
            m.Captured(id="c-1", sop_uid="1.2.3", frames=1, frame_capture_ms=1767000000123.0),
        ),
        (
            {"type": "captured", "id": "c-2", "sop_uid": "1.2.4", "frames": 90, "frame_capture_ms": None},
            m.Captured(id="c-2", sop_uid="1.2.4", frames=90, frame_capture_ms=None),
        ),
        (
            {"type": "capture-failed", "id": "c-3", "code": "no_frame", "message": "no frame yet"},
            m.CaptureFailed(id="c-3", code="no_frame", message="no frame yet"),
        ),
    ],
)
def test_every_client_message_decodes(data: dict[str, Any], expected: m.ClientMessage) -> None:
    assert m.decode(wire(data)) == expected
    assert m.decode(wire(data).encode()) == expected  # a binary frame with the same text is the same message


def test_the_message_types_are_the_protocols() -> None:
    decoded = {type(m.decode(wire(d))).type for d in _one_of_each()}
    assert decoded == {"join", "offer", "answer", "ice", "chat", "leave", "captured", "capture-failed"}


def _one_of_each() -> list[dict[str, Any]]:
    return [
        {"type": "join"},
        {"type": "offer", "to": "p", "sdp": SDP},
        {"type": "answer", "to": "p", "sdp": SDP},
        {"type": "ice", "to": "p", "candidate": None},
        {"type": "chat", "text": "hi"},
        {"type": "leave"},
        {"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 1},
        {"type": "capture-failed", "id": "c", "code": "x", "message": "y"},
    ]


# Each refusal: (the raw message, its stable code, the type it refers to (ref), words the message must hold).
REFUSALS: list[tuple[str | bytes, str, str | None, str]] = [
    ("not json", "bad_json", None, "not JSON"),
    (b"\xff\xfe", "bad_json", None, "not JSON"),
    ("[1, 2]", "bad_json", None, "JSON object"),
    ('"join"', "bad_json", None, "JSON object"),
    ("{}", "bad_message", None, "'type' is missing"),
    (wire({"type": 7}), "bad_message", None, "'type' is missing"),
    (wire({"type": "dance"}), "unknown_type", "dance", "unknown message type 'dance'"),
    (wire({"type": "x" * 100}), "unknown_type", "x" * 40, "unknown message type"),
    (wire({"type": "chat", "text": "x" * (m.MAX_MESSAGE_BYTES + 1)}), "bad_message", None, "limited to 65536 bytes"),
    (wire({"type": "join", "observe": "yes"}), "bad_message", "join", "'observe' must be true or false"),
    (wire({"type": "offer", "sdp": SDP}), "bad_message", "offer", "'to' must be a non-empty string"),
    (wire({"type": "offer", "to": "", "sdp": SDP}), "bad_message", "offer", "'to' must be a non-empty string"),
    (wire({"type": "offer", "to": "p" * 65, "sdp": SDP}), "bad_message", "offer", "'to' is longer than 64"),
    (wire({"type": "offer", "to": "p", "sdp": "o=- 1"}), "bad_message", "offer", "must start with v=0"),
    (wire({"type": "answer", "to": "p"}), "bad_message", "answer", "'sdp' must be a non-empty string"),
    (wire({"type": "answer", "to": "p", "sdp": 3}), "bad_message", "answer", "'sdp' must be a non-empty string"),
    (wire({"type": "ice", "to": "p", "candidate": "c"}), "bad_message", "ice", "'candidate' must be an object"),
    (wire({"type": "ice", "to": "p", "candidate": {}}), "bad_message", "ice", "'candidate' must be an object"),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE, "sdpMid": 0}}),
        "bad_message",
        "ice",
        "'sdpMid' must be a string",
    ),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": -1}}),
        "bad_message",
        "ice",
        "'sdpMLineIndex' must be a non-negative integer",
    ),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": True}}),
        "bad_message",
        "ice",
        "'sdpMLineIndex' must be a non-negative integer",
    ),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": "c" * 1025}}),
        "bad_message",
        "ice",
        "too long",
    ),
    (wire({"type": "ice", "candidate": None}), "bad_message", "ice", "'to' must be a non-empty string"),
    (wire({"type": "chat", "text": "   "}), "bad_message", "chat", "'text' must not be blank"),
    (wire({"type": "chat", "text": ""}), "bad_message", "chat", "'text' must be a non-empty string"),
    (wire({"type": "chat"}), "bad_message", "chat", "'text' must be a non-empty string"),
    (wire({"type": "chat", "text": "x" * 2001}), "bad_message", "chat", "longer than 2000 characters"),
    (wire({"type": "captured", "id": "c", "sop_uid": "1.2"}), "bad_message", "captured", "'frames' must be"),
    (wire({"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 0}), "bad_message", "captured", "positive"),
    (wire({"type": "captured", "id": "c", "sop_uid": "1.2", "frames": True}), "bad_message", "captured", "positive"),
    (
        wire({"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 1, "frame_capture_ms": "now"}),
        "bad_message",
        "captured",
        "'frame_capture_ms' must be a number or null",
    ),
    (wire({"type": "captured", "sop_uid": "1.2", "frames": 1}), "bad_message", "captured", "'id' must be"),
    (wire({"type": "captured", "id": "c", "frames": 1}), "bad_message", "captured", "'sop_uid' must be"),
    (
        wire({"type": "capture-failed", "id": "c", "code": "no_frame"}),
        "bad_message",
        "capture-failed",
        "'message' must be a non-empty string",
    ),
    (
        wire({"type": "capture-failed", "id": "c", "code": "no_frame", "message": "m" * 501}),
        "bad_message",
        "capture-failed",
        "longer than 500 characters",
    ),
]


@pytest.mark.parametrize(("raw", "code", "ref", "words"), REFUSALS)
def test_each_refusal_has_its_stable_code_and_a_readable_message(
    raw: str | bytes, code: str, ref: str | None, words: str
) -> None:
    with pytest.raises(m.SignalError) as refused:
        m.decode(raw)
    assert (refused.value.code, refused.value.ref) == (code, ref)
    assert words in refused.value.message and str(refused.value) == refused.value.message


def test_the_size_limit_counts_the_raw_message() -> None:
    padding = m.MAX_MESSAGE_BYTES - len(wire({"type": "leave", "pad": ""}))
    assert m.decode(wire({"type": "leave", "pad": "x" * padding})) == m.Leave()
    with pytest.raises(m.SignalError):
        m.decode(wire({"type": "leave", "pad": "x" * (padding + 1)}))


def test_limits_are_inclusive() -> None:
    assert m.decode(wire({"type": "chat", "text": "x" * m.MAX_CHAT_CHARS})) == m.ChatSend("x" * m.MAX_CHAT_CHARS)
    assert m.decode(wire({"type": "offer", "to": "p" * 64, "sdp": SDP})) == m.Offer("p" * 64, SDP)


# ---- server → client ---------------------------------------------------------------------------------------------

EXPERT = m.Peer(id="p1", role="expert", name="Dr Li", user_id="u1")
EDGE = m.Peer(id="p0", role="edge", name="north-us-1", device_id="d1")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            m.Welcome(you=EXPERT, peers=(EDGE,), consultation={"id": "c1", "state": "live"}),
            {
                "type": "welcome",
                "you": {"id": "p1", "role": "expert", "name": "Dr Li", "user_id": "u1", "device_id": None},
                "peers": [{"id": "p0", "role": "edge", "name": "north-us-1", "user_id": None, "device_id": "d1"}],
                "consultation": {"id": "c1", "state": "live"},
            },
        ),
        (
            m.PeerJoined(peer=EXPERT),
            {
                "type": "peer-joined",
                "peer": {"id": "p1", "role": "expert", "name": "Dr Li", "user_id": "u1", "device_id": None},
            },
        ),
        (m.PeerLeft(peer_id="p1"), {"type": "peer-left", "peer_id": "p1"}),
        (
            m.Relayed(kind="offer", from_="p0", payload={"sdp": SDP}),
            {"type": "offer", "from": "p0", "sdp": SDP},
        ),
        (
            m.Relayed(kind="ice", from_="p0", payload={"candidate": None}),
            {"type": "ice", "from": "p0", "candidate": None},
        ),
        (
            m.ChatLine(id=3, from_="u1", name="Dr Li", role="expert", text="甲状腺", at="2026-01-01T00:00:00Z"),
            {
                "type": "chat",
                "id": 3,
                "from": "u1",
                "name": "Dr Li",
                "role": "expert",
                "text": "甲状腺",
                "at": "2026-01-01T00:00:00Z",
            },
        ),
        (
            m.StateChanged(consultation={"id": "c1", "state": "ended"}),
            {"type": "state", "consultation": {"id": "c1", "state": "ended"}},
        ),
        (
            m.ErrorReply(code="not_allowed", message="observers cannot send", ref="offer"),
            {"type": "error", "code": "not_allowed", "message": "observers cannot send", "ref": "offer"},
        ),
        (
            m.ErrorReply(code="bad_json", message="the message is not JSON"),
            {"type": "error", "code": "bad_json", "message": "the message is not JSON", "ref": None},
        ),
        (
            m.CaptureCommand(
                id="c-1",
                kind="still",
                seconds=None,
                labels={"side": "R"},
                frame_capture_ms=1.5,
                by="Dr Li",
                by_role="expert",
            ),
            {
                "type": "capture",
                "id": "c-1",
                "kind": "still",
                "seconds": None,
                "labels": {"side": "R"},
                "frame_capture_ms": 1.5,
                "by": "Dr Li",
                "by_role": "expert",
            },
        ),
        (
            m.CaptureStatus(id="c-1", state="stored", sop_uid="1.2.3", detail={"study_id": "s1"}),
            {
                "type": "capture-status",
                "id": "c-1",
                "state": "stored",
                "sop_uid": "1.2.3",
                "detail": {"study_id": "s1"},
            },
        ),
        (
            m.CaptureStatus(id=None, state="failed"),
            {"type": "capture-status", "id": None, "state": "failed", "sop_uid": None, "detail": {}},
        ),
    ],
)
def test_every_server_message_encodes_as_the_protocol_writes_it(message: m.ServerMessage, expected: Any) -> None:
    text = m.encode(message)
    assert json.loads(text) == expected
    assert "from_" not in text


def test_encoded_text_keeps_chinese_readable() -> None:
    text = m.encode(m.ChatLine(id=1, from_=None, name="王芳", role="sonographer", text="结节", at="t"))
    assert "王芳" in text and "结节" in text and json.loads(text)["from"] is None


def test_an_error_reply_round_trips_a_decode_refusal() -> None:
    with pytest.raises(m.SignalError) as refused:
        m.decode(wire({"type": "chat", "text": " "}))
    error = refused.value
    reply = json.loads(m.encode(m.ErrorReply(error.code, error.message, error.ref)))
    assert reply == {"type": "error", "code": "bad_message", "message": "'text' must not be blank", "ref": "chat"}
