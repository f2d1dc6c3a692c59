"""edge_capture.datachannel: the §3 messages, encoded and decoded without any socket."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edge_capture.datachannel import (
    GUIDANCE,
    LIVE,
    Clear,
    Frame,
    GuidanceError,
    Mark,
    Marks,
    MessageError,
    Ping,
    Pointer,
    Pong,
    decode,
    encode,
)
from edge_capture.errors import EdgeError

ARROW = Mark(id="m1", kind="arrow", points=((0.1, 0.2), (0.5, 0.6)), color="#ff8800")
CIRCLE = Mark(id="c", kind="circle", points=((0.5, 0.5), (0.6, 0.5)))
FREEHAND = Mark(id="f" * 64, kind="freehand", points=tuple((i / 1999, 1 - i / 1999) for i in range(2000)))
RELAYED = replace(ARROW, from_="peer-7", at=1_700_000_000_123)

MESSAGES = [
    ARROW,
    CIRCLE,
    FREEHAND,
    RELAYED,
    Clear(),
    Clear(from_="peer-7", at=1_700_000_000_456.5),
    Marks((RELAYED, CIRCLE)),
    Marks(),
    GuidanceError("not_allowed", "observers cannot draw"),
    Pointer(x=0.25, y=1.0),
    Pointer(visible=False),
    Pointer(x=0, y=0, from_="peer-2", at=17),
    Frame(rtp=0xFFFF_FFFF, capture_ms=1_700_000_000_000.125),
    Frame(rtp=0, capture_ms=0),
    Ping(id="p-1", t=1_700_000_000_000.5),
    Ping(id=42, t=5),
    Pong(id=42, t=5, edge_ms=1_700_000_000_001.25),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


def test_wire_forms_follow_the_protocol() -> None:
    assert json.loads(encode(RELAYED)) == {
        "type": "mark",
        "id": "m1",
        "kind": "arrow",
        "points": [[0.1, 0.2], [0.5, 0.6]],
        "color": "#ff8800",
        "from": "peer-7",
        "at": 1_700_000_000_123,
    }
    assert json.loads(encode(CIRCLE)) == {
        "type": "mark",
        "id": "c",
        "kind": "circle",
        "points": [[0.5, 0.5], [0.6, 0.5]],
    }
    assert json.loads(encode(Clear())) == {"type": "clear"}
    assert json.loads(encode(Marks((CIRCLE,)))) == {"type": "marks", "marks": [json.loads(encode(CIRCLE))]}
    assert json.loads(encode(Pointer(x=0.5, y=0.25))) == {"type": "pointer", "x": 0.5, "y": 0.25}
    assert json.loads(encode(Pointer(visible=False, from_="p"))) == {"type": "pointer", "visible": False, "from": "p"}
    assert json.loads(encode(Frame(rtp=7, capture_ms=1.5))) == {"type": "frame", "rtp": 7, "capture_ms": 1.5}
    assert json.loads(encode(Ping(id=1, t=2).pong(edge_ms=3))) == {"type": "pong", "id": 1, "t": 2, "edge_ms": 3}
    with_encoder = {"type": "pong", "id": 1, "t": 2, "edge_ms": 3, "encoder": "x264 ultrafast"}
    assert json.loads(encode(Ping(id=1, t=2).pong(edge_ms=3, encoder="x264 ultrafast"))) == with_encoder
    error = GuidanceError("bad_message", "x must be within [0, 1]")
    assert json.loads(encode(error)) == {"type": "error", "code": "bad_message", "message": "x must be within [0, 1]"}


def test_decoding_is_lenient_where_the_protocol_is() -> None:
    # integers are numbers too; unknown fields are ignored; a visible pointer may say so
    mark = decode('{"type":"mark","id":"a","kind":"arrow","points":[[0,1],[1,0]],"extra":true}')
    assert mark == Mark(id="a", kind="arrow", points=((0.0, 1.0), (1.0, 0.0)))
    assert decode('{"type":"pointer","x":1,"y":0,"visible":true}') == Pointer(x=1.0, y=0.0)
    inner = '{"id":"a","kind":"circle","points":[[0.5,0.5],[0.5,0.6]]}'  # marks inside marks may omit type
    circle = Mark(id="a", kind="circle", points=((0.5, 0.5), (0.5, 0.6)))
    assert decode('{"type":"marks","marks":[' + inner + "]}") == Marks((circle,))
    assert decode(b'{"type":"clear"}') == Clear()


def test_messages_know_their_channel() -> None:
    assert decode(encode(ARROW), channel=GUIDANCE) == ARROW
    assert decode(encode(Ping(id=1, t=1)), channel=LIVE) == Ping(id=1, t=1)
    with pytest.raises(MessageError) as refused:
        decode(encode(ARROW), channel=LIVE)
    assert (refused.value.code, refused.value.message) == (
        "bad_message",
        "mark is sent on the guidance channel, not on live",
    )
    with pytest.raises(MessageError):
        decode(encode(Pointer(x=0.5, y=0.5)), channel=GUIDANCE)


def mark_json(**fields: object) -> str:
    message: dict[str, object] = {"type": "mark", "id": "m", "kind": "arrow", "points": [[0.1, 0.1], [0.9, 0.9]]}
    message.update(fields)
    return json.dumps({k: v for k, v in message.items() if v is not DROP})


DROP = object()

REFUSED = {
    "not json": ("{", "message is not JSON text"),
    "not an object": ("[1, 2]", "message must be a JSON object"),
    "no type": ('{"id": "m"}', "type is missing"),
    "type not a string": ('{"type": 7}', "type is missing"),
    "NaN": ('{"type":"frame","rtp":1,"capture_ms":NaN}', "NaN is not a JSON number"),
    "Infinity": ('{"type":"ping","id":1,"t":Infinity}', "Infinity is not a JSON number"),
    "no id": (mark_json(id=DROP), "id is missing"),
    "empty id": (mark_json(id=""), "id must be a string of 1 to 64 characters"),
    "long id": (mark_json(id="x" * 65), "id must be a string of 1 to 64 characters"),
    "id not a string": (mark_json(id=5), "id must be a string of 1 to 64 characters"),
    "unknown kind": (mark_json(kind="square"), "kind must be one of arrow, circle, freehand"),
    "kind not a string": (mark_json(kind=["arrow"]), "kind must be one of arrow, circle, freehand"),
    "arrow of 3": (mark_json(points=[[0, 0], [0.5, 0.5], [1, 1]]), "a arrow has 2 points, not 3"),
    "circle of 1": (mark_json(kind="circle", points=[[0, 0]]), "a circle has 2 points, not 1"),
    "freehand of 1": (mark_json(kind="freehand", points=[[0, 0]]), "a freehand has 2 to 2000 points, not 1"),
    "freehand of 2001": (
        mark_json(kind="freehand", points=[[0, 0]] * 2001),
        "a freehand has 2 to 2000 points, not 2001",
    ),
    "points not a list": (mark_json(points="0,0 1,1"), "points must be a list of [x, y]"),
    "point of 3": (mark_json(points=[[0, 0, 0], [1, 1]]), "each point must be [x, y]"),
    "point not a list": (mark_json(points=[{"x": 0, "y": 0}, [1, 1]]), "each point must be [x, y]"),
    "x over 1": (mark_json(points=[[1.01, 0], [1, 1]]), "x must be within [0, 1] (normalised image coordinates)"),
    "y under 0": (mark_json(points=[[0, -0.01], [1, 1]]), "y must be within [0, 1] (normalised image coordinates)"),
    "x a string": (mark_json(points=[["0.5", 0], [1, 1]]), "x must be a finite number"),
    "y a bool": (mark_json(points=[[0.5, True], [1, 1]]), "y must be a finite number"),
    "huge x": ('{"type":"pointer","x":1e400,"y":0}', "x must be a finite number"),
    "bad colour": (mark_json(color="red"), "color must look like #rrggbb"),
    "short colour": (mark_json(color="#fff"), "color must look like #rrggbb"),
    "bad from": (mark_json(**{"from": ""}), "from must be a string of 1 to 64 characters"),
    "bad at": (mark_json(at="now"), "at must be a finite number"),
    "marks not a list": ('{"type":"marks","marks":{}}', "marks must be a list of marks"),
    "marks holding a clear": ('{"type":"marks","marks":[{"type":"clear"}]}', "marks may hold only marks"),
    "marks holding a bad mark": (
        '{"type":"marks","marks":[' + mark_json(color="red") + "]}",
        "color must look like #rrggbb",
    ),
    "pointer without y": ('{"type":"pointer","x":0.5}', "y must be a finite number"),
    "pointer off the image": (
        '{"type":"pointer","x":0.5,"y":2}',
        "y must be within [0, 1] (normalised image coordinates)",
    ),
    "hidden pointer with a place": (
        '{"type":"pointer","visible":false,"x":0.5,"y":0.5}',
        "a hidden pointer has no position",
    ),
    "visible not a bool": ('{"type":"pointer","visible":"no"}', "visible must be true or false"),
    "rtp negative": ('{"type":"frame","rtp":-1,"capture_ms":1}', "rtp must be a 32-bit RTP timestamp"),
    "rtp over 32 bits": ('{"type":"frame","rtp":4294967296,"capture_ms":1}', "rtp must be a 32-bit RTP timestamp"),
    "rtp a float": ('{"type":"frame","rtp":1.0,"capture_ms":1}', "rtp must be a 32-bit RTP timestamp"),
    "frame without capture_ms": ('{"type":"frame","rtp":1}', "capture_ms is missing"),
    "ping without t": ('{"type":"ping","id":1}', "t is missing"),
    "ping id a list": ('{"type":"ping","id":[1],"t":1}', "id must be a string or a whole number"),
    "ping id a bool": ('{"type":"ping","id":true,"t":1}', "id must be a string or a whole number"),
    "pong without edge_ms": ('{"type":"pong","id":1,"t":1}', "edge_ms is missing"),
    "pong with a numeric encoder": (
        '{"type":"pong","id":1,"t":1,"edge_ms":2,"encoder":264}',
        "encoder must be a string of at most 64 characters",
    ),
    "error without message": ('{"type":"error","code":"x"}', "message is missing"),
    "too big": (mark_json(id="m", pad="x" * (64 * 1024)), "message is over 64 KiB"),
    "not utf-8": (b'{"type":"clear","x":"\xff"}', "message is not JSON text"),
}


@pytest.mark.parametrize(("text", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_refusals_are_bad_message_with_a_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(MessageError) as refused:
        decode(text)
    assert (refused.value.code, refused.value.message) == ("bad_message", reason)


def test_unknown_type() -> None:
    with pytest.raises(MessageError) as refused:
        decode('{"type":"teleport","x":1}')
    assert (refused.value.code, refused.value.message) == ("unknown_type", "unknown message type 'teleport'")


def test_size_limit_counts_utf8_bytes() -> None:
    fits = '{"type":"clear","pad":"' + "é" * 32_000 + '"}'  # 64,025 bytes
    assert decode(fits) == Clear()
    too_big = '{"type":"clear","pad":"' + "é" * 33_000 + '"}'  # 33,025 characters, but 66,025 bytes
    with pytest.raises(MessageError) as refused:
        decode(too_big)
    assert refused.value.message == "message is over 64 KiB"


def test_coordinates_keep_five_decimals_so_the_longest_freehand_fits() -> None:
    assert Pointer(x=1 / 3, y=2 / 3) == Pointer(x=0.33333, y=0.66667)
    assert FREEHAND.points[1] == (0.0005, 0.9995)
    assert len(encode(FREEHAND).encode()) < 48 * 1024


def test_nothing_invalid_can_be_built_either() -> None:
    with pytest.raises(MessageError):
        Mark(id="m", kind="arrow", points=((0.0, 0.0), (1.5, 0.0)))
    with pytest.raises(MessageError):
        Pointer(x=float("nan"), y=0.5)
    with pytest.raises(MessageError):
        Frame(rtp=1 << 32, capture_ms=0)


def test_a_refusal_becomes_the_error_message_sent_back() -> None:
    error = MessageError("bad_message", "points must be a list of [x, y]")
    assert GuidanceError.of(error) == GuidanceError("bad_message", "points must be a list of [x, y]")
    assert isinstance(error, EdgeError) and error.as_json() == {"error": "bad_message", "message": error.message}
