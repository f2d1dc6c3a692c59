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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recordings import qc_record
from recordings import timeline as tl
from recordings.qc_record import NO_QC, SessionQc
from recordings.session import read_timeline
from recordings.store import RecordingStore, parse_name
from signaling_server.db.models import QcResult, Recording, RecordingFile

log = logging.getLogger(__name__)

FAILED_KIND = "offline_failed"  # a row that carries only why the video could not be scored

__all__ = ["NO_QC", "SessionQc", "load", "load_many"]


# what the dashboard shows of a record: the database hands over only these parts (no alerts or moments)
DASHBOARD_PARTS = ("version", "completeness", "image", "frames", "depth_mm", "link")


async def _rows(
    db: AsyncSession, consultation_ids: Sequence[str], parts: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Each consultation's QC rows' metrics (only `parts` of them when given), oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not consultation_ids:
        return found
    columns = [QcResult.metrics[part] for part in parts] if parts else [QcResult.metrics]
    query = (
        select(QcResult.consultation_id, *columns)
        .where(QcResult.consultation_id.in_(consultation_ids), QcResult.kind != FAILED_KIND)
        .order_by(QcResult.created_at, QcResult.id)
    )
    for consultation_id, *values in (await db.execute(query)).all():
        metrics = dict(zip(parts, values, strict=True)) if parts else values[0]
        if isinstance(metrics, dict):
            found.setdefault(consultation_id, []).append(metrics)
    return found


async def load_many(db: AsyncSession, sessions: Sequence[tuple[str, str]]) -> dict[str, SessionQc]:
    """The stored QC of each (consultation id, exam type) as the dashboard shows it (completeness, image items,
    link quality; not the moments), in one query; NO_QC where none is stored."""
    rows = await _rows(db, [consultation_id for consultation_id, _ in sessions], DASHBOARD_PARTS)
    return {cid: qc_record.combine(exam, rows.get(cid, [])) for cid, exam in sessions}


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
