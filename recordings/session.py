"""A recorded session: its segment files in order, their timelines, and the one session clock they play on.

A recording is one or more segments (``media.mp4`` + ``timeline.jsonl``, then ``media.1.mp4`` + ``timeline.1.jsonl``…;
RECORDINGS.md §2). Every time in a segment is on its own media clock (seconds since its first frame). The session
clock puts the segments one after the other by **the segment rule** (RECORDINGS.md §2, *The session clock*), the
one rule of the offline scorer, the server's session QC and the review page (expert_console/replay.js
``sessionClock`` mirrors :func:`segment_offsets` line for line).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from recordings import timeline as tl
from recordings.media import MediaError

MAX_SEGMENTS = 10_000


def segment_offsets(timelines: Sequence[tl.Timeline]) -> list[float]:
    """Where each segment (in segment order) starts on the session clock, in seconds: 0 for the first; for a later
    one its header's wall clock minus the first one's, but never before the previous segment's last event (a clock
    set back between two runs of the edge)."""
    offsets: list[float] = []
    previous_end = 0.0
    for k, timeline in enumerate(timelines):
        start = (timeline.header.started_at_ms - timelines[0].header.started_at_ms) / 1000
        offset = 0.0 if k == 0 else max(previous_end, start)
        offsets.append(offset)
        previous_end = max([offset, *(e.t + offset for e in timeline.events)])
    return offsets


def read_timeline(path: Path, *, skip_bad: bool = True) -> tl.Timeline:
    """The one reader of a timeline file (:func:`recordings.timeline.decode_timeline`); by default an event line
    that does not decode is left out and counted (``skipped``). Raises TimelineError for a file without a header."""
    return tl.decode_timeline(path.read_bytes(), skip_bad=skip_bad)


class SegmentFiles(NamedTuple):
    media: Path
    timeline: Path | None


def recording_segments(folder: Path) -> list[SegmentFiles]:
    """The segments of a recording folder, in order (a folder without ``media.mp4``: its first MP4 alone)."""
    segments = []
    for k in range(MAX_SEGMENTS):
        suffix = "" if k == 0 else f".{k}"
        media = folder / f"media{suffix}.mp4"
        if not media.is_file():
            break
        timeline = folder / f"timeline{suffix}.jsonl"
        segments.append(SegmentFiles(media, timeline if timeline.is_file() else None))
    if not segments:
        videos = sorted(folder.glob("*.mp4"))
        if not videos:
            raise MediaError("no_video", f"{folder} holds no media.mp4")
        timeline = folder / "timeline.jsonl"
        segments = [SegmentFiles(videos[0], timeline if timeline.is_file() else None)]
    return segments
