"""Linking two regional identities into one, and splitting a link back (unlink).

A link keeps the linked identity's row (`Patient.merged_into_id` points at the kept one) and records in its
`PatientLink` which identifiers and studies moved, so that `unlink` moves them back: the recorded ones, and any
study that arrived since under one of the moved site identifiers. Its state machine::

    linked ──unlink──▶ unlinked (final)

Every link and unlink writes a `PatientEvent` on both identities and a `StudyEvent` on each moved study.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Patient, PatientEvent, PatientIdentifier, PatientLink, Study, StudyEvent
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    LINKED = "linked"
    UNLINKED = "unlinked"


MACHINE = Machine(
    "patient link", {LinkState.LINKED: {LinkState.UNLINKED}}, final={LinkState.UNLINKED}, idempotent=False,
    context="patient", log=log,
)  # fmt: skip


def record(db: AsyncSession, patient_id: str, kind: str, by: str | None, at: datetime, **detail: object) -> None:
    db.add(PatientEvent(patient_id=patient_id, at=at, kind=kind, user_id=by, detail=detail))


async def shared_keys(db: AsyncSession, patient_id: str) -> set[str]:
    query = select(PatientIdentifier.local_id).where(PatientIdentifier.patient_id == patient_id)
    return {k for k in await db.scalars(query) if "\\" in k}


async def link_patients(
    db: AsyncSession, keep_id: str, other_id: str, *, by_user_id: str | None, reason: str, now: datetime
) -> PatientLink:
    """Link identity `other_id` into `keep_id`: identifiers and studies move, and the move is recorded.

    Refused when both carry different shared regional IDs (then they are two people). Does not commit.
    """
    if keep_id == other_id:
        raise errors.InvalidRequest("an identity cannot be linked to itself")
    keep, other = await db.get(Patient, keep_id), await db.get(Patient, other_id)
    if keep is None or other is None or keep.merged_into_id or other.merged_into_id:
        raise errors.NotFound("no such patient")
    keep_keys, other_keys = await shared_keys(db, keep_id), await shared_keys(db, other_id)
    if keep_keys and other_keys and keep_keys.isdisjoint(other_keys):
        raise errors.Conflict("these identities carry different regional IDs: they are different people")
    identifiers = list(await db.scalars(select(PatientIdentifier.id).where(PatientIdentifier.patient_id == other_id)))
    studies = list(await db.scalars(select(Study.id).where(Study.patient_id == other_id)))
    link = PatientLink(
        kept_id=keep_id, merged_id=other_id, reason=reason, by_user_id=by_user_id, at=now, state=LinkState.LINKED,
        moved={"identifiers": identifiers, "studies": studies},
    )  # fmt: skip
    db.add(link)
    await db.flush()
    await db.execute(update(PatientIdentifier).where(PatientIdentifier.id.in_(identifiers)).values(patient_id=keep_id))
    await db.execute(update(Study).where(Study.id.in_(studies)).values(patient_id=keep_id))
    other.merged_into_id = keep_id
    detail = {"from": other_id, "into": keep_id, "reason": reason, "link": link.id}
    for study_id in studies:
        db.add(StudyEvent(study_id=study_id, at=now, kind="patient_linked", user_id=by_user_id, detail=detail))
    for patient_id in (keep_id, other_id):
        record(db, patient_id, "linked", by_user_id, now, **detail)
    await db.flush()
    log.info("patient %s linked into %s (%s, by %s, %d studies)", other_id, keep_id, reason, by_user_id, len(studies))
    return link


async def unlink(db: AsyncSession, link_id: str, *, by_user_id: str, now: datetime) -> PatientLink:
    """Split a link back: the moved identifiers, and their studies, return to the linked identity. Does not commit."""
    link = await db.get(PatientLink, link_id)
    if link is None:
        raise errors.NotFound("no such link")
    try:
        link.state = move(
            MACHINE, LinkState(link.state), LinkState.UNLINKED, entity_id=link.id, context_id=link.kept_id
        )
    except IllegalMove as exc:
        raise errors.InvalidTransition(exc.message) from None
    merged = await db.get(Patient, link.merged_id)
    assert merged is not None
    if merged.merged_into_id != link.kept_id:
        raise errors.Conflict("the kept identity was itself linked or split since: unlink that first")
    identifiers = [int(i) for i in link.moved.get("identifiers", [])]
    rows = list(await db.scalars(select(PatientIdentifier).where(PatientIdentifier.id.in_(identifiers))))
    pairs = [and_(Study.site_id == r.site_id, Study.local_patient_id == r.local_id) for r in rows]
    back = or_(Study.id.in_(link.moved.get("studies", [])), *pairs)
    studies = list(await db.scalars(select(Study.id).where(Study.patient_id == link.kept_id, back)))
    await db.execute(
        update(PatientIdentifier)
        .where(PatientIdentifier.id.in_(identifiers), PatientIdentifier.patient_id == link.kept_id)
        .values(patient_id=link.merged_id)
    )
    await db.execute(update(Study).where(Study.id.in_(studies)).values(patient_id=link.merged_id))
    merged.merged_into_id = None
    link.unlinked_by_id, link.unlinked_at = by_user_id, now
    detail = {"from": link.kept_id, "into": link.merged_id, "link": link.id}
    for study_id in studies:
        db.add(StudyEvent(study_id=study_id, at=now, kind="patient_unlinked", user_id=by_user_id, detail=detail))
    for patient_id in (link.kept_id, link.merged_id):
        record(db, patient_id, "unlinked", by_user_id, now, **detail)
    await db.flush()
    log.info("patient %s split from %s (link %s, by %s, %d studies)", link.merged_id, link.kept_id, link.id,
             by_user_id, len(studies))  # fmt: skip
    return link
