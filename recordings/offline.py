"""A session's QC report from files: a video, a DICOM image or cine, or a recording folder.

A recording folder holds ``media.mp4`` and ``timeline.jsonl`` (then ``media.1.mp4`` and ``timeline.1.jsonl`` for
a second segment, and so on; recordings/session.py). Each timeline is read by the one reader
(:func:`recordings.session.read_timeline`: event lines that do not decode are left out and counted); the report
takes from them the exam checklist, link quality, the link's freezes and the live QC alerts
(:func:`recordings.qc_record.from_timelines`), and from the video the image items, frozen-image runs, no-contact
and dark stretches.

Every time in the report is on the session clock: segment k starts at the offset the segment rule gives
(:func:`recordings.session.segment_offsets`, from the timeline headers, as the review page plays it). Only a folder
with a segment that has no timeline falls back to placing each segment where the previous one's video ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qc.completeness import exam_of
from qc.frame import summarise
from qc.offline import MediaReport, OfflineConfig, Progress, analyse
from qc.score import DEFAULT_WEIGHTS, image_items, session_score
from recordings import qc_record
from recordings import timeline as tl
from recordings.media import open_media
from recordings.session import SegmentFiles, read_timeline, recording_segments, segment_offsets


@dataclass(frozen=True)
class ScoreOptions:
    exam: str | None = None  # thyroid | carotid; else guessed from the captures' structures
    depth_mm: float | None = None  # when the file carries no calibration
    target_gcnr: float | None = None  # target visibility, when a reader measured it
    osaus: Mapping[str, float] | None = None  # the trainer's seven ratings
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    fast_decode: bool = False  # skip H.264 deblocking (recordings.media)
    all_frames: bool = False  # decode non-reference frames too (recordings.media)


def _offset(report: MediaReport, offset: float) -> dict[str, Any]:
    data = report.to_dict()
    for key in ("freezes", "no_contact", "dark"):
        for item in data[key]:
            item["start"] = round(item["start"] + offset, 3)
            item["end"] = round(item["end"] + offset, 3)
    return data


def _timelines(segments: list[SegmentFiles]) -> tuple[list[tl.Timeline | None], int]:
    """Each segment's timeline (None when it has none, or none with a header) and the lines left out."""
    found: list[tl.Timeline | None] = []
    skipped = 0
    for segment in segments:
        timeline = None
        if segment.timeline is not None:
            try:
                timeline = read_timeline(segment.timeline)
            except tl.TimelineError:
                skipped += sum(1 for line in segment.timeline.read_bytes().splitlines() if line.strip())
        found.append(timeline)
        skipped += timeline.skipped if timeline else 0
    return found, skipped


def score_path(
    path: str | Path, options: ScoreOptions = ScoreOptions(), progress: Progress | None = None
) -> dict[str, Any]:
    """The report's JSON (see recordings.cli for its shape). Raises MediaError for what cannot be read."""
    p = Path(path)
    segments = recording_segments(p) if p.is_dir() else [SegmentFiles(p, None)]
    timelines, skipped = _timelines(segments)
    present = [t for t in timelines if t is not None]
    headed = len(present) == len(segments)
    offsets = segment_offsets(present) if headed else []
    reports: list[dict[str, Any]] = []
    imaging = []
    for index, segment in enumerate(segments):
        media = open_media(segment.media, options.fast_decode, options.all_frames)

        def report_progress(done: float, index: int = index) -> None:
            if progress is not None:
                progress((index + done) / len(segments))

        report = analyse(media, options.offline, report_progress)
        if not headed:  # no header to place it by: where the previous segment's video ends
            offsets.append(0.0 if index == 0 else offsets[-1] + (reports[-1]["duration_s"] or 0.0))
        reports.append(_offset(report, offsets[index]))
        imaging += report.imaging(options.offline)
    placed = [(t, offset) for t, offset in zip(timelines, offsets, strict=True) if t is not None]
    labelled = qc_record.captures(t for t, _ in placed)
    exam = options.exam or exam_of(labelled)
    found = qc_record.from_timelines(exam, [t for t, _ in placed], [offset for _, offset in placed])
    medians = {k: v["median"] for k, v in summarise(imaging).items() if "median" in v}
    depth = options.depth_mm if options.depth_mm is not None else reports[0]["depth_mm"]
    items = image_items(medians, exam, depth, options.target_gcnr) if medians else {}
    medians = {k: round(v, 4) for k, v in medians.items()}
    record = qc_record.SessionQc(
        source="offline",
        completeness=found.completeness,
        image=items or None,
        link=found.link,
        alerts=found.alerts,
        freezes=found.freezes,
        frozen_image=tuple((r["start"], r["end"]) for m in reports for r in m["freezes"]),
        no_contact=tuple((r["start"], r["end"]) for m in reports for r in m["no_contact"]),
        dark=tuple((r["start"], r["end"]) for m in reports for r in m["dark"]),
        segments=tuple(round(offset, 3) for offset in offsets),
    )
    score = session_score(record.completeness, items, record.link, options.osaus, options.weights)
    return {
        "path": str(p),
        "kind": "recording" if p.is_dir() else reports[0]["kind"],
        "exam": exam,
        "segments": list(record.segments),
        "media": reports,
        "freezes": [run for r in reports for run in r["freezes"]],
        "no_contact": [s for r in reports for s in r["no_contact"]],
        "dark": [s for r in reports for s in r["dark"]],
        "live_alerts": [
            {"t": round(e.t + offset, 3), "code": e.code, "state": e.state, "text": e.text}
            for t, offset in placed
            for e in t.events
            if isinstance(e, tl.Qc)
        ],
        "timeline_lines_skipped": skipped,
        "completeness": None if record.completeness is None else record.completeness.to_dict(),
        "link": None if record.link is None else record.link.to_dict(),
        "image": items,
        "image_medians": medians,
        "score": score,
        "record": qc_record.record_metrics(record, medians, score.get("total"), depth),
    }


def row_metrics(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as a ``qc_results`` row's metrics: the session's QC record (recordings/qc_record.py)."""
    return dict(report["record"])
