"""edge_capture.recording.events: what the edge sees, as timeline events (pure)."""

from __future__ import annotations

import pytest

from edge_capture import datachannel as dc
from edge_capture.recording import events
from recordings import timeline as tl
from signaling_server.signaling import messages as m

EXPERT = m.Peer("p1", "expert", "Dr Li", "u1", None)
SONO = m.Peer("p2", "sonographer", "Wang", "u2", None)
EDGE = m.Peer("p0", "edge", "north-us-1", None, "d1")


def test_relayed_guidance_becomes_marks_clears_and_pointers() -> None:
    mark = dc.Mark("m1", "circle", ((0.5, 0.5), (0.6, 0.5)), "#00ff00", from_="p1", at=1.0)
    assert events.from_guidance(mark) == tl.Mark(0, "m1", "circle", ((0.5, 0.5), (0.6, 0.5)), "#00ff00", "p1")
    assert events.from_guidance(dc.Clear(from_="p2")) == tl.Clear(0, "p2")
    assert events.from_guidance(dc.Pointer(0.25, 0.75, from_="p1")) == tl.Pointer(0, 0.25, 0.75, True, "p1")
    assert events.from_guidance(dc.Pointer(visible=False, from_="p1")) == tl.Pointer(0, None, None, False, "p1")


def test_pointers_are_thinned_to_30_a_second_per_sender_but_hiding_always_counts() -> None:
    thinner = events.PointerThinner(30)
    at = dc.Pointer(0.5, 0.5, from_="p1")
    kept = [thinner.keep(at, i / 120) for i in range(120)]  # a page sending at 120 Hz for a second
    assert 24 <= sum(kept) <= 30 and thinner.dropped == 120 - sum(kept)
    assert thinner.keep(dc.Pointer(0.5, 0.5, from_="p2"), 0.999)  # another sender has its own budget
    assert thinner.keep(dc.Pointer(visible=False, from_="p1"), 1.0)  # hidden: kept however soon
    assert thinner.keep(dc.Pointer(0.1, 0.1, from_="p1"), 1.001)  # and shown again


def test_the_room_turns_signaling_into_joins_leaves_chat_and_state() -> None:
    room = events.Room()
    assert room.present([EDGE, EXPERT]) == [tl.Join(0, "p1", "expert", "Dr Li")]  # the edge itself is not news
    assert room.from_signal(m.PeerJoined(SONO)) == [tl.Join(0, "p2", "sonographer", "Wang")]
    assert room.from_signal(m.PeerJoined(SONO)) == []
    chat = m.ChatLine(3, "u2", "Wang", "sonographer", "ready", "x")
    assert room.from_signal(chat) == [tl.Chat(0, "ready", "Wang", "sonographer", "u2")]
    assert room.from_signal(m.PeerLeft("p1")) == [tl.Leave(0, "p1", "expert", "Dr Li")]
    assert room.from_signal(m.PeerLeft("p1")) == []
    assert room.from_signal(m.StateChanged({"id": "c1", "state": "ended"})) == [tl.State(0, "ended")]
    assert room.from_signal(m.RelayedOffer("p2", "v=0")) == []
    # The edge reconnected: its welcome says who is there now; what changed meanwhile is recorded.
    welcome = m.Welcome(EDGE, (EXPERT,), {"id": "c1", "state": "live"})
    assert room.from_signal(welcome) == [tl.Leave(0, "p2", "sonographer", "Wang"), tl.Join(0, "p1", "expert", "Dr Li")]


def test_captures_qc_alerts_and_link_samples() -> None:
    capture = events.from_capture("c1", "clip", {"side": "R"}, "1.2.3", 45)
    assert capture == tl.Capture(0, "c1", "1.2.3", "clip", 45, {"side": "R"})
    assert events.from_qc({"code": "blur", "text": "Picture is blurred", "state": "raised"}) == tl.Qc(
        0, "blur", "raised", "Picture is blurred"
    )
    assert events.from_qc({"code": "blur", "message": "ok again", "active": False}).state == "cleared"
    with pytest.raises(tl.TimelineError):
        events.from_qc({"text": "no code"})
    with pytest.raises(tl.TimelineError):
        events.from_qc({"code": "blur", "state": "worse"})
    link = events.viewer_link("p1", 30, 1.0, 750_000, 0.012, 0.02)
    assert link == tl.ViewerLink("p1", 30.0, 6000.0, 12.0, 0.02)
    assert events.viewer_link("p1", 15, 0.5, None, None, None) == tl.ViewerLink("p1", 30.0)
    # An RTT that cannot be (aiortc's, from a receiver report, can come out negative) is unknown: the sample stays.
    assert events.viewer_link("p1", 30, 1.0, None, -0.004, None).rtt_ms is None
