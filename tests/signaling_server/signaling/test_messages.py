"""signaling_server.signaling.messages, without sockets: the codecs of PROTOCOL.md §2 in both directions (what each
side sends, the other decodes to the same value; what is malformed is refused with its wire code), then every
client message decoded, every refusal with its stable code and the message type it refers to, and every server
message encoded as PROTOCOL.md writes it."""

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
    m.Ping(),
    m.Captured("c-1", "1.2.826.0.1.3", 1, 1767000000123.5),
    m.Captured("c-2", "1.2.826.0.1.4", 90, None),
    m.CaptureFailed("c-3", "invalid_labels", "side: use R, L or none"),
    m.ChatHistoryRequest(),
    m.ChatHistoryRequest(before=41, limit=20),
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
    m.ChatHistory((m.ChatLine(7, "u1", "Dr Wang", "expert", "右叶再扫一次", "2026-01-02T03:04:05Z"),), 7),
    m.ChatHistory((), None),
    m.Pong(),
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
    assert (too_big.code, too_big.message) == ("bad_message", "messages are limited to 65536 bytes of UTF-8")
    unknown = refusal(decode, json.dumps({"type": "teleport"}))
    assert (unknown.code, unknown.ref) == ("unknown_type", "teleport")


@pytest.mark.parametrize("decode", [m.decode, m.decode_server_message], ids=["server", "edge"])
def test_deep_nesting_is_refused_as_bad_json_not_a_recursion_error(decode: Any) -> None:
    for depth in (m.MAX_DEPTH + 1, 5000, 30000):  # 30 000 levels still fit in 64 KiB
        deep = '{"type": "ice", "to": "p1", "candidate": ' + "[" * depth + "]" * depth + "}"
        caught = refusal(decode, deep)
        assert caught.code == "bad_json" and "nested deeper than 16 levels" in caught.message
    shallow = '{"type": "leave", "x": ' + "[" * (m.MAX_DEPTH - 1) + "]" * (m.MAX_DEPTH - 1) + "}"
    if decode is m.decode:
        assert decode(shallow) == m.Leave()


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "captured", "id": "\\ud800", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": null}',
        '{"type": "capture-failed", "id": "c1", "code": "x", "message": "bad \\udfff end"}',
        '{"type": "chat", "text": "\\ud83d"}',
        '{"type": "chat", "text": "ok", "\\udc00": 1}',
        '{"type": "chat", "text": "a\ud800b"}',  # the surrogate itself in a Python str, not escaped
    ],
)
def test_lone_surrogates_are_refused_at_decode(raw: str) -> None:
    caught = refusal(m.decode, raw)
    assert caught.code == "bad_json" and "lone surrogate" in caught.message
    # A proper pair is one character, and fine.
    assert m.decode('{"type": "chat", "text": "\\ud83d\\ude00"}') == m.ChatSend("\U0001f600")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_nan_and_infinity_are_not_json(number: str) -> None:
    raw = f'{{"type": "captured", "id": "c1", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": {number}}}'
    caught = refusal(m.decode, raw)
    assert caught.code == "bad_json" and ("not a JSON number" in caught.message or "out of range" in caught.message)


def test_encode_never_writes_nan_or_infinity() -> None:
    # JSON.parse in a browser refuses a bare NaN: better no message than one that breaks every page's decoder.
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not JSON compliant"):
            m.encode(m.CaptureCommand("c-1", "still", None, {}, value, "Dr Wang", "expert"))
        with pytest.raises(ValueError, match="not JSON compliant"):
            m.encode_client_message(m.Captured("c-1", "1.2.3", 1, value))


def test_the_size_limit_counts_utf8_bytes() -> None:
    chars = m.MAX_MESSAGE_BYTES // 3 + 100  # under the limit in characters, over it in bytes (3 per character)
    raw = json.dumps({"type": "chat", "text": "中" * chars}, ensure_ascii=False)
    assert len(raw) < m.MAX_MESSAGE_BYTES < len(raw.encode())
    assert refusal(m.decode, raw).message == "messages are limited to 65536 bytes of UTF-8"


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f"])
def test_chat_text_with_control_characters_is_refused(text: str) -> None:
    caught = refusal(m.decode, json.dumps({"type": "chat", "text": text}))
    assert (caught.code, caught.message, caught.ref) == ("bad_message", "'text' contains control characters", "chat")
    assert m.decode(json.dumps({"type": "chat", "text": "two\nlines\tand a tab"})) == m.ChatSend(
        "two\nlines\tand a tab"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "chat-history", "before": 0}, "'before' must be a chat line id (a positive integer) or null"),
        ({"type": "chat-history", "before": "5"}, "'before' must be a chat line id (a positive integer) or null"),
        ({"type": "chat-history", "before": True}, "'before' must be a chat line id (a positive integer) or null"),
        ({"type": "chat-history", "limit": 0}, "'limit' must be an integer from 1 to 200"),
        ({"type": "chat-history", "limit": 201}, "'limit' must be an integer from 1 to 200"),
        ({"type": "chat-history", "limit": 2.5}, "'limit' must be an integer from 1 to 200"),
    ],
)
def test_chat_history_requests_are_bounded(raw: dict[str, Any], message: str) -> None:
    caught = refusal(m.decode, json.dumps(raw))
    assert (caught.code, caught.message, caught.ref) == ("bad_message", message, "chat-history")


