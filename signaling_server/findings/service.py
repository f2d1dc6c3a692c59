"""Critical results communication (CLINICAL.md §4, after the ACR practice parameter).

Each finding records the six documented fields: the finding, when it was found, the reporting doctor, the person
notified, when they acknowledged, and the method. A finding is open until someone at the referring centre
acknowledges it in the system; every `finding_escalation_minutes` without acknowledgement it escalates one level,
which the queue and the centre's pages show. Its states and their two moves: signaling_server/findings/state.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.api import body
from signaling_server.auth.identity import Caller
from signaling_server.db.models import CriticalFinding, Study, StudyEvent, User
from signaling_server.findings import state
from signaling_server.outbox import Claims
from signaling_server.reading import service as queue

log = logging.getLogger(__name__)

METHODS = ("in-system", "phone", "in-person")


def now() -> datetime:
    return datetime.now(UTC)


async def flag(
    db: AsyncSession, caller: Caller, study_id: str, data: dict[str, Any], escalate_after: timedelta, at: datetime
) -> CriticalFinding:
    """The reader holding the study's lock flags a critical finding; the study's site is notified."""
    user = caller.require_user(*queue.READER_ROLES)
    study = (await queue.get_visible(db, caller, study_id)).study
    queue.require_lock(study, user, at)
    finding = CriticalFinding(
        study_id=study.id,
        site_id=study.site_id,
        finding=body.text(data, "finding", max_len=2000),
        found_at=at,
        reported_by_id=user.id,
        method=body.choice(data, "method", METHODS, required=False) or "in-system",
        notified_person=body.text(data, "notified_person", max_len=200, required=False) or None,
        escalation_level=0,
        next_escalation_at=at + escalate_after,
    )
    db.add(finding)
    await db.flush()
    db.add(StudyEvent(study_id=study.id, at=at, kind="critical_finding", user_id=user.id, detail={"id": finding.id}))
    await db.commit()
    log.warning("study %s: critical finding %s flagged by %s", study.study_uid, finding.id, user.username)
    return finding


async def list_visible(db: AsyncSession, caller: Caller, *, open_only: bool) -> list[CriticalFinding]:
    """The findings on the studies the caller sees in full (signaling_server/access/policy.py)."""
    caller.require_user()
    scope = await policy.scope_of(db, caller)
    query = select(CriticalFinding).join(Study, Study.id == CriticalFinding.study_id)
    query = query.where(policy.study_clause(scope, least=Sight.FULL)).order_by(CriticalFinding.found_at.desc())
    if open_only:
        query = query.where(state.is_open())
    return list((await db.scalars(query.limit(500))).all())


async def for_study(db: AsyncSession, study_id: str) -> list[CriticalFinding]:
    query = select(CriticalFinding).where(CriticalFinding.study_id == study_id).order_by(CriticalFinding.found_at)
    return list((await db.scalars(query)).all())


async def acknowledge(
    db: AsyncSession, caller: Caller, finding_id: str, data: dict[str, Any], at: datetime
) -> CriticalFinding:
    """Someone at the referring centre (a sonographer of that site, or an admin who serves it) confirms they got it."""
    user = caller.require_user("sonographer", "admin")
    # Locked (PostgreSQL) against the escalation timer: an escalation that read the finding open must not land after
    # this acknowledgement (escalate_due); on SQLite the second writer's stale snapshot fails and is retried.
    finding = await db.get(CriticalFinding, finding_id, with_for_update=True)
    if finding is None or finding.site_id not in (await policy.scope_of(db, caller)).sites:
        raise errors.NotFound("no such critical finding")
    state.acknowledge(finding, user.id, at, db.add)
    person = body.text(data, "notified_person", max_len=200, required=False)
    finding.notified_person = person or finding.notified_person or user.name
    await db.commit()
    return finding


# The escalation timer of every server takes the due findings by the outbox's claim rule, in the transaction that
# escalates them: the claim moves `next_escalation_at` to where the escalation puts it, so two servers never raise
# one finding twice, and a server that dies mid-way rolls its claim back with the rest (taken again at once).
DUE = Claims(CriticalFinding, CriticalFinding.next_escalation_at, pending=(state.is_open(),))


async def escalate_due(db: AsyncSession, escalate_after: timedelta, at: datetime) -> list[CriticalFinding]:
    """Raise the level of every unacknowledged finding whose escalation time has passed; returns them. The claim locks
    the rows it takes (PostgreSQL, SKIP LOCKED): a finding being acknowledged at this moment is skipped, and one this
    escalates is acknowledged only after the escalation has committed."""
    claimed = await DUE.take(db, at, at + escalate_after, limit=None, where=(DUE.claimed_until.is_not(None),))
    if not claimed:
        await db.rollback()
        return []
    query = (
        select(CriticalFinding)
        .where(CriticalFinding.id.in_(claimed))
        .order_by(CriticalFinding.found_at)
        .execution_options(populate_existing=True)
    )
    due = list((await db.scalars(query)).all())
    for finding in due:
        state.escalate(finding, at, escalate_after, db.add)
    await db.commit()
    return due


async def names(db: AsyncSession, finding: CriticalFinding) -> tuple[str, str | None, str]:
    """Reporting doctor, acknowledging user, and the study's accession, for the representation."""
    reporter = await db.get(User, finding.reported_by_id)
    acknowledger = await db.get(User, finding.acknowledged_by_id) if finding.acknowledged_by_id else None
    study = await db.get(Study, finding.study_id)
    return (
        reporter.name if reporter else "?",
        acknowledger.name if acknowledger else None,
        study.accession if study else "",
    )
