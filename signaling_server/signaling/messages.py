"""The signaling messages of PROTOCOL.md §2 as frozen dataclasses, with pure decode (client → server)
and encode (server → client). Decoding validates; a refusal is a SignalError carrying the wire code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

MAX_MESSAGE_BYTES = 64 * 1024
MAX_CHAT_CHARS = 2000
MAX_SDP_CHARS = 60 * 1024


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


ClientMessage = Join | Offer | Answer | Ice | ChatSend | Leave | Captured | CaptureFailed


def decode(raw: str | bytes) -> ClientMessage:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise SignalError("bad_message", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SignalError("bad_json", "the message is not JSON") from None
    if not isinstance(data, dict):
        raise SignalError("bad_json", "a message is a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise SignalError("bad_message", "'type' is missing")
    parse = _PARSERS.get(kind)
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
    to = _str(data, "to", 64)
    cand = data.get("candidate")
    if cand is None:
        return Ice(to=to, candidate=None)
    if not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str):
        raise SignalError("bad_message", "'candidate' must be an object with a 'candidate' string, or null")
    mid, index = cand.get("sdpMid"), cand.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str):
        raise SignalError("bad_message", "'sdpMid' must be a string")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise SignalError("bad_message", "'sdpMLineIndex' must be a non-negative integer")
    if len(cand["candidate"]) > 1024:
        raise SignalError("bad_message", "the candidate is too long")
    return Ice(to=to, candidate={"candidate": cand["candidate"], "sdpMid": mid, "sdpMLineIndex": index})


def _chat(data: dict[str, Any]) -> ChatSend:
    text = _str(data, "text", MAX_CHAT_CHARS).strip()
    if not text:
        raise SignalError("bad_message", "'text' must not be blank")
    return ChatSend(text=text)


def _captured(data: dict[str, Any]) -> Captured:
    frames = data.get("frames")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise SignalError("bad_message", "'frames' must be a positive integer")
    at = data.get("frame_capture_ms")
    if at is not None and (not isinstance(at, int | float) or isinstance(at, bool)):
        raise SignalError("bad_message", "'frame_capture_ms' must be a number or null")
    return Captured(
        id=_str(data, "id", 64),
        sop_uid=_str(data, "sop_uid", 64),
        frames=frames,
        frame_capture_ms=None if at is None else float(at),
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
    "captured": _captured,
    "capture-failed": _capture_failed,
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
class PeerLeft:
    type: ClassVar[str] = "peer-left"
    peer_id: str


@dataclass(frozen=True)
class Relayed:
    """An offer, answer or ice message passed on to its target, stamped with the sender."""

    kind: str
    from_: str
    payload: dict[str, Any] = field(default_factory=dict)


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
    Welcome | PeerJoined | PeerLeft | Relayed | ChatLine | StateChanged | ErrorReply | CaptureCommand | CaptureStatus
)


def encode(message: ServerMessage) -> str:
    if isinstance(message, Relayed):
        return json.dumps({"type": message.kind, "from": message.from_, **message.payload})
    data = asdict(message)
    if "from_" in data:
        data["from"] = data.pop("from_")
    return json.dumps({"type": message.type, **data}, ensure_ascii=False)
