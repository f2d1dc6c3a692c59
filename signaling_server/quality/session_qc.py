"""The QC of one recorded session, as the review page, the session score and the dashboard see it.

The numbers are the ``qc`` package's (QC.md §2–§3); this module only finds their inputs. Each part comes from the best
source the server has:

- the consultation's ``qc_results`` rows (the qc package's results: the edge's live summary, an offline scoring of
  the recording), newest last, when they carry the part: ``completeness`` (a :class:`qc.completeness.Completeness`
  dict), ``image`` (the five automatic items of :func:`qc.score.image_items`, or the per-frame medians it takes,
  ``frames``), ``link`` (a :class:`qc.link.LinkSummary` dict);
- otherwise the recording's timelines: completeness from the labels of the ``capture`` events
  (:func:`qc.completeness.completeness` against the exam's protocol), link quality from the per-second ``link``
  events (:func:`qc.link.link_summary`, over the expert's pages when the timeline says who they are).

The alerts (the timeline's ``qc`` events) and the freezes (the link's) always come from the timelines: they are
moments of the video, in seconds on the session clock (:func:`segment_offsets`: the review page plays the segments
one after the other on that clock, expert_console/replay.js ``sessionClock`` follows the same rule).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qc import completeness as qc_completeness
from qc import link as qc_link
from qc import score as qc_score
from qc.completeness import ChecklistEntry, Completeness
from qc.link import LinkSample, LinkSummary
from recordings import timeline as tl
from recordings.store import RecordingStore, parse_name
from signaling_server.db.models import QcResult, Recording, RecordingFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    code: str
    text: str
    raised_at: float
    cleared_at: float | None


@dataclass(frozen=True)
class SessionQc:
    source: str  # "qc_results" (some part came from them) | "timeline" | "none"
    completeness: Completeness | None
    image: dict[str, dict[str, Any] | None] | None  # the automatic image items (qc.score.image_items)
    link: LinkSummary | None
    alerts: tuple[Alert, ...] = ()
    freezes: tuple[tuple[float, float], ...] = ()  # seconds on the session clock
    # where the last segment starts on the session clock (0 for one segment): review comments are pinned to it
    last_segment_offset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "completeness": self.completeness.to_dict() if self.completeness else None,
            "image": self.image,
            "link": self.link.to_dict() if self.link else None,
            "alerts": [
                {"code": a.code, "text": a.text, "raised_at": a.raised_at, "cleared_at": a.cleared_at}
                for a in self.alerts
            ],
            "freezes": [{"start": start, "end": end} for start, end in self.freezes],
        }


NO_QC = SessionQc("none", None, None, None)


# ---- from a timeline ------------------------------------------------------------------------------------------


def link_samples(timeline: tl.Timeline) -> list[LinkSample]:
    """One sample per second and page: the expert's pages when the timeline names them, else every page."""
    experts = {e.peer for e in timeline.events if isinstance(e, tl.Join) and e.role == "expert"}
    samples = [
        LinkSample(t=e.t, stream=v.peer, fps=v.fps, loss_pct=None if v.loss is None else 100 * v.loss, rtt_ms=v.rtt_ms)
        for e in timeline.events
        if isinstance(e, tl.Link)
        for v in e.viewers
    ]
    mine = [s for s in samples if s.stream in experts]
    return mine or samples


def freezes(samples: Sequence[LinkSample]) -> tuple[tuple[float, float], ...]:
    """The frozen (or paused) spans of any page, in seconds, touching spans merged."""
    streams: dict[str, list[LinkSample]] = {}
    for s in samples:
        streams.setdefault(s.stream, []).append(s)
    spans = sorted(
        (start / 1000, end / 1000)
        for stream in streams.values()
        for start, end in qc_link.detect_freezes(qc_link.frame_times(stream)).freezes
    )
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple((round(a, 3), round(b, 3)) for a, b in merged)


