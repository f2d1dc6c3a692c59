"""The recording timeline: what happened during a live consultation, on the recording's media clock.

JSON Lines (UTF-8, one object per line, RECORDINGS.md §2). The first line is the :class:`Header`; every other
line is an event with ``t``: seconds since the segment's first recorded video frame, which is pts 0 of the
segment's MP4 (the media clock). Written by the edge, read by the server and the review page; pure, no I/O.

Every message validates itself when built, so nothing invalid can be encoded and :func:`decode` refuses what
does not fit. Unknown fields are ignored (a newer writer may add some); an unknown ``type`` is refused.

Error tree::

    ValueError
    └── TimelineError(code, message)
          code "bad_line":     not JSON, not an object, or longer than MAX_LINE_BYTES
          code "bad_event":    a field missing, or of the wrong type or value
          code "unknown_type": "type" is none of the types below
          code "bad_order":    (decode_timeline) no header first, or a second header
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from recordings.timeline_fields import (
    Json,
    JsonLine,
    bad,
    choice,
    number,
    optional_string,
    string,
    whole,
)
from recordings.timeline_fields import (
    TimelineError as TimelineError,
)

VERSION = 2  # what this writer writes; version 2 added `link_lost`
READABLE_VERSIONS = (1, 2)  # a version-1 file is a version-2 file without link_lost events
MAX_LINE_BYTES = 256 * 1024
MAX_TEXT = 2000
MAX_POINTS = 2000
MAX_LABELS_BYTES = 2048
POINT_COUNTS = {"arrow": (2, 2), "circle": (2, 2), "freehand": (2, MAX_POINTS)}
CONSULTATION_STATES = ("requested", "live", "ended", "cancelled")
ROLES = ("edge", "expert", "sonographer", "observer")
QC_STATES = ("raised", "cleared")
LINK_LOST_STATES = ("start", "end")
CAPTURE_KINDS = ("still", "clip")
Point = tuple[float, float]
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Header(JsonLine):
    TYPE: ClassVar[str] = "header"
    consultation_id: str
    started_at_ms: float  # the edge's wall clock (ms since the Unix epoch) at t = 0
    width: int
    height: int
    fps: float
    version: int = VERSION
    segment: int = 0  # 0 for media.mp4, k for media.k.mp4

    def __post_init__(self) -> None:
        string(self.consultation_id, "consultation_id")
        number(self.started_at_ms, "started_at_ms", 0)
        whole(self.width, "width", 2)
        whole(self.height, "height", 2)
        number(self.fps, "fps", 0.1, 1000)
        if self.version not in READABLE_VERSIONS:
            raise bad(f"version {self.version!r} is none of {', '.join(map(str, READABLE_VERSIONS))}")
        whole(self.segment, "segment")

    def to_dict(self) -> Json:
        data = super().to_dict()
        return {"type": data.pop("type"), "version": data.pop("version"), **data}


@dataclass(frozen=True)
class Event(JsonLine):
    t: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", round(number(self.t, "t", 0), 3))


@dataclass(frozen=True)
class Mark(Event):
    TYPE: ClassVar[str] = "mark"
    id: str
    kind: str
    points: tuple[Point, ...]
    color: str | None = None
    from_: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.id, "id")
        fewest, most = POINT_COUNTS.get(choice(self.kind, "kind", tuple(POINT_COUNTS)), (0, 0))
        if not isinstance(self.points, list | tuple) or not fewest <= len(self.points) <= most:
            raise bad(f"a {self.kind} has {fewest} to {most} points")
        if not all(isinstance(p, list | tuple) and len(p) == 2 for p in self.points):
            raise bad("each point is [x, y]")
        points = tuple((number(x, "x", 0, 1), number(y, "y", 0, 1)) for x, y in self.points)
        object.__setattr__(self, "points", points)
        if self.color is not None and not (isinstance(self.color, str) and _COLOR.fullmatch(self.color)):
            raise bad("color must look like #rrggbb")
        optional_string(self.from_, "from")


@dataclass(frozen=True)
class Clear(Event):
    TYPE: ClassVar[str] = "clear"
    from_: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        optional_string(self.from_, "from")


@dataclass(frozen=True)
class Pointer(Event):
    TYPE: ClassVar[str] = "pointer"
    x: float | None = None
    y: float | None = None
    visible: bool = True
    from_: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.visible, bool):
            raise bad("visible must be true or false")
        if self.visible:
            number(self.x, "x", 0, 1)
            number(self.y, "y", 0, 1)
        elif self.x is not None or self.y is not None:
            raise bad("a hidden pointer has no position")
        optional_string(self.from_, "from")


@dataclass(frozen=True)
class Chat(Event):
    TYPE: ClassVar[str] = "chat"
    text: str
    name: str = ""
    role: str = ""
    from_: str | None = None  # the sender's user id (null for the edge)

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.text, "text", MAX_TEXT)
        string(self.name, "name", 200, empty=True)
        string(self.role, "role", 16, empty=True)
        optional_string(self.from_, "from")


@dataclass(frozen=True)
class Capture(Event):
    TYPE: ClassVar[str] = "capture"
    id: str
    sop_uid: str
    kind: str
    frames: int = 1
    labels: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.id, "id")
        string(self.sop_uid, "sop_uid")
        choice(self.kind, "kind", CAPTURE_KINDS)
        whole(self.frames, "frames", 1)
        if not isinstance(self.labels, dict) or len(json.dumps(self.labels)) > MAX_LABELS_BYTES:
            raise bad(f"labels must be a JSON object of at most {MAX_LABELS_BYTES} bytes")


@dataclass(frozen=True)
class Qc(Event):
    TYPE: ClassVar[str] = "qc"
    code: str
    state: str
    text: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.code, "code")
        choice(self.state, "state", QC_STATES)
        string(self.text, "text", 500, empty=True)


@dataclass(frozen=True)
class ViewerLink(JsonLine):
    """One page's link as the edge saw it over the last second (not a line of its own)."""

    TYPE: ClassVar[str] = "viewer"
    peer: str
    fps: float
    kbps: float | None = None
    rtt_ms: float | None = None
    loss: float | None = None  # fraction of packets lost, 0 to 1

    def __post_init__(self) -> None:
        string(self.peer, "peer")
        object.__setattr__(self, "fps", round(number(self.fps, "fps", 0, 1000), 1))
        for name, high in (("kbps", 1e7), ("rtt_ms", 1e6), ("loss", 1.0)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, round(number(value, name, 0, high), 3))


