"""Properties of the signaling codec over generated input (hypothesis): decoding anything raises only the codec's
own SignalError; whatever decodes can be encoded, carried as UTF-8 and decodes to itself; valid messages of every
type round-trip in both directions."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from signaling_server.signaling import messages as m

from .test_messages import CLIENT_MESSAGES, SERVER_MESSAGES

LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
ODD_TEXT = st.text(max_size=30) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=5), LONE_SURROGATES, st.text(max_size=5)
)
ODD_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | ODD_TEXT
    | st.sampled_from(["", " ", "v=0", "p-exp", "x" * 70_000]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=10,
)
TYPES = st.sampled_from([*{type(x).type for x in CLIENT_MESSAGES}, *{type(x).type for x in SERVER_MESSAGES}, "?"])


def wire(message: m.ClientMessage | m.ServerMessage) -> dict[str, Any]:
    text = m.encode_client_message(message) if isinstance(message, m.ClientMessage) else m.encode(message)  # type: ignore[arg-type]
    return dict(json.loads(text))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid message of some type with one field replaced, removed or added, written as (lax) JSON."""
    base = wire(draw(st.sampled_from([*CLIENT_MESSAGES, *SERVER_MESSAGES])))
    key = draw(st.sampled_from([*base, "type", "extra"]))
    action = draw(st.sampled_from(["replace", "remove", "retype"]))
    if action == "remove":
        base.pop(key, None)
    elif action == "retype":
        base["type"] = draw(TYPES)
    else:
        base[key] = draw(ODD_VALUES)
    return json.dumps(base, ensure_ascii=draw(st.booleans()))


def sendable(message: Any) -> None:
    """What was accepted can be written again, carried as UTF-8 (the writer's send_str) and read back the same."""
    if isinstance(message, m.ClientMessage):  # type: ignore[arg-type]
        text = m.encode_client_message(message)
        assert m.decode(text.encode("utf-8")) == message
    else:
        text = m.encode(message)
        assert m.decode_server_message(text.encode("utf-8")) == message


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_decoding_any_text_raises_only_signal_errors(raw: str | bytes) -> None:
    for decode in (m.decode, m.decode_server_message):
        try:
            decode(raw)
        except m.SignalError as exc:
            assert exc.code in {"bad_json", "bad_message", "unknown_type"} and exc.message


@given(mutated())
def test_a_mutated_message_is_refused_with_a_code_or_decodes_to_something_sendable(raw: str) -> None:
    for decode in (m.decode, m.decode_server_message):
        try:
            message = decode(raw)
        except m.SignalError as exc:
            assert exc.code in {"bad_json", "bad_message", "unknown_type"} and exc.message
        else:
            sendable(message)


@given(ODD_VALUES)
def test_any_json_value_as_a_message(value: Any) -> None:
    raw = json.dumps({"type": "chat", "text": value}) if not isinstance(value, dict) else json.dumps(value)
    for decode in (m.decode, m.decode_server_message):
        try:
            sendable(decode(raw))
        except m.SignalError:
            pass


PLAIN_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
IDS = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=64)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
VALID_CLIENT = st.one_of(
    st.builds(m.Join, observe=st.booleans()),
    st.builds(m.Offer, to=IDS, sdp=PLAIN_TEXT.map(lambda s: "v=0" + s)),
    st.builds(m.Answer, to=IDS, sdp=PLAIN_TEXT.map(lambda s: "v=0" + s)),
    st.builds(
        m.Ice,
        to=IDS,
        candidate=st.none()
        | st.fixed_dictionaries(
            {"candidate": PLAIN_TEXT, "sdpMid": st.none() | PLAIN_TEXT, "sdpMLineIndex": st.none() | st.integers(0, 99)}
        ),
    ),
    st.builds(m.ChatSend, text=PLAIN_TEXT.map(str.strip).filter(bool)),
    st.just(m.Leave()),
    st.builds(m.Captured, id=IDS, sop_uid=IDS, frames=st.integers(1, 10_000), frame_capture_ms=st.none() | FINITE),
    st.builds(m.CaptureFailed, id=IDS, code=IDS, message=PLAIN_TEXT),
    st.builds(m.ChatHistoryRequest, before=st.none() | st.integers(1, 2**62), limit=st.integers(1, m.MAX_CHAT_PAGE)),
)
CHAT_LINES = st.builds(
    m.ChatLine,
    id=st.integers(1, 2**62),
    from_=st.none() | IDS,
    name=PLAIN_TEXT,
    role=st.sampled_from(["edge", "expert", "sonographer"]),
    text=PLAIN_TEXT,
    at=st.just("2026-01-02T03:04:05Z"),
)
VALID_SERVER = st.one_of(
    CHAT_LINES,
    st.builds(
        m.ChatHistory,
        messages=st.lists(CHAT_LINES, max_size=3).map(tuple),
        next_before=st.none() | st.integers(1, 2**62),
    ),
    st.builds(m.PeerLeft, peer_id=IDS),
    st.builds(m.ErrorReply, code=IDS, message=PLAIN_TEXT, ref=st.none() | IDS),
    st.builds(
        m.CaptureStatus,
        id=st.none() | IDS,
        state=st.sampled_from(m.CAPTURE_STATES),
        sop_uid=st.none() | IDS,
        detail=st.dictionaries(PLAIN_TEXT, st.none() | FINITE | PLAIN_TEXT, max_size=3),
    ),
)


@given(VALID_CLIENT)
def test_every_valid_client_message_round_trips(message: m.ClientMessage) -> None:
    assert m.decode(m.encode_client_message(message)) == message


@given(VALID_SERVER)
def test_every_valid_server_message_round_trips(message: m.ServerMessage) -> None:
    assert m.decode_server_message(m.encode(message)) == message
