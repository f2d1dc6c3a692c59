"""The signaling codecs of PROTOCOL.md §2, both directions, without sockets: what each side sends, the other decodes
to the same value; what is malformed is refused with its wire code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling_server.signaling import messages as m

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
EDGE = m.Peer("p-edge", "edge", "demo ultrasound", None, "d1")
EXPERT = m.Peer("p-exp", "expert", "Dr Wang", "u1", None)
CONSULTATION = {"id": "c1", "state": "live", "recording": True, "study_uid": "1.2.3"}
LABELS = {"side": "R", "structure": "CCA", "plane": "longitudinal", "mode": "b_mode"}

CLIENT_MESSAGES: list[m.ClientMessage] = [
    m.Join(),
    m.Join(observe=True),
    m.Offer("p-exp", SDP),
    m.Answer("p-edge", SDP),
    m.Ice("p-exp", CANDIDATE),
    m.Ice("p-exp", None),
    m.ChatSend("图像清楚"),
    m.Leave(),
    m.Captured("c-1", "1.2.826.0.1.3", 1, 1767000000123.5),
    m.Captured("c-2", "1.2.826.0.1.4", 90, None),
    m.CaptureFailed("c-3", "invalid_labels", "side: use R, L or none"),
]

SERVER_MESSAGES: list[m.ServerMessage] = [
    m.Welcome(EDGE, (EXPERT,), CONSULTATION),
    m.Welcome(EDGE, (), {"id": "c1", "state": "waiting"}),
    m.PeerJoined(EXPERT),
    m.PeerLeft("p-exp"),
    m.RelayedOffer("p-edge", SDP),
    m.RelayedAnswer("p-exp", SDP),
    m.RelayedIce("p-exp", CANDIDATE),
    m.RelayedIce("p-exp", None),
    m.ChatLine(7, "u1", "Dr Wang", "expert", "右叶再扫一次", "2026-01-02T03:04:05Z"),
    m.ChatLine(8, None, "demo ultrasound", "edge", "ready", "2026-01-02T03:04:06Z"),
    m.StateChanged({"id": "c1", "state": "ended"}),
    m.ErrorReply("wrong_state", "no offer is pending", "answer"),
    m.ErrorReply("bad_json", "the message is not JSON"),
    m.CaptureCommand("c-1", "still", None, LABELS, 1767000000123.5, "Dr Wang", "expert"),
    m.CaptureCommand("c-2", "clip", 6.0, {}, None, "Li Na", "sonographer"),
    m.CaptureStatus("c-1", "requested", None, {"kind": "still", "by": "Dr Wang"}),
    m.CaptureStatus("c-1", "stored", "1.2.826.0.1.3", {"study_uid": "1.2.3", "frames": 1}),
]


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda x: type(x).__name__)
def test_what_a_client_sends_the_server_decodes_to_the_same_message(message: m.ClientMessage) -> None:
    assert m.decode(m.encode_client_message(message)) == message


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda x: type(x).__name__)
def test_what_the_server_sends_a_client_decodes_to_the_same_message(message: m.ServerMessage) -> None:
    assert m.decode_server_message(m.encode(message)) == message


def test_the_wire_shape_is_protocol_md() -> None:
    assert json.loads(m.encode(m.RelayedOffer("p-edge", SDP))) == {"type": "offer", "from": "p-edge", "sdp": SDP}
    assert json.loads(m.encode(m.RelayedIce("p-exp", None))) == {"type": "ice", "from": "p-exp", "candidate": None}
    assert json.loads(m.encode_client_message(m.Captured("c-1", "1.2.3", 1, None))) == {
        "type": "captured",
        "id": "c-1",
        "sop_uid": "1.2.3",
        "frames": 1,
        "frame_capture_ms": None,
    }
    assert json.loads(m.encode_client_message(m.Join())) == {"type": "join", "observe": False}
    chat = json.loads(m.encode(m.ChatLine(1, None, "n", "edge", "t", "2026-01-01T00:00:00Z")))
    assert chat["from"] is None and "from_" not in chat


def test_unknown_fields_are_ignored() -> None:
    raw = {"type": "peer-left", "peer_id": "p1", "reason": "dropped"}
    assert m.decode_server_message(json.dumps(raw)) == m.PeerLeft("p1")
    assert m.decode(json.dumps({"type": "leave", "why": "done"})) == m.Leave()


def refusal(decode: Any, raw: str | bytes) -> m.SignalError:
    with pytest.raises(m.SignalError) as caught:
        decode(raw)
    return caught.value


@pytest.mark.parametrize("decode", [m.decode, m.decode_server_message], ids=["server", "edge"])
def test_frames_that_are_not_messages_are_refused_with_their_codes(decode: Any) -> None:
    assert refusal(decode, "{not json").code == "bad_json"
    assert refusal(decode, "[1, 2]").code == "bad_json"
    assert refusal(decode, b"\xff\xfe").code == "bad_json"
    assert refusal(decode, json.dumps({"to": "p1"})).code == "bad_message"
    too_big = refusal(decode, json.dumps({"type": "chat", "text": "x" * m.MAX_MESSAGE_BYTES}))
    assert (too_big.code, too_big.message) == ("bad_message", "messages are limited to 65536 bytes")
    unknown = refusal(decode, json.dumps({"type": "teleport"}))
    assert (unknown.code, unknown.ref) == ("unknown_type", "teleport")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "offer", "to": "p1", "sdp": "hello"}, "'sdp' is not a session description (must start with v=0)"),
        ({"type": "ice", "to": "p1", "candidate": {"sdpMid": "0"}}, "'candidate' must be an object"),
        ({"type": "ice", "to": "p1", "candidate": {**CANDIDATE, "sdpMLineIndex": -1}}, "'sdpMLineIndex' must be"),
        ({"type": "chat", "text": "   "}, "'text' must not be blank"),
        ({"type": "join", "observe": "yes"}, "'observe' must be true or false"),
        ({"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 0}, "'frames' must be a positive integer"),
        (
            {"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 1, "frame_capture_ms": "now"},
            "'frame_capture_ms' must",
        ),
        ({"type": "capture-failed", "id": "c", "code": "", "message": "m"}, "'code' must be a non-empty string"),
    ],
)
def test_the_server_refuses_malformed_client_messages(raw: dict[str, Any], message: str) -> None:
    refused = refusal(m.decode, json.dumps(raw))
    assert (refused.code, refused.ref) == ("bad_message", raw["type"])
    assert refused.message.startswith(message)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "welcome", "you": {"id": "p1", "role": "edge", "name": ""}, "peers": {}}, "'peers' must be a list"),
        ({"type": "peer-joined", "peer": {"id": "p1", "role": "pilot", "name": "x"}}, "'role' must be one of"),
        ({"type": "peer-joined", "peer": "p1"}, "a peer must be an object"),
        ({"type": "answer", "from": "p1", "sdp": "nope"}, "'sdp' is not a session description"),
        ({"type": "ice", "sdp": SDP, "candidate": None}, "'from' must be a non-empty string"),
        ({"type": "state", "consultation": {"id": "c1"}}, "'state' must be a non-empty string"),
        ({"type": "capture", "id": "c", "kind": "movie", "labels": {}, "by": "x", "by_role": "expert"}, "'kind'"),
        ({"type": "capture", "id": "c", "kind": "clip", "labels": {}, "by": "x", "by_role": "expert"}, "a clip needs"),
        ({"type": "capture", "id": "c", "kind": "still", "labels": [], "by": "x", "by_role": "expert"}, "'labels'"),
        ({"type": "capture-status", "id": "c", "state": "lost"}, "'state' must be one of"),
        ({"type": "chat", "id": "7", "from": None, "name": "", "role": "edge", "text": "t", "at": "x"}, "'id' must"),
    ],
)
def test_the_edge_refuses_malformed_server_messages(raw: dict[str, Any], message: str) -> None:
    refused = refusal(m.decode_server_message, json.dumps(raw))
    assert (refused.code, refused.ref) == ("bad_message", raw["type"])
    assert refused.message.startswith(message)


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        m.PeerLeft("p1").peer_id = "p2"  # type: ignore[misc]