@dataclass(frozen=True)
class Link(Event):
    TYPE: ClassVar[str] = "link"
    viewers: tuple[ViewerLink, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.viewers, list | tuple):
            raise bad("viewers must be a list")
        viewers = tuple(ViewerLink.from_dict(v) if isinstance(v, dict) else v for v in self.viewers)
        if not all(isinstance(v, ViewerLink) for v in viewers):
            raise bad("viewers holds {peer, fps, kbps, rtt_ms, loss} objects")
        object.__setattr__(self, "viewers", viewers)


@dataclass(frozen=True)
class State(Event):
    TYPE: ClassVar[str] = "state"
    state: str

    def __post_init__(self) -> None:
        super().__post_init__()
        choice(self.state, "state", CONSULTATION_STATES)


@dataclass(frozen=True)
class Join(Event):
    TYPE: ClassVar[str] = "join"
    peer: str
    role: str
    name: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.peer, "peer")
        choice(self.role, "role", ROLES)
        string(self.name, "name", 200, empty=True)


@dataclass(frozen=True)
class Leave(Event):
    TYPE: ClassVar[str] = "leave"
    peer: str
    role: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        string(self.peer, "peer")
        if self.role is not None:
            choice(self.role, "role", ROLES)
        optional_string(self.name, "name", 200)


@dataclass(frozen=True)
class LinkLost(Event):
    """One end of a span in which the edge had lost its link to the room (its signaling socket and, with it, every
    page's call): ``start`` at the last moment it heard from the room, ``end`` when it is back in the room."""

    TYPE: ClassVar[str] = "link_lost"
    state: str

    def __post_init__(self) -> None:
        super().__post_init__()
        choice(self.state, "state", LINK_LOST_STATES)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls for cls in (Mark, Clear, Pointer, Chat, Capture, Qc, Link, State, Join, Leave, LinkLost)
}


def link_lost_spans(events: tuple[Event, ...] | list[Event], end_of_segment: float) -> list[tuple[float, float]]:
    """The link-lost spans of one segment as (start, end) in its seconds: a ``start`` without its ``end`` (the
    recording stopped, or the edge was killed, while the link was down) runs to ``end_of_segment``."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for event in events:
        if not isinstance(event, LinkLost):
            continue
        if event.state == "start" and start is None:
            start = event.t
        elif event.state == "end" and start is not None:
            spans.append((start, max(start, event.t)))
            start = None
    if start is not None:
        spans.append((start, max(start, end_of_segment)))
    return spans


def encode(line: Header | Event) -> str:
    """One JSON line, without the newline."""
    return json.dumps(line.to_dict(), ensure_ascii=False, separators=(",", ":"))


def decode(text: str | bytes) -> Header | Event:
    if len(text) > MAX_LINE_BYTES:
        raise TimelineError("bad_line", f"a line is at most {MAX_LINE_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TimelineError("bad_line", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TimelineError("bad_line", "a line is a JSON object")
    kind = data.get("type")
    cls: type[Header | Event] | None = Header if kind == Header.TYPE else EVENT_TYPES.get(str(kind))
    if cls is None:
        raise TimelineError("unknown_type", f"unknown type {str(kind)[:32]!r}")
    try:
        line: Header | Event = cls.from_dict(data)
    except TypeError as exc:  # a value JSON can hold but the checks did not expect (a list for a string)
        raise bad(f"{kind}: {exc}") from None
    return line


@dataclass(frozen=True)
class Timeline:
    header: Header
    events: tuple[Event, ...]
    torn_tail: bool = False  # the last line was cut short (the writer was killed) and was left out
    skipped: int = 0  # lines left out because they did not decode (only with ``skip_bad``)


def decode_timeline(data: str | bytes, *, skip_bad: bool = False) -> Timeline:
    """A whole timeline file: the header first, then events. A last line without its newline is a write the
    edge did not finish (it was killed): it is left out when it does not decode, and ``torn_tail`` says so.
    With ``skip_bad`` (the offline scorer reading any folder) an event line that does not decode is left out and
    counted in ``skipped`` instead of refusing the file; the header must still come first."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    torn = False
    if tail:
        try:
            decode(tail)
            lines.append(tail)
        except TimelineError:
            torn = True
    decoded: list[Header | Event] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            decoded.append(decode(line))
        except TimelineError:
            if not skip_bad or not decoded:
                raise
            skipped += 1
    if not decoded or not isinstance(decoded[0], Header):
        raise TimelineError("bad_order", "a timeline starts with its header")
    events = decoded[1:]
    if any(isinstance(e, Header) for e in events):
        raise TimelineError("bad_order", "a timeline has one header")
    return Timeline(decoded[0], tuple(e for e in events if isinstance(e, Event)), torn, skipped)
