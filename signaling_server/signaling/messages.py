"""The signaling messages of PROTOCOL.md §2 as frozen dataclasses, with pure codecs for both directions.

    the server:  decode(raw) -> ClientMessage           encode(ServerMessage) -> str
    the edge:    decode_server_message(raw) -> ServerMessage   encode_client_message(ClientMessage) -> str

The edge agent imports this module (and nothing else of the server), so both ends of the socket speak one
vocabulary. Decoding validates; a refusal is a SignalError carrying the wire code (`bad_json`, `bad_message`,
`unknown_type`), and never anything else, whatever the input. JSON is read and written strictly
(`signaling_server/strictjson.py`): no NaN or Infinity, no lone surrogates (text that cannot travel as UTF-8),
at most MAX_DEPTH levels of nesting; the size limit counts UTF-8 bytes. Chat text is Unicode without control
characters (tab, CR and LF allowed). For every message x: decode(encode_client_message(x)) == x and
decode_server_message(encode(x)) == x.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

from signaling_server import strictjson

MAX_MESSAGE_BYTES = 64 * 1024  # UTF-8 bytes of one message (the server closes a bigger frame with 1009)
MAX_DEPTH = 16  # levels of nested arrays and objects in one message (the message itself is level 1)
MAX_CHAT_CHARS = 2000
CHAT_PAGE = 100  # chat lines per history page unless the client asks for fewer
MAX_CHAT_PAGE = 200
MAX_SDP_CHARS = 60 * 1024
_M = TypeVar("_M")
ROLES = ("edge", "expert", "sonographer", "observer")
CAPTURE_KINDS = ("still", "clip")
CAPTURE_STATES = ("requested", "captured", "stored", "failed")


class SignalError(Exception):
    """A refused signaling message; `code` is one of PROTOCOL.md's signaling error codes."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.ref = code, message, ref


@dataclass(frozen=True)
class Peer:
    id: str
    role: str  # edge | expert | sonographer | observer
    name: str
    user_id: str | None = None
    device_id: str | None = None


# ---- client → server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    type: ClassVar[str] = "join"
    observe: bool = False


@dataclass(frozen=True)
class Offer:
    type: ClassVar[str] = "offer"
    to: str
    sdp: str


@dataclass(frozen=True)
class Answer:
    type: ClassVar[str] = "answer"
    to: str
    sdp: str


@dataclass(frozen=True)
class Ice:
    type: ClassVar[str] = "ice"
    to: str
    candidate: dict[str, Any] | None


@dataclass(frozen=True)
class ChatSend:
    type: ClassVar[str] = "chat"
    text: str


@dataclass(frozen=True)
class Leave:
    type: ClassVar[str] = "leave"


@dataclass(frozen=True)
class Ping:
    """Is the socket alive? Answered `pong` at once (a browser cannot send WebSocket pings of its own)."""

    type: ClassVar[str] = "ping"


@dataclass(frozen=True)
class Captured:
    """The edge took a capture the server asked for and queued it for upload (not yet stored)."""

    type: ClassVar[str] = "captured"
    id: str
    sop_uid: str
    frames: int
    frame_capture_ms: float | None


@dataclass(frozen=True)
class CaptureFailed:
    type: ClassVar[str] = "capture-failed"
    id: str
    code: str
    message: str


@dataclass(frozen=True)
class ChatHistoryRequest:
    """Ask for a page of the room's stored chat: the newest `limit` lines older than line `before` (None: newest)."""

    type: ClassVar[str] = "chat-history"
    before: int | None = None
    limit: int = CHAT_PAGE


ClientMessage = Join | Offer | Answer | Ice | ChatSend | Leave | Ping | Captured | CaptureFailed | ChatHistoryRequest


def decode(raw: str | bytes) -> ClientMessage:
    """A client's message, as the server receives it."""
    return _decode(raw, _PARSERS)


def encode_client_message(message: ClientMessage) -> str:
    """A client's message, as the edge sends it."""
    return strictjson.dumps({"type": message.type, **asdict(message)})


