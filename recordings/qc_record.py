"""The QC record of one recorded session: what the offline scorer stores once, and what every reader shows.

Every moment in it is in seconds on the session clock (:func:`recordings.session.segment_offsets`, the review page's
rule), so a freeze or a no-contact stretch lands on the review page's timeline bar where the video shows it.

- from the timelines: the exam's checklist (:func:`qc.completeness.completeness` over the ``capture`` labels),
  link quality (:func:`qc.link.link_summary` over the per-second ``link`` events, the expert's pages when the
  timeline names them), the link's freezes and pauses, and the live QC alerts (raised, cleared);
- from the video (the scorer only): the five automatic image items and the metric medians they come from, the
  frozen-image runs, the no-contact and the dark stretches.

The stored shape (a ``qc_results`` row of kind ``offline``, ``metrics``; RECORDINGS.md §6) is
:func:`record_metrics`; :func:`from_record` reads it back. Rows written before the record existed (no
``version``) still give their parts (:func:`combine`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qc import completeness as qc_completeness
from qc import link as qc_link
from qc import score as qc_score
from qc.completeness import ChecklistEntry, Completeness
from qc.link import LinkSample, LinkSummary
from recordings import timeline as tl
from recordings.session import segment_offsets

RECORD_VERSION = 2
Span = tuple[float, float]
ImageItems = dict[str, dict[str, Any] | None]


@dataclass(frozen=True)
class Alert:
    code: str
    text: str
    raised_at: float
    cleared_at: float | None


@dataclass(frozen=True)
class SessionQc:
    source: str  # "qc_results" (the stored record, or some part from older rows) | "timeline" | "none"
    completeness: Completeness | None
    image: ImageItems | None  # the automatic image items (qc.score.image_items)
    link: LinkSummary | None
    alerts: tuple[Alert, ...] = ()
    freezes: tuple[Span, ...] = ()  # the link's freezes and pauses (QC.md §3)
    frozen_image: tuple[Span, ...] = ()  # frozen-image runs found in the video (QC.md §1)
    no_contact: tuple[Span, ...] = ()
    dark: tuple[Span, ...] = ()
    segments: tuple[float, ...] = (0.0,)  # where each segment starts on the session clock

    @property
    def last_segment_offset(self) -> float:
        """Where the last segment starts (review comments are pinned to the session clock)."""
        return self.segments[-1] if self.segments else 0.0

    def to_dict(self) -> dict[str, Any]:
        def spans(found: Iterable[Span]) -> list[dict[str, float]]:
            return [{"start": start, "end": end} for start, end in found]

        return {
            "source": self.source,
            "completeness": self.completeness.to_dict() if self.completeness else None,
            "image": self.image,
            "link": self.link.to_dict() if self.link else None,
            "alerts": [
                {"code": a.code, "text": a.text, "raised_at": a.raised_at, "cleared_at": a.cleared_at}
                for a in self.alerts
            ],
            "freezes": spans(self.freezes),
            "frozen_image": spans(self.frozen_image),
            "no_contact": spans(self.no_contact),
            "dark": spans(self.dark),
            "segments": list(self.segments),
        }


NO_QC = SessionQc("none", None, None, None)


# ---- from the timelines ---------------------------------------------------------------------------------------


def link_samples(timelines: Sequence[tl.Timeline], offsets: Sequence[float]) -> list[list[LinkSample]]:
    """Per segment, one sample per second and page on the session clock: the expert's pages when the timelines
    name them (a join in any segment), else every page."""
    experts = {e.peer for line in timelines for e in line.events if isinstance(e, tl.Join) and e.role == "expert"}
    per_segment = [
        [
            LinkSample(t=round(e.t + offset, 3), stream=v.peer, fps=v.fps,
                       loss_pct=None if v.loss is None else 100 * v.loss, rtt_ms=v.rtt_ms)
            for e in line.events
            if isinstance(e, tl.Link)
            for v in e.viewers
        ]
        for line, offset in zip(timelines, offsets, strict=True)
    ]  # fmt: skip
    if any(s.stream in experts for samples in per_segment for s in samples):
        return [[s for s in samples if s.stream in experts] for samples in per_segment]
    return per_segment


def freezes(samples: Sequence[LinkSample]) -> tuple[Span, ...]:
    """The frozen (or paused) spans of any page, in seconds, touching spans merged."""
    streams: dict[str, list[LinkSample]] = {}
    for s in samples:
        streams.setdefault(s.stream, []).append(s)
    spans = sorted(
        (start / 1000, end / 1000)
        for stream in streams.values()
        for start, end in qc_link.detect_freezes(qc_link.frame_times(stream)).freezes
    )
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple((round(a, 3), round(b, 3)) for a, b in merged)


def alerts(events: Iterable[tl.Event], offset: float = 0.0) -> tuple[Alert, ...]:
    """Each raised QC alert with the time it was cleared (None while it stayed raised), shifted by `offset`."""
    found: list[Alert] = []
    open_: dict[str, int] = {}
    for e in events:
        if not isinstance(e, tl.Qc):
            continue
        at = round(e.t + offset, 3)
        if e.state == "raised" and e.code not in open_:
            open_[e.code] = len(found)
            found.append(Alert(e.code, e.text, at, None))
        elif e.state == "cleared" and e.code in open_:
            index = open_.pop(e.code)
            raised = found[index]
            found[index] = Alert(raised.code, raised.text, raised.raised_at, at)
    return tuple(found)


def completeness(exam_type: str | None, captures: Iterable[Mapping[str, Any]]) -> Completeness | None:
    """The exam protocol's checklist against the captures; None for an exam without a protocol."""
    if exam_type not in qc_completeness.PROTOCOLS:
        return None
    return qc_completeness.completeness(exam_type, captures)