def test_a_chat_history_page_is_chat_lines_on_the_wire() -> None:
    line = m.ChatLine(7, "u1", "Dr Wang", "expert", "ok", "2026-01-02T03:04:05Z")
    assert json.loads(m.encode(m.ChatHistory((line,), None))) == {
        "type": "chat-history",
        "messages": [json.loads(m.encode(line))],
        "next_before": None,
    }


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


# ---- every client message, every refusal, every server message on the wire ----------------------------------------

CLIENT_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
CANDIDATE_LINE = "candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host"


def wire(data: Any) -> str:
    return json.dumps(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "join"}, m.Join(observe=False)),
        ({"type": "join", "observe": True}, m.Join(observe=True)),
        ({"type": "offer", "to": "p1", "sdp": CLIENT_SDP}, m.Offer(to="p1", sdp=CLIENT_SDP)),
        ({"type": "answer", "to": "p2", "sdp": CLIENT_SDP}, m.Answer(to="p2", sdp=CLIENT_SDP)),
        ({"type": "ice", "to": "p1", "candidate": None}, m.Ice(to="p1", candidate=None)),
        (
            {"type": "ice", "to": "p1", "candidate": {"candidate": CANDIDATE_LINE, "sdpMid": "0", "sdpMLineIndex": 0}},
            m.Ice(to="p1", candidate={"candidate": CANDIDATE_LINE, "sdpMid": "0", "sdpMLineIndex": 0}),
        ),
        (  # unknown candidate fields are not passed on; missing ones become null
            {"type": "ice", "to": "p1", "candidate": {"candidate": CANDIDATE_LINE, "usernameFragment": "x"}},
            m.Ice(to="p1", candidate={"candidate": CANDIDATE_LINE, "sdpMid": None, "sdpMLineIndex": None}),
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
    assert decoded == {"join", "offer", "answer", "ice", "chat", "leave", "ping", "captured", "capture-failed"}


def _one_of_each() -> list[dict[str, Any]]:
    return [
        {"type": "join"},
        {"type": "offer", "to": "p", "sdp": CLIENT_SDP},
        {"type": "answer", "to": "p", "sdp": CLIENT_SDP},
        {"type": "ice", "to": "p", "candidate": None},
        {"type": "chat", "text": "hi"},
        {"type": "leave"},
        {"type": "ping"},
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
    (wire({"type": "offer", "sdp": CLIENT_SDP}), "bad_message", "offer", "'to' must be a non-empty string"),
    (wire({"type": "offer", "to": "", "sdp": CLIENT_SDP}), "bad_message", "offer", "'to' must be a non-empty string"),
    (wire({"type": "offer", "to": "p" * 65, "sdp": CLIENT_SDP}), "bad_message", "offer", "'to' is longer than 64"),
    (wire({"type": "offer", "to": "p", "sdp": "o=- 1"}), "bad_message", "offer", "must start with v=0"),
    (wire({"type": "answer", "to": "p"}), "bad_message", "answer", "'sdp' must be a non-empty string"),
    (wire({"type": "answer", "to": "p", "sdp": 3}), "bad_message", "answer", "'sdp' must be a non-empty string"),
    (wire({"type": "ice", "to": "p", "candidate": "c"}), "bad_message", "ice", "'candidate' must be an object"),
    (wire({"type": "ice", "to": "p", "candidate": {}}), "bad_message", "ice", "'candidate' must be an object"),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE_LINE, "sdpMid": 0}}),
        "bad_message",
        "ice",
        "'sdpMid' must be a string",
    ),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE_LINE, "sdpMLineIndex": -1}}),
        "bad_message",
        "ice",
        "'sdpMLineIndex' must be a non-negative integer",
    ),
    (
        wire({"type": "ice", "to": "p", "candidate": {"candidate": CANDIDATE_LINE, "sdpMLineIndex": True}}),
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
    assert m.decode(wire({"type": "offer", "to": "p" * 64, "sdp": CLIENT_SDP})) == m.Offer("p" * 64, CLIENT_SDP)


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
            m.RelayedOffer(from_="p0", sdp=CLIENT_SDP),
            {"type": "offer", "from": "p0", "sdp": CLIENT_SDP},
        ),
        (
            m.RelayedIce(from_="p0", candidate=None),
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