def _decode(raw: str | bytes, parsers: dict[str, Callable[[dict[str, Any]], _M]]) -> _M:
    if strictjson.utf8_size(raw) > MAX_MESSAGE_BYTES:
        raise SignalError("bad_message", f"messages are limited to {MAX_MESSAGE_BYTES} bytes of UTF-8")
    try:
        data = strictjson.loads(raw, max_depth=MAX_DEPTH)
    except strictjson.JsonRefused as exc:
        raise SignalError("bad_json", f"the message is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SignalError("bad_json", "a message is a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise SignalError("bad_message", "'type' is missing")
    parse = parsers.get(kind)
    if parse is None:
        raise SignalError("unknown_type", f"unknown message type {kind[:40]!r}", ref=kind[:40])
    try:
        return parse(data)
    except SignalError as exc:
        raise SignalError(exc.code, exc.message, ref=kind) from None


def _str(data: dict[str, Any], key: str, max_len: int, allow_empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SignalError("bad_message", f"'{key}' must be a non-empty string")
    if len(value) > max_len:
        raise SignalError("bad_message", f"'{key}' is longer than {max_len} characters")
    return value


def _str_or_none(data: dict[str, Any], key: str, max_len: int) -> str | None:
    return None if data.get(key) is None else _str(data, key, max_len, allow_empty=True)


def _number_or_none(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise SignalError("bad_message", f"'{key}' must be a number or null")
    return float(value)


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise SignalError("bad_message", f"'{key}' must be an object")
    return value


def _one_of(data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = data.get(key)
    if value not in choices:
        raise SignalError("bad_message", f"'{key}' must be one of {', '.join(choices)}")
    return str(value)


def _join(data: dict[str, Any]) -> Join:
    observe = data.get("observe", False)
    if not isinstance(observe, bool):
        raise SignalError("bad_message", "'observe' must be true or false")
    return Join(observe=observe)


def _sdp(data: dict[str, Any]) -> str:
    sdp = _str(data, "sdp", MAX_SDP_CHARS)
    if not sdp.startswith("v=0"):
        raise SignalError("bad_message", "'sdp' is not a session description (must start with v=0)")
    return sdp


def _ice(data: dict[str, Any]) -> Ice:
    return Ice(to=_str(data, "to", 64), candidate=_candidate(data))


def _candidate(data: dict[str, Any]) -> dict[str, Any] | None:
    cand = data.get("candidate")
    if cand is None:
        return None
    if not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str):
        raise SignalError("bad_message", "'candidate' must be an object with a 'candidate' string, or null")
    mid, index = cand.get("sdpMid"), cand.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str):
        raise SignalError("bad_message", "'sdpMid' must be a string")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise SignalError("bad_message", "'sdpMLineIndex' must be a non-negative integer")
    if len(cand["candidate"]) > 1024:
        raise SignalError("bad_message", "the candidate is too long")
    return {"candidate": cand["candidate"], "sdpMid": mid, "sdpMLineIndex": index}


def _chat(data: dict[str, Any]) -> ChatSend:
    text = _str(data, "text", MAX_CHAT_CHARS).strip()
    if not text:
        raise SignalError("bad_message", "'text' must not be blank")
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in text):
        raise SignalError("bad_message", "'text' contains control characters")
    return ChatSend(text=text)


def _chat_history_request(data: dict[str, Any]) -> ChatHistoryRequest:
    return ChatHistoryRequest(before=_line_id_or_none(data, "before"), limit=_page_limit(data, "limit"))


def _line_id_or_none(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise SignalError("bad_message", f"'{key}' must be a chat line id (a positive integer) or null")
    return value


def _page_limit(data: dict[str, Any], key: str) -> int:
    value = data.get(key, CHAT_PAGE)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CHAT_PAGE:
        raise SignalError("bad_message", f"'{key}' must be an integer from 1 to {MAX_CHAT_PAGE}")
    return value


def _captured(data: dict[str, Any]) -> Captured:
    frames = data.get("frames")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise SignalError("bad_message", "'frames' must be a positive integer")
    return Captured(
        id=_str(data, "id", 64),
        sop_uid=_str(data, "sop_uid", 64),
        frames=frames,
        frame_capture_ms=_number_or_none(data, "frame_capture_ms"),
    )


def _capture_failed(data: dict[str, Any]) -> CaptureFailed:
    return CaptureFailed(id=_str(data, "id", 64), code=_str(data, "code", 64), message=_str(data, "message", 500))


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "join": _join,
    "offer": lambda d: Offer(to=_str(d, "to", 64), sdp=_sdp(d)),
    "answer": lambda d: Answer(to=_str(d, "to", 64), sdp=_sdp(d)),
    "ice": _ice,
    "chat": _chat,
    "leave": lambda d: Leave(),
    "ping": lambda d: Ping(),
    "captured": _captured,
    "capture-failed": _capture_failed,
    "chat-history": _chat_history_request,
}


# ---- server → client -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    you: Peer
    peers: tuple[Peer, ...]
    consultation: dict[str, Any]


@dataclass(frozen=True)
class PeerJoined:
    type: ClassVar[str] = "peer-joined"
    peer: Peer


@dataclass(frozen=True)
class Pong:
    """The answer to a `ping`, to its sender only."""

    type: ClassVar[str] = "pong"


@dataclass(frozen=True)
class PeerLeft:
    type: ClassVar[str] = "peer-left"
    peer_id: str


@dataclass(frozen=True)
class RelayedOffer:
    """An offer passed on to its target, stamped with the sender (`from`)."""

    type: ClassVar[str] = "offer"
    from_: str
    sdp: str


@dataclass(frozen=True)
class RelayedAnswer:
    type: ClassVar[str] = "answer"
    from_: str
    sdp: str


@dataclass(frozen=True)
class RelayedIce:
    type: ClassVar[str] = "ice"
    from_: str
    candidate: dict[str, Any] | None  # {"candidate", "sdpMid", "sdpMLineIndex"}; None: end of candidates


@dataclass(frozen=True)
class ChatLine:
    type: ClassVar[str] = "chat"
    id: int
    from_: str | None
    name: str
    role: str
    text: str
    at: str


@dataclass(frozen=True)
class ChatHistory:
    """Answer to `chat-history`: lines oldest first; `next_before` asks for the page before them (None: no more)."""

    type: ClassVar[str] = "chat-history"
    messages: tuple[ChatLine, ...]
    next_before: int | None


@dataclass(frozen=True)
class StateChanged:
    type: ClassVar[str] = "state"
    consultation: dict[str, Any]


@dataclass(frozen=True)
class ErrorReply:
    type: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True)
