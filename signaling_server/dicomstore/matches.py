"""Possible matches: two identities that may be one person, for a regional registrar to decide.

Made as objects arrive (`identity.py`): the shared regional ID with other demographics (`regional_id`), or the
same normalised name, birth date and sex (`look_alike`). The registrar confirms one (the two are linked, see
`links.py`) or rejects it (the two are kept apart for good: never linked automatically, never proposed again);
unlinking a link rejects its pair the same way. Its state machine::

    open ──confirm──▶ confirmed ──unlink──▶ rejected (final)
      └────reject──────────────────────────▲

Each decision writes a `PatientEvent` on both identities (who, when, which match).
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Patient, PatientLink, PatientMatch
from signaling_server.dicomstore import links
from signaling_server.dicomstore.parsing import normalised_name
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)

MAX_LOOK_ALIKES = 20


class MatchState(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


MACHINE = Machine(
    "possible match",
    {MatchState.OPEN: {MatchState.CONFIRMED, MatchState.REJECTED}, MatchState.CONFIRMED: {MatchState.REJECTED}},
    final={MatchState.REJECTED},
    idempotent=False,
    context="patient",
    log=log,
)


def _transition(match: PatientMatch, new: MatchState, by: str | None, at: datetime, db: AsyncSession) -> None:
    def trail(old: MatchState, to: MatchState) -> None:
        for patient_id in (match.patient_id, match.candidate_id):
            links.record(db, patient_id, f"match_{to}", by, at, match=match.id, **{"from": old})

    try:
        match.state = move(
            MACHINE, MatchState(match.state), new, entity_id=match.id, context_id=match.patient_id, on_event=trail
        )
    except IllegalMove as exc:
        raise errors.InvalidTransition(exc.message) from None
    match.decided_by_id, match.decided_at = by, at


async def pair(db: AsyncSession, one: str, two: str) -> PatientMatch | None:
    either = or_(
        and_(PatientMatch.patient_id == one, PatientMatch.candidate_id == two),
        and_(PatientMatch.patient_id == two, PatientMatch.candidate_id == one),
    )
    return await db.scalar(select(PatientMatch).where(either).limit(1))


async def kept_apart(db: AsyncSession, one: str, two: str) -> bool:
    found = await pair(db, one, two)
    return found is not None and found.state == MatchState.REJECTED


async def propose(
    db: AsyncSession, patient_id: str, candidate_id: str, reason: str, detail: dict[str, Any], at: datetime
) -> PatientMatch | None:
    """A new open match (None when the pair was proposed or decided before). Does not commit."""
    if patient_id == candidate_id or await pair(db, patient_id, candidate_id) is not None:
        return None
    match = PatientMatch(
        patient_id=patient_id, candidate_id=candidate_id, reason=reason, detail=detail, state=MatchState.OPEN,
        created_at=at,
    )  # fmt: skip
    db.add(match)
    await db.flush()
    for one in (patient_id, candidate_id):
        links.record(db, one, "possible_match", None, at, match=match.id, reason=reason)
    log.info("patient %s: possible match with %s (%s)", patient_id, candidate_id, reason)
    return match


async def propose_look_alikes(db: AsyncSession, patient_id: str, at: datetime) -> None:
    """Propose every live identity with the same normalised name, birth date and sex (birth date known)."""
    patient = await db.get(Patient, patient_id)
    if patient is None or not patient.birth_date or not normalised_name(patient.name):
        return
    query = select(Patient).where(
        Patient.birth_date == patient.birth_date,
        Patient.sex == patient.sex,
        Patient.merged_into_id.is_(None),
        Patient.id != patient.id,
    )
    name = normalised_name(patient.name)
    found = [
        p for p in await db.scalars(query.order_by(Patient.created_at).limit(500)) if normalised_name(p.name) == name
    ]
    for other in found[:MAX_LOOK_ALIKES]:
        await propose(db, patient.id, other.id, "look_alike", {}, at)


async def _current(db: AsyncSession, patient_id: str) -> str:
    """The identity a (possibly linked) identity lives on in now."""
    for _ in range(32):
        patient = await db.get(Patient, patient_id)
        if patient is None or patient.merged_into_id is None:
            return patient_id
        patient_id = patient.merged_into_id
    return patient_id


async def confirm(db: AsyncSession, match_id: str, *, by: str, at: datetime) -> PatientLink:
    """The registrar confirms: the two identities are linked (the proposed one into its candidate)."""
    match = await _get(db, match_id)
    _transition(match, MatchState.CONFIRMED, by, at, db)  # refused first when it was decided before
    kept, merged = await _current(db, match.candidate_id), await _current(db, match.patient_id)
    if kept == merged:
        raise errors.Conflict("these two are one identity already")
    link = await links.link_patients(db, kept, merged, by_user_id=by, reason="registrar", now=at)
    match.link_id = link.id
    return link


async def reject(db: AsyncSession, match_id: str, *, by: str, at: datetime) -> PatientMatch:
    """The registrar rejects: the two are different people, kept apart for good."""
    match = await _get(db, match_id)
    _transition(match, MatchState.REJECTED, by, at, db)
    return match


async def unlink(db: AsyncSession, link_id: str, *, by: str, at: datetime) -> PatientLink:
    """Split a link back and keep the pair apart from now on."""
    link = await links.unlink(db, link_id, by_user_id=by, now=at)
    match = await pair(db, link.kept_id, link.merged_id)
    if match is None:
        match = PatientMatch(
            patient_id=link.merged_id, candidate_id=link.kept_id, reason="unlinked", detail={"link": link.id},
            state=MatchState.CONFIRMED, created_at=at, link_id=link.id,
        )  # fmt: skip
        db.add(match)
        await db.flush()
    _transition(match, MatchState.REJECTED, by, at, db)
    return link


async def _get(db: AsyncSession, match_id: str) -> PatientMatch:
    match = await db.get(PatientMatch, match_id)
    if match is None:
        raise errors.NotFound("no such possible match")
    return match


async def listing(db: AsyncSession, state: str | None) -> list[PatientMatch]:
    query = select(PatientMatch).order_by(PatientMatch.created_at).limit(500)
    if state:
        query = query.where(PatientMatch.state == state)
    return list(await db.scalars(query))
