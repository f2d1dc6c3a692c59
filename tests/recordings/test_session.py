"""recordings.session: the segment rule (the review page's session clock) and the one timeline reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings import timeline as tl
from recordings.session import read_timeline, segment_offsets


def line(segment: int, started_ms: float, *times: float) -> tl.Timeline:
    return tl.Timeline(tl.Header("c1", started_ms, 320, 240, 30.0, segment=segment), tuple(tl.Clear(t) for t in times))


def test_each_segment_starts_at_its_headers_offset_never_before_the_previous_ones_last_event() -> None:
    assert segment_offsets([line(0, 1_000_000.0, 1.0, 2.0)]) == [0.0]
    assert segment_offsets([line(0, 1_000_000.0, 3.0), line(1, 1_012_500.0, 0.5)]) == [0.0, 12.5]  # the headers
    # the first segment's events run past the second header (a clock set back between two runs of the edge)
    assert segment_offsets([line(0, 1_000_000.0, 4.0), line(1, 999_000.0, 1.0)]) == [0.0, 4.0]
    assert segment_offsets([line(0, 1_000_000.0), line(1, 1_002_000.0, 9.0), line(2, 1_005_000.0)]) == [
        0.0, 2.0, 11.0]  # fmt: skip


def test_the_reader_leaves_out_what_does_not_decode_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    good = [tl.Header("c1", 1.79e12, 320, 240, 30.0), tl.Qc(1.0, "frozen", "raised"), tl.Clear(2.0)]
    lines = [tl.encode(good[0]), tl.encode(good[1]), "{not json", '{"type": "warp", "t": 1}', tl.encode(good[2])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    timeline = read_timeline(path)
    assert [type(e) for e in timeline.events] == [tl.Qc, tl.Clear] and timeline.skipped == 2
    with pytest.raises(tl.TimelineError) as refused:
        read_timeline(path, skip_bad=False)
    assert refused.value.code == "bad_line"
    path.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")  # no header: no timeline, even leniently
    with pytest.raises(tl.TimelineError):
        read_timeline(path)