def alerts(events: Iterable[tl.Event]) -> tuple[Alert, ...]:
    """Each raised QC alert with the time it was cleared (None while it stayed raised)."""
    found: list[Alert] = []
    open_: dict[str, int] = {}
    for e in events:
        if not isinstance(e, tl.Qc):
            continue
        if e.state == "raised" and e.code not in open_:
            open_[e.code] = len(found)
            found.append(Alert(e.code, e.text, e.t, None))
        elif e.state == "cleared" and e.code in open_:
            index = open_.pop(e.code)
            raised = found[index]
            found[index] = Alert(raised.code, raised.text, raised.raised_at, e.t)
    return tuple(found)


def completeness(exam_type: str, captures: Iterable[Mapping[str, Any]]) -> Completeness | None:
    """The exam protocol's checklist against the captures; None for an exam without a protocol."""
    if exam_type not in qc_completeness.PROTOCOLS:
        return None
    return qc_completeness.completeness(exam_type, captures)


def segment_offsets(timelines: Sequence[tl.Timeline]) -> list[float]:
    """Where each segment (in segment order) starts on the session clock: its header's wall clock minus the first
    one's, but never before the previous segment's last event (a clock set back between two runs of the edge)."""
    offsets: list[float] = []
    previous_end = 0.0
    for k, timeline in enumerate(timelines):
        start = (timeline.header.started_at_ms - timelines[0].header.started_at_ms) / 1000
        offset = 0.0 if k == 0 else max(previous_end, start)
        offsets.append(offset)
        previous_end = max([offset, *(e.t + offset for e in timeline.events)])
    return offsets


def _shifted(found: Iterable[Alert], offset: float) -> list[Alert]:
    return [
        Alert(
            a.code,
            a.text,
            round(a.raised_at + offset, 3),
            None if a.cleared_at is None else round(a.cleared_at + offset, 3),
        )
        for a in found
    ]


def from_timelines(exam_type: str, timelines: Sequence[tl.Timeline]) -> SessionQc:
    if not timelines:
        return NO_QC
    ordered = sorted(timelines, key=lambda t: t.header.segment)
    offsets = segment_offsets(ordered)
    samples: list[LinkSample] = []
    captures: list[dict[str, Any]] = []
    found_alerts: list[Alert] = []
    found_freezes: list[tuple[float, float]] = []
    for timeline, offset in zip(ordered, offsets, strict=True):
        own = link_samples(timeline)
        samples += own
        captures += [{"id": e.id, "labels": e.labels} for e in timeline.events if isinstance(e, tl.Capture)]
        found_alerts += _shifted(alerts(timeline.events), offset)
        found_freezes += [(round(a + offset, 3), round(b + offset, 3)) for a, b in freezes(own)]
    return SessionQc(
        source="timeline",
        completeness=completeness(exam_type, captures),
        image=None,
        link=qc_link.link_summary(samples, nominal_fps=ordered[0].header.fps),
        alerts=tuple(found_alerts),
        freezes=tuple(found_freezes),
        last_segment_offset=offsets[-1],
    )


# ---- from the qc package's rows -----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _completeness_of(raw: Any, exam_type: str) -> Completeness | None:
    if isinstance(raw, dict) and (value := _number(raw.get("value"))) is not None:
        items = tuple(
            ChecklistEntry(
                str(i.get("key", "")),
                str(i.get("label", i.get("key", ""))),
                bool(i.get("required", True)),
                _number(i.get("weight")) or 1.0,
                bool(i.get("done")),
                i.get("capture"),
            )
            for i in raw.get("items", [])
            if isinstance(i, dict)
        )
        return Completeness(str(raw.get("protocol", exam_type)), value, items)
    value = _number(raw)
    return None if value is None else Completeness(exam_type, value, ())


