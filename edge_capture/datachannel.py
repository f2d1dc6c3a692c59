"""The data-channel messages between the edge and each page (PROTOCOL.md §3), as frozen dataclasses.

Pure encode/decode, no I/O: :func:`decode` turns one received text into a message or raises
:class:`MessageError`; :func:`encode` turns a message into the text to send. Every message validates itself
when it is built, so nothing invalid can be encoded either.

Errors (edge_capture/errors.py)::

    EdgeError
    └── MessageError(code, message)
          code "bad_message": not JSON, not an object, a field missing or of the wrong type or value,
                              over 64 KiB, or sent on the wrong channel
          code "unknown_type": "type" is not one of §3's
          code "not_allowed": (for the relay to raise) an observer tried to draw

Coordinates are normalised image coordinates, finite, within [0, 1], kept to 5 decimals. The relayed forms
(``Mark``, ``Clear``, ``Pointer``) carry the sender's peer id and the edge clock as ``from_`` / ``at`` (JSON
``from`` / ``at``); the edge sets them, so what a page claims there is decoded but never trusted. Optional
fields that are None are left out of the JSON.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from edge_capture.errors import MessageError
from recordings.jsonmap import JsonMapped

GUIDANCE = "guidance"  # ordered, reliable
LIVE = "live"  # unordered, maxRetransmits 0
MAX_TEXT_BYTES = 64 * 1024
MAX_ID_LENGTH = 64
MAX_POINTS = 2000
MAX_RTP_TIMESTAMP = (1 << 32) - 1
MarkKind = Literal["arrow", "circle", "freehand"]
# kind -> (fewest, most) points: an arrow is tail then head, a circle its centre then a point on its rim
POINT_COUNTS: dict[str, tuple[int, int]] = {"arrow": (2, 2), "circle": (2, 2), "freehand": (2, MAX_POINTS)}
# Coordinates are kept to 5 decimals (0.02 px across a 1920-px image): at full float precision a 2000-point
# freehand would not fit in a 64 KiB message; at 5 decimals it takes about 36 KiB.
COORDINATE_DECIMALS = 5
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

Point = tuple[float, float]
Json = dict[str, Any]


def _bad(message: str) -> MessageError:
    return MessageError("bad_message", message)


def _check_id(value: object, name: str = "id") -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise _bad(f"{name} must be a string of 1 to {MAX_ID_LENGTH} characters")


def _check_number(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{name} must be a finite number")


def _unit(value: object, name: str) -> float:
    _check_number(value, name)
    if not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise _bad(f"{name} must be within [0, 1] (normalised image coordinates)")
    return round(float(value), COORDINATE_DECIMALS)  # type: ignore[arg-type]


def _check_relay(message: Mark | Clear | Pointer) -> None:
    if message.from_ is not None:
        _check_id(message.from_, "from")
    if message.at is not None:
        _check_number(message.at, "at")


def _check_ping_id(value: object) -> None:
    if isinstance(value, str):
        _check_id(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise _bad("id must be a string or a whole number")


class _Message(JsonMapped):
    """Every data-channel message (recordings/jsonmap.py does the JSON mapping)."""

    CHANNEL: ClassVar[str]

    @classmethod
    def missing(cls, key: str) -> Exception:
        return _bad(f"{key} is missing")


# -- guidance channel ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark(_Message):
    """A drawing on the image: ``mark`` (page → edge → all pages)."""

    TYPE: ClassVar[str] = "mark"
    CHANNEL: ClassVar[str] = GUIDANCE

    id: str
    kind: MarkKind
    points: tuple[Point, ...]
    color: str | None = None
    from_: str | None = None
    at: float | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        if not isinstance(self.kind, str) or self.kind not in POINT_COUNTS:
            raise _bad(f"kind must be one of {', '.join(POINT_COUNTS)}")
        if not isinstance(self.points, list | tuple):
            raise _bad("points must be a list of [x, y]")
        fewest, most = POINT_COUNTS[self.kind]
        if not fewest <= len(self.points) <= most:
            expected = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            raise _bad(f"a {self.kind} has {expected} points, not {len(self.points)}")
        if not all(isinstance(p, list | tuple) and len(p) == 2 for p in self.points):
            raise _bad("each point must be [x, y]")
        object.__setattr__(self, "points", tuple((_unit(x, "x"), _unit(y, "y")) for x, y in self.points))
        if self.color is not None and not (isinstance(self.color, str) and _COLOR.fullmatch(self.color)):
            raise _bad("color must look like #rrggbb")
        _check_relay(self)


@dataclass(frozen=True)
class Clear(_Message):
    """Remove every mark: ``clear`` (page → edge → all pages; the edge adds ``from``/``at`` as for marks)."""

    TYPE: ClassVar[str] = "clear"
    CHANNEL: ClassVar[str] = GUIDANCE

    from_: str | None = None
    at: float | None = None

    def __post_init__(self) -> None:
        _check_relay(self)


@dataclass(frozen=True)
class Marks(_Message):
    """Every current mark: ``marks`` (edge → a page, when its guidance channel opens)."""

    TYPE: ClassVar[str] = "marks"
    CHANNEL: ClassVar[str] = GUIDANCE

    marks: tuple[Mark, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.marks, list | tuple):
            raise _bad("marks must be a list of marks")
        marks = []
        for mark in self.marks:
            if isinstance(mark, dict) and mark.get("type", Mark.TYPE) == Mark.TYPE:
                mark = Mark.from_dict(mark)
            if not isinstance(mark, Mark):
                raise _bad("marks may hold only marks")
            marks.append(mark)
        object.__setattr__(self, "marks", tuple(marks))


@dataclass(frozen=True)
class GuidanceError(_Message):
    """A refused guidance message: ``error`` (edge → page), ``code`` stable, ``message`` for humans."""

    TYPE: ClassVar[str] = "error"
    CHANNEL: ClassVar[str] = GUIDANCE

    code: str
    message: str

    @classmethod
    def of(cls, error: MessageError) -> GuidanceError:
        return cls(error.code, error.message)

    def __post_init__(self) -> None:
        _check_id(self.code, "code")
        if not isinstance(self.message, str):
            raise _bad("message must be a string")


# -- live channel -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pointer(_Message):
    """Where a page's mouse is on the image: ``pointer`` (page → edge → other pages); hidden if not visible."""

    TYPE: ClassVar[str] = "pointer"
    CHANNEL: ClassVar[str] = LIVE

    x: float | None = None
    y: float | None = None
    visible: bool = True
    from_: str | None = None
    at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.visible, bool):
            raise _bad("visible must be true or false")
        if self.visible:
            object.__setattr__(self, "x", _unit(self.x, "x"))
            object.__setattr__(self, "y", _unit(self.y, "y"))
        elif self.x is not None or self.y is not None:
            raise _bad("a hidden pointer has no position")
        _check_relay(self)

    def to_dict(self) -> Json:
        data = super().to_dict()
        if self.visible:
            del data["visible"]  # the default: {"type": "pointer", "x", "y"}
        return data


