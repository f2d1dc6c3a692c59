"""The QC dashboard's numbers (QC.md §4): one row per recorded session, and one series per metric over time.

Each session's values: the means of its trainers' reviews (each OSAUS and image-quality item averaged over the
reviews), its stored QC record (:mod:`.session_qc`: completeness, link quality, automatic image items) and the
session score made from them with today's weights (:func:`training.reviews.session_score`, shown 0–100 here). A
session nobody reviewed still has its completeness and link quality, and a score from those; one not scored yet
has no QC (``qc_source`` "none") until the scorer stores its record.

Everything comes from stored rows in a fixed number of queries (recordings, reviews, people, QC records), however
many sessions there are: no timeline is read here.
The page groups the series by sonographer or by site; a manager looks at a chart, not a table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.api.representations import iso
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Consultation, Recording, Site, TrainerReview, User
from signaling_server.quality import session_qc
from signaling_server.session_recordings.state import RecordingState
from signaling_server.training import reviews

MAX_SESSIONS = 500
METRICS: tuple[tuple[str, str, tuple[float, float] | None], ...] = (
    ("score", "Session score (%)", (0, 100)),
    ("completeness", "Exam completeness (%)", (0, 100)),
    ("osaus", "OSAUS mean", (1, 5)),
    *((f"image_quality.{k}", label, (1.0, 5.0)) for k, label in (*reviews.IMAGE_QUALITY_ITEMS, reviews.OVERALL)),
    ("link.value", "Link quality (%)", (0, 100)),
    ("link.loss_pct", "Packet loss (%)", None),
    ("link.rtt_p95_ms", "Round-trip time p95 (ms)", None),
    ("link.freeze_ratio", "Frozen time (%)", None),
)


@dataclass(frozen=True)
class Filters:
    site: str = ""
    sonographer: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None  # exclusive


def parse_time(value: str, name: str, *, end: bool = False) -> dt.datetime | None:
    """A date (YYYY-MM-DD: the whole day, so an end date is inclusive) or an ISO date-time with its zone."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.UTC)
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidRequest(f"'{name}' must be a date YYYY-MM-DD or an ISO date-time") from None
    if at.tzinfo is None:
        raise errors.InvalidRequest(f"'{name}' needs its time zone (Z or ±hh:mm)")
    return at.astimezone(dt.UTC)


def parse_filters(query: Mapping[str, str]) -> Filters:
    start = parse_time(query.get("from", ""), "from")
    end = parse_time(query.get("to", ""), "to", end=True)
    if start and end and end <= start:
        raise errors.InvalidRequest("'to' must be after 'from'")
    return Filters(query.get("site", "")[:64].strip(), query.get("sonographer", "")[:64].strip(), start, end)


def _mean_items(found: Sequence[Any], group: str, keys: Sequence[str]) -> dict[str, float | None]:
    """Each item's mean over the session's reviews (None for an item nobody rated)."""
    return {k: reviews.mean([getattr(r, group).get(k) for r in found]) for k in keys}


# what a session row needs, read as plain columns (no ORM objects: 500 sessions at a time)
SESSION_COLUMNS = (
    Recording.id, Recording.consultation_id, Recording.started_at, Recording.sonographer_id, Consultation.exam_type,
    Site.id.label("site_id"), Site.code.label("site_code"), Site.name.label("site_name"),
)  # fmt: skip
REVIEW_COLUMNS = (TrainerReview.recording_id, TrainerReview.osaus, TrainerReview.image_quality)


