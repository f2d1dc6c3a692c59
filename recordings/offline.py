"""A session's QC report from files: a video, a DICOM image or cine, or a recording folder.

A recording folder holds ``media.mp4`` and ``timeline.jsonl`` (then ``media.1.mp4`` and ``timeline.1.jsonl`` for
a second segment, and so on; recordings/store.py). The timeline is read leniently, as JSON lines of objects with
``t`` (seconds on the segment's media clock) and ``type``; what this report uses:

    header    ``fps``: the source's frame rate (drop % when the link samples have no dropped-frame counts)
    capture   ``id`` and ``labels``: the exam checklist (qc.completeness)
    link      ``viewers``: [{peer, fps, rtt_ms, loss…}], or the sample's own fields (qc.link.LinkSample.from_dict)
    join      ``peer`` and ``role``: when some peer is an expert, only the experts' links count
    qc        ``code``, ``state``, ``text``: the alerts the edge raised live, passed through

Lines that are not JSON objects are skipped and counted. Segment times are offset by the durations of the
segments before them, so every time in the report is on one session clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qc.completeness import PROTOCOLS, completeness, exam_of
from qc.frame import summarise
from qc.link import LinkSample, link_summary
from qc.offline import MediaReport, OfflineConfig, Progress, analyse
from qc.score import DEFAULT_WEIGHTS, image_items, session_score
from recordings.media import MediaError, open_media


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


def read_timeline(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(events, lines skipped) of a JSON-lines timeline."""
    events: list[dict[str, Any]] = []
    skipped = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            skipped += 1
    return events, skipped


def recording_segments(folder: Path) -> list[tuple[Path, Path | None]]:
    """(video, timeline or None) per segment, in order."""
    segments = []
    for k in range(10000):
        suffix = "" if k == 0 else f".{k}"
        media = folder / f"media{suffix}.mp4"
        if not media.is_file():
            break
        timeline = folder / f"timeline{suffix}.jsonl"
        segments.append((media, timeline if timeline.is_file() else None))
    if not segments:
        videos = sorted(folder.glob("*.mp4"))
        if not videos:
            raise MediaError("no_video", f"{folder} holds no media.mp4")
        timeline = folder / "timeline.jsonl"
        segments = [(videos[0], timeline if timeline.is_file() else None)]
    return segments


def _time(event: Mapping[str, Any], offset: float) -> float:
    t = event.get("t")
    return offset + (float(t) if isinstance(t, int | float) and not isinstance(t, bool) else 0.0)


def _link_samples(events: list[tuple[float, dict[str, Any]]]) -> list[LinkSample]:
    experts = {str(e.get("peer")) for _, e in events if e.get("type") == "join" and e.get("role") == "expert"}
    samples = []
    for t, e in events:
        if e.get("type") != "link":
            continue
        viewers = e.get("viewers")
        if isinstance(viewers, list):
            samples += [LinkSample.from_dict(v, t=t) for v in viewers if isinstance(v, dict)]
        else:
            samples.append(LinkSample.from_dict(e, t=t, stream=str(e.get("peer", e.get("stream", "")))))
    if experts and any(s.stream in experts for s in samples):
        samples = [s for s in samples if s.stream in experts]
    return samples


def _offset(report: MediaReport, offset: float) -> dict[str, Any]:
    data = report.to_dict()
    for key in ("freezes", "no_contact", "dark"):
        for item in data[key]:
            item["start"] = round(item["start"] + offset, 3)
            item["end"] = round(item["end"] + offset, 3)
    return data


def score_path(
    path: str | Path, options: ScoreOptions = ScoreOptions(), progress: Progress | None = None
) -> dict[str, Any]:
    """The report's JSON (see recordings.cli for its shape). Raises MediaError for what cannot be read."""
    p = Path(path)
    segments = recording_segments(p) if p.is_dir() else [(p, None)]
    reports: list[dict[str, Any]] = []
    events: list[tuple[float, dict[str, Any]]] = []
    imaging = []
    skipped = 0
    offset = 0.0
    for index, (media_path, timeline_path) in enumerate(segments):
        media = open_media(media_path, options.fast_decode, options.all_frames)

        def report_progress(done: float, index: int = index) -> None:
            if progress is not None:
                progress((index + done) / len(segments))

        report = analyse(media, options.offline, report_progress)
        if timeline_path is not None:
            lines, bad = read_timeline(timeline_path)
            skipped += bad
            events += [(_time(e, offset), e) for e in lines]
        reports.append(_offset(report, offset))
        imaging += report.imaging(options.offline)
        offset += report.duration_s or 0.0
    captures = [
        {"id": e.get("id", f"capture-{i}"), "labels": e.get("labels") or {}}
        for i, (_, e) in enumerate(events)
        if e.get("type") == "capture"
    ]
    exam = options.exam or exam_of(captures)
    has_timeline = any(timeline is not None for _, timeline in segments)
    checklist = completeness(exam, captures) if exam in PROTOCOLS and (has_timeline or captures) else None
    nominal = next((float(e["fps"]) for _, e in events if e.get("type") == "header" and e.get("fps")), None)
    link = link_summary(_link_samples(events), nominal)
    medians = {k: v["median"] for k, v in summarise(imaging).items() if "median" in v}
    depth = options.depth_mm if options.depth_mm is not None else reports[0]["depth_mm"]
    items = image_items(medians, exam, depth, options.target_gcnr) if medians else {}
    medians = {k: round(v, 4) for k, v in medians.items()}
    return {
        "path": str(p),
        "kind": "recording" if p.is_dir() else reports[0]["kind"],
        "exam": exam,
        "media": reports,
        "freezes": [run for r in reports for run in r["freezes"]],
        "no_contact": [s for r in reports for s in r["no_contact"]],
        "dark": [s for r in reports for s in r["dark"]],
        "live_alerts": [
            {"t": round(t, 3), "code": e.get("code"), "state": e.get("state"), "text": e.get("text", "")}
            for t, e in events
            if e.get("type") == "qc"
        ],
        "timeline_lines_skipped": skipped,
        "completeness": None if checklist is None else checklist.to_dict(),
        "link": None if link is None else link.to_dict(),
        "image": items,
        "image_medians": medians,
        "score": session_score(checklist, items, link, options.osaus, options.weights),
    }


def row_metrics(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as a ``qc_results`` row's metrics, the shape the server's session_qc.py reads: ``completeness``
    and ``link`` as they are, ``image`` the five items (each ``{"score", …}`` or None), ``frames`` the metric
    medians (``{name: {"median": m}}``), ``score`` the session total, and the moments found in the video
    (``freezes``, ``no_contact``, ``dark``: seconds on the recording's clock)."""
    medians = report.get("image_medians") or {}
    return {
        "completeness": report.get("completeness"),
        "link": report.get("link"),
        "image": report.get("image") or {},
        "frames": {k: {"median": v} for k, v in medians.items()},
        "score": (report.get("score") or {}).get("total"),
        "freezes": report.get("freezes", []),
        "no_contact": report.get("no_contact", []),
        "dark": report.get("dark", []),
    }