@dataclass(frozen=True)
class Frame(_Message):
    """When a video frame was captured: ``frame`` (edge → page), keyed by the frame's RTP timestamp."""

    TYPE: ClassVar[str] = "frame"
    CHANNEL: ClassVar[str] = LIVE

    rtp: int
    capture_ms: float

    def __post_init__(self) -> None:
        if isinstance(self.rtp, bool) or not isinstance(self.rtp, int) or not 0 <= self.rtp <= MAX_RTP_TIMESTAMP:
            raise _bad("rtp must be a 32-bit RTP timestamp")
        _check_number(self.capture_ms, "capture_ms")


@dataclass(frozen=True)
class Ping(_Message):
    """A clock probe: ``ping`` (page → edge); ``t`` is the page clock in ms since the epoch."""

    TYPE: ClassVar[str] = "ping"
    CHANNEL: ClassVar[str] = LIVE

    id: str | int
    t: float

    def __post_init__(self) -> None:
        _check_ping_id(self.id)
        _check_number(self.t, "t")

    def pong(self, edge_ms: float, encoder: str | None = None) -> Pong:
        return Pong(id=self.id, t=self.t, edge_ms=edge_ms, encoder=encoder)


@dataclass(frozen=True)
class Pong(_Message):
    """The answer to a ping: ``pong`` (edge → page), ``t`` echoed, ``edge_ms`` the edge clock when answered,
    ``encoder`` the video encoder in use (for the link panel; absent if the edge does not say)."""

    TYPE: ClassVar[str] = "pong"
    CHANNEL: ClassVar[str] = LIVE

    id: str | int
    t: float
    edge_ms: float
    encoder: str | None = None

    def __post_init__(self) -> None:
        _check_ping_id(self.id)
        _check_number(self.t, "t")
        _check_number(self.edge_ms, "edge_ms")
        if self.encoder is not None and (not isinstance(self.encoder, str) or len(self.encoder) > 64):
            raise _bad("encoder must be a string of at most 64 characters")


# -- the wire -----------------------------------------------------------------------------------------------

Message = Mark | Clear | Marks | GuidanceError | Pointer | Frame | Ping | Pong
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Mark, Clear, Marks, GuidanceError, Pointer, Frame, Ping, Pong)
}


def _refuse_constant(name: str) -> Any:
    raise _bad(f"{name} is not a JSON number")


def decode(text: str | bytes, channel: str | None = None) -> Message:
    """Parse one data-channel message; with ``channel``, also refuse one that belongs on the other channel."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise _bad("message is over 64 KiB")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("message is not JSON text") from None
    if not isinstance(data, dict):
        raise _bad("message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise _bad("type is missing")
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise MessageError("unknown_type", f"unknown message type {kind[:64]!r}")
    if channel is not None and cls.CHANNEL != channel:
        raise _bad(f"{kind} is sent on the {cls.CHANNEL} channel, not on {channel}")
    message: Message = cls.from_dict(data)
    return message


def encode(message: Message) -> str:
    """The text to send for ``message`` (compact JSON)."""
    return json.dumps(message.to_dict(), separators=(",", ":"), allow_nan=False)
