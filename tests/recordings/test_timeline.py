"""recordings.timeline: the timeline's lines as frozen dataclasses, encoded and decoded without sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recordings import timeline as tl

HEADER = tl.Header("c0ffee", 1_790_000_000_000.25, 1280, 720, 30.0)
EVENTS: list[tl.Event] = [
    tl.Mark(1.0, "m1", "arrow", ((0.2, 0.25), (0.6, 0.5)), "#ff8800", "p1"),
    tl.Mark(1.5, "m2", "freehand", tuple((i / 100, 0.5) for i in range(50)), None, "p2"),
    tl.Clear(2.0, "p1"),
    tl.Pointer(2.1, 0.3, 0.4, True, "p1"),
    tl.Pointer(2.2, None, None, False, "p1"),
    tl.Chat(3.0, "Tilt the probe caudally, please", "Expert", "expert", "u1"),
    tl.Capture(4.0, "cap1", "1.2.826.0.1.3680043.8.498.1", "clip", 90, {"side": "R", "plane": "transverse"}),
    tl.Qc(5.0, "low_contrast", "raised", "Image contrast is low"),
    tl.Link(6.0, (tl.ViewerLink("p1", 29.97, 5800.5, 12.25, 0.0), tl.ViewerLink("p2", 15.0))),
    tl.State(7.0, "ended"),
    tl.Join(0.0, "p1", "expert", "Expert"),
    tl.Leave(8.0, "p1", "expert", "Expert"),
    tl.LinkLost(9.0, "start"),
    tl.LinkLost(49.5, "end"),
]


@pytest.mark.parametrize("line", [HEADER, *EVENTS], ids=lambda line: line.TYPE)
def test_every_line_decodes_to_what_was_encoded(line: tl.Header | tl.Event) -> None:
    text = tl.encode(line)
    assert "\n" not in text
    assert tl.decode(text) == line
    assert tl.decode(text.encode()) == line
    assert json.loads(text)["type"] == line.TYPE


def test_the_header_says_version_first_and_events_say_t() -> None:
    assert list(json.loads(tl.encode(HEADER)))[:2] == ["type", "version"]
    data = json.loads(tl.encode(EVENTS[0]))
    assert data["t"] == 1.0 and data["from"] == "p1" and "from_" not in data
    assert "color" not in json.loads(tl.encode(EVENTS[1]))  # None is left out


def test_version_2_is_written_and_a_version_1_file_still_reads() -> None:
    assert json.loads(tl.encode(HEADER))["version"] == 2
    old = tl.encode(HEADER).replace('"version":2', '"version":1') + "\n" + tl.encode(EVENTS[2]) + "\n"
    assert tl.decode_timeline(old).header.version == 1


def test_link_lost_spans_pair_start_and_end_and_an_open_one_runs_to_the_end() -> None:
    events = [tl.LinkLost(2.0, "start"), tl.Chat(3.0, "x"), tl.LinkLost(40.0, "end"),
              tl.LinkLost(50.0, "end"), tl.LinkLost(60.0, "start")]  # fmt: skip
    assert tl.link_lost_spans(events, 70.0) == [(2.0, 40.0), (60.0, 70.0)]
    assert tl.link_lost_spans([], 70.0) == []


def test_t_is_kept_to_the_millisecond_and_unknown_fields_are_ignored() -> None:
    assert tl.State(1.23456789, "live").t == 1.235
    decoded = tl.decode('{"type":"state","t":2,"state":"live","future_field":[1,2]}')
    assert decoded == tl.State(2.0, "live")


def test_a_whole_timeline_decodes_and_a_torn_last_line_is_left_out() -> None:
    text = "".join(tl.encode(line) + "\n" for line in [HEADER, *EVENTS])
    whole = tl.decode_timeline(text)
    assert whole.header == HEADER and list(whole.events) == EVENTS and not whole.torn_tail
    torn = tl.decode_timeline(text + tl.encode(EVENTS[0])[:20])
    assert list(torn.events) == EVENTS and torn.torn_tail
    unterminated = tl.decode_timeline(text + tl.encode(EVENTS[2]))  # whole, only without its newline
    assert unterminated.events[-1] == EVENTS[2] and not unterminated.torn_tail


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("not json", "bad_line"),
        ("[1, 2]", "bad_line"),
        ('{"type": "movie", "t": 1}', "unknown_type"),
        ('{"t": 1}', "unknown_type"),
        ('{"type": "state", "state": "live"}', "bad_event"),  # no t
        ('{"type": "state", "t": -1, "state": "live"}', "bad_event"),
        ('{"type": "state", "t": "soon", "state": "live"}', "bad_event"),
        ('{"type": "state", "t": NaN, "state": "live"}', "bad_event"),
        ('{"type": "state", "t": 1, "state": "paused"}', "bad_event"),
        ('{"type": "mark", "t": 1, "id": "m", "kind": "arrow", "points": [[0, 0]]}', "bad_event"),
        ('{"type": "mark", "t": 1, "id": "m", "kind": "arrow", "points": [[0, 0], [1.5, 0]]}', "bad_event"),
        ('{"type": "mark", "t": 1, "id": "m", "kind": "square", "points": [[0, 0], [1, 1]]}', "bad_event"),
        ('{"type": "mark", "t": 1, "id": "m", "kind": "arrow", "points": [[0, 0], [1, 1]], "color": "red"}',
         "bad_event"),
        ('{"type": "mark", "t": 1, "id": "m", "kind": "arrow", "points": "0,0 1,1"}', "bad_event"),
        ('{"type": "pointer", "t": 1, "x": 0.5}', "bad_event"),
        ('{"type": "pointer", "t": 1, "x": 0.5, "y": 0.5, "visible": false}', "bad_event"),
        ('{"type": "chat", "t": 1, "text": ""}', "bad_event"),
        ('{"type": "chat", "t": 1, "text": ["hi"]}', "bad_event"),
        ('{"type": "capture", "t": 1, "id": "c", "sop_uid": "1.2", "kind": "movie"}', "bad_event"),
        ('{"type": "capture", "t": 1, "id": "c", "sop_uid": "1.2", "kind": "still", "frames": 0}', "bad_event"),
        ('{"type": "capture", "t": 1, "id": "c", "sop_uid": "1.2", "kind": "still", "labels": []}', "bad_event"),
        ('{"type": "qc", "t": 1, "code": "blur", "state": "maybe"}', "bad_event"),
        ('{"type": "link", "t": 1, "viewers": [{"peer": "p1", "fps": 30, "loss": 2}]}', "bad_event"),
        ('{"type": "link", "t": 1, "viewers": [{"fps": 30}]}', "bad_event"),
        ('{"type": "join", "t": 1, "peer": "p1", "role": "patient"}', "bad_event"),
        ('{"type": "header", "version": 3, "consultation_id": "c", "started_at_ms": 1, "width": 2, "height": 2,'
         ' "fps": 30}', "bad_event"),
        ('{"type": "link_lost", "t": 1, "state": "maybe"}', "bad_event"),
        ('{"type": "link_lost", "t": 1}', "bad_event"),
        ('{"type": "header", "version": 1, "consultation_id": "c", "started_at_ms": 1, "width": 2, "fps": 30}',
         "bad_event"),
    ],
)
def test_what_does_not_fit_is_refused_with_a_code(data: str, code: str) -> None:
    with pytest.raises(tl.TimelineError) as refused:
        tl.decode(data)
    assert refused.value.code == code and refused.value.message


def test_a_line_over_the_limit_is_refused() -> None:
    huge = json.dumps({"type": "chat", "t": 1, "text": "x" * tl.MAX_LINE_BYTES})
    with pytest.raises(tl.TimelineError) as refused:
        tl.decode(huge)
    assert refused.value.code == "bad_line"


@pytest.mark.parametrize(
    "lines",
    [
        [tl.encode(EVENTS[0])],  # no header
        [tl.encode(HEADER), tl.encode(EVENTS[0]), tl.encode(HEADER)],  # a second header
        [],
    ],
)
def test_a_timeline_has_one_header_and_it_comes_first(lines: list[str]) -> None:
    with pytest.raises(tl.TimelineError) as refused:
        tl.decode_timeline("".join(line + "\n" for line in lines))
    assert refused.value.code == "bad_order"


def test_nothing_invalid_can_be_built_either() -> None:
    bad: list[tuple[Any, ...]] = [
        (tl.Pointer, 1.0, 0.5, None),
        (tl.Qc, 1.0, "", "raised"),
        (tl.Leave, 1.0, "p1", "janitor"),
        (tl.Header, "c", 1.0, 1279, 720, 30.0, 1, -1),
    ]
    for cls, *arguments in bad:
        with pytest.raises(tl.TimelineError):
            cls(*arguments)