def session_row(
    session: Any,
    sonographer: Any,
    found: Sequence[Any],
    qc: session_qc.SessionQc,
    weights: Mapping[str, float] = reviews.WEIGHTS,
) -> dict[str, Any]:
    """One session's values from its SESSION_COLUMNS, its sonographer (id, name), its reviews (REVIEW_COLUMNS)."""
    osaus = _mean_items(found, "osaus", [k for k, _ in reviews.OSAUS_ITEMS]) if found else {}
    items = _mean_items(found, "image_quality", [k for k, _ in (*reviews.IMAGE_QUALITY_ITEMS, reviews.OVERALL)])
    rated = all(v is not None for v in osaus.values())
    score = reviews.session_score(
        qc, {k: v for k, v in osaus.items() if v is not None} if rated else None, items, weights
    )
    return {
        "recording_id": session.id,
        "consultation_id": session.consultation_id,
        "started_at": iso(session.started_at),
        "exam_type": session.exam_type,
        "site": {"id": session.site_id, "code": session.site_code, "name": session.site_name},
        "sonographer": {"id": sonographer.id, "name": sonographer.name} if sonographer else None,
        "reviews": len(found),
        "score": score["total"],
        "image_source": score["image_source"],
        "parts": {k: None if p is None else p["value"] for k, p in score["parts"].items()},
        "osaus": _round(reviews.osaus_mean(osaus)),
        "image_quality": {k: _round(v) for k, v in items.items()},
        "completeness": qc.completeness.value if qc.completeness else None,
        "link": qc.link.to_dict() if qc.link else None,
        "qc_source": qc.source,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def metric_value(row: Mapping[str, Any], key: str) -> float | None:
    """One metric of a session row on its chart's scale (shares as %)."""
    link = row["link"] or {}
    value: Any
    if key == "score":
        value = None if row["score"] is None else 100 * row["score"]
    elif key == "completeness":
        value = None if row["completeness"] is None else 100 * row["completeness"]
    elif key == "osaus":
        value = row["osaus"]
    elif key.startswith("image_quality."):
        value = row["image_quality"].get(key.split(".", 1)[1])
    elif key in ("link.value", "link.freeze_ratio"):
        raw = link.get(key.split(".", 1)[1])
        value = None if raw is None else 100 * raw
    else:
        value = link.get(key.split(".", 1)[1])
    return None if value is None else round(float(value), 2)


def series(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for key, _, _ in METRICS:
        out[key] = [
            {
                "recording_id": row["recording_id"],
                "at": row["started_at"],
                "site_id": row["site"]["id"],
                "sonographer_id": row["sonographer"]["id"] if row["sonographer"] else None,
                "value": value,
            }
            for row in rows
            if (value := metric_value(row, key)) is not None
        ]
    return out


async def dashboard(
    db: AsyncSession, caller: Caller, filters: Filters, weights: Mapping[str, float] = reviews.WEIGHTS
) -> dict[str, Any]:
    caller.require_user()
    query = (
        select(*SESSION_COLUMNS)
        .join(Consultation, Consultation.id == Recording.consultation_id)
        .join(Site, Site.id == Recording.site_id)
        .where(Recording.state != RecordingState.FAILED)
    )
    query = query.where(policy.recording_clause(await policy.scope_of(db, caller)))  # as the recordings themselves
    if filters.site:
        query = query.where((Site.id == filters.site) | (Site.code == filters.site))
    if filters.sonographer:
        query = query.where(Recording.sonographer_id == filters.sonographer)
    if filters.start:
        query = query.where(Recording.started_at >= filters.start)
    if filters.end:
        query = query.where(Recording.started_at < filters.end)
    newest_query = query.order_by(Recording.started_at.desc()).limit(MAX_SESSIONS)
    newest = (await db.execute(newest_query)).all()
    found = list(reversed(newest))  # the newest MAX_SESSIONS, oldest first
    # the other queries name these sessions by the same query, not by 500 bound ids
    chosen = newest_query.subquery()
    by_recording: dict[str, list[Any]] = {}
    if found:
        reviews_query = select(*REVIEW_COLUMNS).where(TrainerReview.recording_id.in_(select(chosen.c.id)))
        for review in (await db.execute(reviews_query)).all():
            by_recording.setdefault(review.recording_id, []).append(review)
    wanted = {session.sonographer_id for session in found if session.sonographer_id}
    people = {u.id: u for u in (await db.execute(select(User.id, User.name).where(User.id.in_(wanted)))).all()}
    exams = {session.consultation_id: session.exam_type for session in found}
    qcs = await session_qc.load_many(db, exams, select(chosen.c.consultation_id))
    rows = [
        session_row(session, people.get(session.sonographer_id or ""), by_recording.get(session.id, []),
                    qcs[session.consultation_id], weights)
        for session in found
    ]  # fmt: skip
    sonographers = {r["sonographer"]["id"]: r["sonographer"] for r in rows if r["sonographer"]}
    sites = {r["site"]["id"]: r["site"] for r in rows}
    return {
        "filters": {
            "site": filters.site or None,
            "sonographer": filters.sonographer or None,
            "from": iso(filters.start),
            "to": iso(filters.end),
        },
        "weights": dict(weights),
        "metrics": [{"key": k, "label": label, "range": list(r) if r else None} for k, label, r in METRICS],
        "sessions": rows,
        "series": series(rows),
        "sonographers": sorted(sonographers.values(), key=lambda s: s["name"]),
        "sites": sorted(sites.values(), key=lambda s: s["name"]),
        "truncated": len(found) == MAX_SESSIONS,
    }