class CaptureCommand:
    """Server → edge: take a still (or a clip of the last `seconds`) with these labels."""

    type: ClassVar[str] = "capture"
    id: str
    kind: str  # still | clip
    seconds: float | None
    labels: dict[str, Any]
    frame_capture_ms: float | None  # the capture time of the frame the requester was looking at
    by: str  # who asked (name), for the record
    by_role: str


@dataclass(frozen=True)
class CaptureStatus:
    """Server → everyone in the room: a capture was requested, taken, stored (searchable), or failed."""

    type: ClassVar[str] = "capture-status"
    id: str | None
    state: str  # requested | captured | stored | failed
    sop_uid: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


ServerMessage = (
    Welcome
    | PeerJoined
    | PeerLeft
    | RelayedOffer
    | RelayedAnswer
    | RelayedIce
    | ChatLine
    | ChatHistory
    | StateChanged
    | ErrorReply
    | CaptureCommand
    | CaptureStatus
    | Pong
)


def encode(message: ServerMessage) -> str:
    """A server's message, as the server sends it."""
    data = asdict(message)
    if "from_" in data:
        data["from"] = data.pop("from_")
    if isinstance(message, ChatHistory):
        data["messages"] = [{"type": "chat", **_wire_names(line)} for line in data["messages"]]
    return strictjson.dumps({"type": message.type, **data})


def _wire_names(fields: dict[str, Any]) -> dict[str, Any]:
    return {("from" if key == "from_" else key): value for key, value in fields.items()}


def decode_server_message(raw: str | bytes) -> ServerMessage:
    """A server's message, as the edge receives it. Unknown fields are ignored, unknown types refused."""
    return _decode(raw, _SERVER_PARSERS)


