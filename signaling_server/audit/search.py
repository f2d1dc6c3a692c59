"""Finding rows of the audit trail: the filters of the admin page and of its CSV export, as one query.

    user      the actor's id or username (or a device's id or name, a DICOM peer's AE title)
    patient   the regional patient id          study    the study id (or its Study Instance UID)
    site      the actor's site id              kind     the kind of object (study, report, recording…)
    action    read, search, join, print, export, write, store, send, associate
    result    ok, error (anything but ok), or one stable code (forbidden, not_found…)
    from, to  ISO 8601 times, both included (a date alone: from the start of that day, UTC, to its end)
    before    paging: rows older than this seq (the answer's `next`)
    limit     rows per page, 1 to 500 (100)

Newest first. A filter that does not parse is refused with `invalid_request` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.audit.chain import FIELDS, stamp
from signaling_server.db.models import AuditEvent, Study

DEFAULT_LIMIT, MAX_LIMIT = 100, 500
_TEXT_FILTERS = ("user", "patient", "study", "site", "kind", "action", "result")


@dataclass(frozen=True)
class Filters:
    user: str = ""
    patient: str = ""
    study: str = ""
    site: str = ""
    kind: str = ""
    action: str = ""
    result: str = ""
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    before: int | None = None
    limit: int = DEFAULT_LIMIT


def parse_filters(query: Mapping[str, str]) -> Filters:
    texts = {name: query.get(name, "").strip()[:200] for name in _TEXT_FILTERS}
    return Filters(
        **texts,
        start=_time(query.get("from", ""), "from", end=False),
        end=_time(query.get("to", ""), "to", end=True),
        before=_number(query.get("before", ""), "before", 1, 2**63 - 1),
        limit=_number(query.get("limit", ""), "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
    )


def _number(raw: str, field: str, low: int, high: int) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise errors.InvalidField(field, f"a whole number from {low} to {high}")
    return int(raw)


def _time(raw: str, field: str, *, end: bool) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=UTC)
        found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidField(field, "an ISO 8601 date (2026-01-31) or time (2026-01-31T08:00:00Z)") from None
    found = (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)
    return found + timedelta(microseconds=1) if end else found  # `end` is exclusive: `to` itself is included


async def statement(db: AsyncSession, f: Filters) -> Select[AuditEvent]:
    """The rows matching `f`, newest first (no paging: `page` and the CSV export add theirs)."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if f.user:
        query = query.where(or_(AuditEvent.actor_id == f.user, AuditEvent.actor_name == f.user))
    if f.patient:
        query = query.where(AuditEvent.patient_id == f.patient)
    if f.study:
        by_uid = await db.scalar(select(Study.id).where(Study.study_uid == f.study))
        query = query.where(AuditEvent.study_id == (by_uid or f.study))
    if f.site:
        query = query.where(AuditEvent.site_id == f.site)
    if f.kind:
        query = query.where(AuditEvent.object_kind == f.kind)
    if f.action:
        query = query.where(AuditEvent.action == f.action)
    if f.result == "error":
        query = query.where(AuditEvent.outcome != "ok")
    elif f.result:
        query = query.where(AuditEvent.outcome == f.result)
    if f.start is not None:
        query = query.where(AuditEvent.at >= f.start)
    if f.end is not None:
        query = query.where(AuditEvent.at < f.end)
    return query


async def page(db: AsyncSession, f: Filters) -> tuple[list[AuditEvent], int | None]:
    """One page of rows, and the `before` of the next page (None: this was the last)."""
    query = await statement(db, f)
    if f.before is not None:
        query = query.where(AuditEvent.seq < f.before)
    rows = list((await db.scalars(query.limit(f.limit + 1))).all())
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (rows[-1].seq if more else None)


def event_json(row: AuditEvent) -> dict[str, Any]:
    plain = {name: getattr(row, name) for name in FIELDS}
    plain["at"] = stamp(row.at)
    plain["row_hash"] = row.row_hash
    return plain
