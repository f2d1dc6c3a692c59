"""recordings.qc_record: the session's QC record from timelines on the session clock, stored and read back."""

from __future__ import annotations

from typing import Any

from recordings import qc_record
from recordings import timeline as tl


def viewer(t: float, fps: float, peer: str = "p-expert") -> tl.Link:
    return tl.Link(t, (tl.ViewerLink(peer, fps, 1500.0, 50.0, 0.0),))


def segment(k: int, started_ms: float, events: list[tl.Event]) -> tl.Timeline:
    return tl.Timeline(tl.Header("c1", started_ms, 320, 240, 30.0, segment=k), tuple(events))


def two_segments() -> list[tl.Timeline]:
    first = [tl.Join(0.0, "p-expert", "expert"), tl.Join(0.0, "p-sono", "sonographer"),
             tl.Qc(1.0, "frozen", "raised", "image frozen"), tl.Qc(2.0, "frozen", "cleared"),
             *(viewer(float(t), 5.0 if t == 2 else 30.0) for t in (1, 2, 3)), viewer(1.0, 1.0, "p-sono")]
    second = [tl.Qc(0.5, "no_contact", "raised", "no contact"), *(viewer(float(t), 30.0) for t in (1, 2, 3))]
    return [segment(0, 1_000_000.0, first), segment(1, 1_010_000.0, second)]  # fmt: skip


def test_the_timelines_part_on_the_session_clock() -> None:
    qc = qc_record.from_timelines("thyroid", list(reversed(two_segments())))  # any order in: segment order out
    assert qc.segments == (0.0, 10.0) and qc.last_segment_offset == 10.0
    alerts = [(a.code, a.raised_at, a.cleared_at) for a in qc.alerts]
    assert alerts == [("frozen", 1.0, 2.0), ("no_contact", 10.5, None)]
    [(start, end)] = qc.freezes  # the link's, within the first segment: the gap before the second is no freeze
    assert 1.0 <= start < end <= 2.0
    assert qc.link is not None and qc.link.streams == 1 and qc.link.seconds == 6  # the expert's page, both segments
    assert qc.completeness is not None and qc.completeness.value == 0
    assert qc_record.from_timelines("abdomen", two_segments()).completeness is None  # no protocol


def test_a_stored_record_reads_back_as_it_was() -> None:
    found = qc_record.from_timelines("thyroid", two_segments())
    image: dict[str, Any] = {"gain": {"score": 4.0}, "tgc": None}
    stored = qc_record.SessionQc("offline", found.completeness, image, found.link, found.alerts, found.freezes,
                                 ((2.0, 4.0),), ((15.0, 16.5),), (), found.segments)  # fmt: skip
    metrics = qc_record.record_metrics(stored, {"saturation": 0.01}, 0.7, 40.0)
    assert qc_record.is_record(metrics) and metrics["frames"] == {"saturation": {"median": 0.01}}
    back = qc_record.from_record(metrics, "thyroid")
    assert back.source == "qc_results" and back.to_dict() == {**stored.to_dict(), "source": "qc_results"}


def test_the_newest_record_wins_and_older_rows_give_their_parts() -> None:
    timeline = qc_record.from_timelines("thyroid", two_segments())
    older = {"completeness": 0.9, "frames": {"saturation": {"median": 0.001}}}
    partial = qc_record.combine("thyroid", [older], timeline)
    assert partial.source == "qc_results" and partial.completeness is not None and partial.completeness.value == 0.9
    assert partial.image is not None and partial.alerts == timeline.alerts  # moments from the timeline
    record = qc_record.record_metrics(timeline, {}, None)
    assert qc_record.combine("thyroid", [record, older], timeline).completeness == timeline.completeness
    assert qc_record.combine("thyroid", [], timeline) is timeline
    assert qc_record.combine("thyroid", []) is qc_record.NO_QC