def _peer(data: Any) -> Peer:
    if not isinstance(data, dict):
        raise SignalError("bad_message", "a peer must be an object")
    return Peer(
        id=_str(data, "id", 64),
        role=_one_of(data, "role", ROLES),
        name=_str(data, "name", 200, allow_empty=True),
        user_id=_str_or_none(data, "user_id", 64),
        device_id=_str_or_none(data, "device_id", 64),
    )


def _consultation(data: dict[str, Any]) -> dict[str, Any]:
    """The consultation as PROTOCOL.md §1 describes it; only its `id` and `state` are checked here."""
    consultation = _object(data, "consultation")
    _str(consultation, "id", 64)
    _str(consultation, "state", 32)
    return consultation


def _welcome(data: dict[str, Any]) -> Welcome:
    peers = data.get("peers")
    if not isinstance(peers, list):
        raise SignalError("bad_message", "'peers' must be a list")
    return Welcome(you=_peer(data.get("you")), peers=tuple(_peer(p) for p in peers), consultation=_consultation(data))


def _chat_line(data: dict[str, Any]) -> ChatLine:
    line_id = data.get("id")
    if not isinstance(line_id, int) or isinstance(line_id, bool):
        raise SignalError("bad_message", "'id' must be an integer")
    return ChatLine(
        id=line_id,
        from_=_str_or_none(data, "from", 64),
        name=_str(data, "name", 200, allow_empty=True),
        role=_str(data, "role", 16),
        text=_str(data, "text", MAX_CHAT_CHARS),
        at=_str(data, "at", 64),
    )


def _chat_history(data: dict[str, Any]) -> ChatHistory:
    lines = data.get("messages")
    if not isinstance(lines, list):
        raise SignalError("bad_message", "'messages' must be a list")
    if not all(isinstance(line, dict) for line in lines):
        raise SignalError("bad_message", "a chat line must be an object")
    return ChatHistory(tuple(_chat_line(line) for line in lines), _line_id_or_none(data, "next_before"))


def _capture_command(data: dict[str, Any]) -> CaptureCommand:
    kind = _one_of(data, "kind", CAPTURE_KINDS)
    seconds = _number_or_none(data, "seconds")
    if kind == "clip" and (seconds is None or seconds <= 0):
        raise SignalError("bad_message", "a clip needs a positive 'seconds'")
    return CaptureCommand(
        id=_str(data, "id", 64),
        kind=kind,
        seconds=seconds,
        labels=_object(data, "labels"),
        frame_capture_ms=_number_or_none(data, "frame_capture_ms"),
        by=_str(data, "by", 200, allow_empty=True),
        by_role=_str(data, "by_role", 16),
    )


def _capture_status(data: dict[str, Any]) -> CaptureStatus:
    detail = data.get("detail", {})
    if not isinstance(detail, dict):
        raise SignalError("bad_message", "'detail' must be an object")
    return CaptureStatus(
        id=_str_or_none(data, "id", 64),
        state=_one_of(data, "state", CAPTURE_STATES),
        sop_uid=_str_or_none(data, "sop_uid", 64),
        detail=detail,
    )


_SERVER_PARSERS: dict[str, Callable[[dict[str, Any]], ServerMessage]] = {
    "welcome": _welcome,
    "peer-joined": lambda d: PeerJoined(_peer(d.get("peer"))),
    "peer-left": lambda d: PeerLeft(_str(d, "peer_id", 64)),
    "offer": lambda d: RelayedOffer(from_=_str(d, "from", 64), sdp=_sdp(d)),
    "answer": lambda d: RelayedAnswer(from_=_str(d, "from", 64), sdp=_sdp(d)),
    "ice": lambda d: RelayedIce(from_=_str(d, "from", 64), candidate=_candidate(d)),
    "chat": _chat_line,
    "chat-history": _chat_history,
    "state": lambda d: StateChanged(_consultation(d)),
    "error": lambda d: ErrorReply(
        _str(d, "code", 64), _str(d, "message", 2000, allow_empty=True), _str_or_none(d, "ref", 64)
    ),
    "capture": _capture_command,
    "capture-status": _capture_status,
    "pong": lambda d: Pong(),
}
