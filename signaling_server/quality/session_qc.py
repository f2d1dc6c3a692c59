"""The QC of recorded sessions as the review page, the session score and the dashboard read it: the stored record.

The offline scorer (:mod:`.scorer`) stores one record per session, a ``qc_results`` row of kind ``offline``
(:mod:`recordings.qc_record`: completeness, image items, link quality, alerts, freezes, no-contact and dark
stretches, all on the session clock of :func:`recordings.session.segment_offsets`). This module only reads it:

- :func:`load_many` for the dashboard: one query for every session asked (only the parts it shows), never a file;
- :func:`load` for one recording (its review page, a saved review): the record; until there is one (scoring off,
  not done yet, or the video could not be scored) the same parts from its timelines, by the same code and clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from qc.completeness import Completeness
from recordings import qc_record
from recordings import timeline as tl
from recordings.qc_record import NO_QC, SessionQc
from recordings.session import read_timeline
from recordings.store import RecordingStore, parse_name
from signaling_server.db.models import QcResult, Recording, RecordingFile

log = logging.getLogger(__name__)

FAILED_KIND = "offline_failed"  # a row that carries only why the video could not be scored

__all__ = ["NO_QC", "SessionQc", "load", "load_many"]


async def _rows(db: AsyncSession, consultation_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each consultation's QC rows' metrics, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not consultation_ids:
        return found
    query = (
        select(QcResult.consultation_id, QcResult.metrics)
        .where(QcResult.consultation_id.in_(consultation_ids), QcResult.kind != FAILED_KIND)
        .order_by(QcResult.created_at, QcResult.id)
    )
    for consultation_id, metrics in (await db.execute(query)).all():
        if isinstance(metrics, dict):
            found.setdefault(consultation_id, []).append(metrics)
    return found


def _summary(exam_type: str, metrics: Mapping[str, Any]) -> SessionQc:
    """What the dashboard shows of a stored record: the completeness value, the image items' scores and the link
    summary (not the checklist, the alerts or the moments, which it does not show)."""
    raw = metrics.get("completeness")
    value = raw.get("value") if isinstance(raw, dict) else None
    scores = {str(k): v.get("score") if isinstance(v, dict) else None for k, v in (metrics.get("image") or {}).items()}
    image = {k: {"score": float(v)} if isinstance(v, int | float) else None for k, v in scores.items()}
    return SessionQc(
        source="qc_results",
        completeness=Completeness(exam_type, float(value), ()) if isinstance(value, int | float) else None,
        image=image if any(v is not None for v in image.values()) else None,
        link=qc_record.link_of(metrics.get("link")),
    )


async def load_many(
    db: AsyncSession, exams: Mapping[str, str], among: Select[tuple[str]] | None = None
) -> dict[str, SessionQc]:
    """The stored QC of each consultation (id → exam type) as the dashboard shows it (completeness, image items,
    link quality; no checklist, no moments), in one query; NO_QC where nothing is stored. `among` selects the same
    consultation ids in SQL (the dashboard's own query) instead of binding each id."""
    found: dict[str, list[dict[str, Any]]] = {}
    if exams:
        query = (
            select(QcResult.consultation_id, QcResult.metrics)  # whole: a JSON path per part re-parses the text
            .where(QcResult.consultation_id.in_(among if among is not None else list(exams)))
            .where(QcResult.kind != FAILED_KIND)
            .order_by(QcResult.created_at, QcResult.id)
        )
        for cid, metrics in (await db.execute(query)).all():
            if cid in exams and isinstance(metrics, dict):
                found.setdefault(cid, []).append(metrics)
    answer = {}
    for cid, exam in exams.items():
        rows = found.get(cid, [])
        newest = next((m for m in reversed(rows) if qc_record.is_record(m)), None)
        answer[cid] = _summary(exam, newest) if newest is not None else qc_record.combine(exam, rows)
    return answer


def _read_timelines(store: RecordingStore, recording_id: str, names: list[str]) -> list[tl.Timeline]:
    found = []
    for name in names:
        path = store.path(recording_id, name)
        if not path.exists():
            continue
        try:
            found.append(read_timeline(path, skip_bad=False))
        except tl.TimelineError as exc:
            log.warning("recording %s: %s is not a valid timeline (%s)", recording_id, name, exc.message)
    return found


async def _from_timelines(db: AsyncSession, store: RecordingStore, recording: Recording, exam: str) -> SessionQc:
    files = (await db.scalars(select(RecordingFile).where(RecordingFile.recording_id == recording.id))).all()
    segments = sorted(
        (parsed[1], f.name)
        for f in files
        if f.received > 0 and (parsed := parse_name(f.name)) and parsed[0] == "timeline"
    )
    timelines = await asyncio.to_thread(_read_timelines, store, recording.id, [name for _, name in segments])
    return qc_record.from_timelines(exam, timelines)


async def load(db: AsyncSession, store: RecordingStore, recording: Recording, exam_type: str) -> SessionQc:
    """One recording's QC: its stored record, else what its timelines give (read only when there is no record)."""
    rows = (await _rows(db, [recording.consultation_id])).get(recording.consultation_id, [])
    if any(qc_record.is_record(metrics) for metrics in rows):
        return qc_record.combine(exam_type, rows)
    return qc_record.combine(exam_type, rows, await _from_timelines(db, store, recording, exam_type))