def captures(timelines: Iterable[tl.Timeline]) -> list[dict[str, Any]]:
    return [{"id": e.id, "labels": e.labels} for line in timelines for e in line.events if isinstance(e, tl.Capture)]


def from_timelines(
    exam_type: str | None, timelines: Sequence[tl.Timeline], offsets: Sequence[float] | None = None
) -> SessionQc:
    """The timelines' part of the record. `offsets` default to the segment rule over these timelines (given when
    the caller placed the segments otherwise: a folder with a segment that has no timeline)."""
    if not timelines:
        return NO_QC
    ordered = sorted(zip(timelines, offsets or [0.0] * len(timelines), strict=True), key=lambda p: p[0].header.segment)
    lines = [line for line, _ in ordered]
    at = segment_offsets(lines) if offsets is None else [offset for _, offset in ordered]
    per_segment = link_samples(lines, at)
    # a freeze is the link's: found within a segment, never across the gap of an edge that restarted
    found_freezes = sorted(span for samples in per_segment for span in freezes(samples))
    return SessionQc(
        source="timeline",
        completeness=completeness(exam_type, captures(lines)),
        image=None,
        link=qc_link.link_summary([s for samples in per_segment for s in samples], nominal_fps=lines[0].header.fps),
        alerts=tuple(a for line, offset in zip(lines, at, strict=True) for a in alerts(line.events, offset)),
        freezes=tuple(found_freezes),
        segments=tuple(at),
    )


# ---- the stored record ----------------------------------------------------------------------------------------


def record_metrics(
    qc: SessionQc, frames: Mapping[str, float], score: float | None, depth_mm: float | None = None
) -> dict[str, Any]:
    """The record as a ``qc_results`` row's metrics: :meth:`SessionQc.to_dict` without its source, with the
    metric medians the image items came from (``frames``: ``{name: {"median": m}}``), the session total with the
    scorer's weights (``score``) and ``version``."""
    data = qc.to_dict()
    del data["source"]
    return {
        "version": RECORD_VERSION,
        **data,
        "frames": {k: {"median": v} for k, v in frames.items()},
        "depth_mm": depth_mm,
        "score": score,
    }


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


def _image_of(metrics: Mapping[str, Any], exam_type: str) -> ImageItems | None:
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


def link_of(raw: Any) -> LinkSummary | None:
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


def _spans(raw: Any) -> tuple[Span, ...]:
    found = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            start, end = _number(item.get("start")), _number(item.get("end"))
            if start is not None and end is not None:
                found.append((start, end))
    return tuple(found)


def _alerts(raw: Any) -> tuple[Alert, ...]:
    found = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and (raised := _number(item.get("raised_at"))) is not None:
            found.append(Alert(str(item.get("code", "")), str(item.get("text", "")), raised,
                               _number(item.get("cleared_at"))))  # fmt: skip
    return tuple(found)


def is_record(metrics: Any) -> bool:
    return isinstance(metrics, dict) and metrics.get("version") == RECORD_VERSION


def from_record(metrics: Mapping[str, Any], exam_type: str) -> SessionQc:
    """A stored record (:func:`record_metrics`) read back."""
    segments = tuple(n for v in metrics.get("segments") or () if (n := _number(v)) is not None)
    return SessionQc(
        source="qc_results",
        completeness=_completeness_of(metrics.get("completeness"), exam_type),
        image=_image_of(metrics, exam_type),
        link=link_of(metrics.get("link")),
        alerts=_alerts(metrics.get("alerts")),
        freezes=_spans(metrics.get("freezes")),
        frozen_image=_spans(metrics.get("frozen_image")),
        no_contact=_spans(metrics.get("no_contact")),
        dark=_spans(metrics.get("dark")),
        segments=segments or (0.0,),
    )


def combine(exam_type: str, rows: Sequence[Mapping[str, Any]], timeline: SessionQc = NO_QC) -> SessionQc:
    """The session's QC from its rows' metrics (oldest first): the newest stored record as it is; else, for rows
    written before the record, the newest row's value of each part where the rows have it and `timeline`'s for
    the rest (the moments then come from `timeline`)."""
    for metrics in reversed(rows):
        if is_record(metrics):
            return from_record(metrics, exam_type)
    part_completeness: Completeness | None = None
    image: ImageItems | None = None
    link: LinkSummary | None = None
    for metrics in rows:
        part_completeness = _completeness_of(metrics.get("completeness"), exam_type) or part_completeness
        image = _image_of(metrics, exam_type) or image
        link = link_of(metrics.get("link")) or link
    if part_completeness is None and image is None and link is None:
        return timeline
    return SessionQc(
        source="qc_results",
        completeness=part_completeness or timeline.completeness,
        image=image,
        link=link or timeline.link,
        alerts=timeline.alerts,
        freezes=timeline.freezes,
        segments=timeline.segments,
    )