def _image_of(metrics: Mapping[str, Any], exam_type: str) -> dict[str, dict[str, Any] | None] | None:
    image = metrics.get("image")
    if isinstance(image, dict) and any(
        isinstance(v, dict) and _number(v.get("score")) is not None for v in image.values()
    ):
        return {str(k): v if isinstance(v, dict) else None for k, v in image.items()}
    frames = metrics.get("frames")
    if isinstance(frames, dict):
        medians = {
            k: m for k, v in frames.items() if isinstance(v, dict) and (m := _number(v.get("median"))) is not None
        }
        if medians:
            return qc_score.image_items(medians, exam_type, depth_mm=_number(metrics.get("depth_mm")))
    return None


def _link_of(raw: Any) -> LinkSummary | None:
    """A :meth:`qc.link.LinkSummary.to_dict` read back (missing counts are 0, missing measures None)."""
    if not isinstance(raw, dict) or "seconds" not in raw:
        return None

    def count(key: str) -> int:
        return int(_number(raw.get(key)) or 0)

    def seconds(key: str) -> float:
        return _number(raw.get(key)) or 0.0

    return LinkSummary(
        seconds=count("seconds"),
        streams=count("streams"),
        loss_pct=_number(raw.get("loss_pct")),
        jitter_ms=_number(raw.get("jitter_ms")),
        rtt_p95_ms=_number(raw.get("rtt_p95_ms")),
        fps=_number(raw.get("fps")),
        drops=count("drops"),
        drop_pct=_number(raw.get("drop_pct")),
        freeze_count=count("freeze_count"),
        freeze_s=seconds("freeze_s"),
        pause_count=count("pause_count"),
        pause_s=seconds("pause_s"),
        freeze_ratio=_number(raw.get("freeze_ratio")),
        value=_number(raw.get("value")),
    )


def combine(exam_type: str, rows: Sequence[QcResult], timelines: Sequence[tl.Timeline]) -> SessionQc:
    """The newest row's value of each part where the rows have it, the timeline's for the rest."""
    found = from_timelines(exam_type, timelines)
    part_completeness: Completeness | None = None
    image: dict[str, dict[str, Any] | None] | None = None
    link: LinkSummary | None = None
    for row in rows:
        metrics = row.metrics if isinstance(row.metrics, dict) else {}
        part_completeness = _completeness_of(metrics.get("completeness"), exam_type) or part_completeness
        image = _image_of(metrics, exam_type) or image
        link = _link_of(metrics.get("link")) or link
    if part_completeness is None and image is None and link is None:
        return found
    return SessionQc(
        source="qc_results",
        completeness=part_completeness or found.completeness,
        image=image,
        link=link or found.link,
        alerts=found.alerts,
        freezes=found.freezes,
        last_segment_offset=found.last_segment_offset,
    )


def _read_timelines(store: RecordingStore, recording_id: str, names: list[str]) -> list[tl.Timeline]:
    found = []
    for name in names:
        path = store.path(recording_id, name)
        if not path.exists():
            continue
        try:
            found.append(tl.decode_timeline(path.read_bytes()))
        except tl.TimelineError as exc:
            log.warning("recording %s: %s is not a valid timeline (%s)", recording_id, name, exc.message)
    return found


async def load(db: AsyncSession, store: RecordingStore, recording: Recording, exam_type: str) -> SessionQc:
    """The session's QC from its qc_results rows and its timeline files (every segment, in order)."""
    rows = (
        await db.scalars(
            select(QcResult)
            .where(QcResult.consultation_id == recording.consultation_id)
            .order_by(QcResult.created_at, QcResult.id)
        )
    ).all()
    files = (await db.scalars(select(RecordingFile).where(RecordingFile.recording_id == recording.id))).all()
    segments = sorted(
        (parsed[1], f.name)
        for f in files
        if f.received > 0 and (parsed := parse_name(f.name)) and parsed[0] == "timeline"
    )
    timelines = await asyncio.to_thread(_read_timelines, store, recording.id, [name for _, name in segments])
    return combine(exam_type, rows, timelines)
