"""Regional patient identity: each site's own patient ID maps to one `Patient`, the region's person.

Linking across sites must be safe: two people with a common name and the same birth date are not rare, and a
typing error in a shared ID is not rare either. The rules, applied to every arriving object:

- the same (site, PatientID) as before → the same identity;
- the object carries the region's shared ID (PatientID whose IssuerOfPatientID is `regional_id_issuer`, or an
  OtherPatientIDsSequence item with that issuer) held by another identity → the two are linked automatically only
  when issuer, identifier, normalised name and birth date all agree; two *different* shared IDs are never linked;
- anything else that looks like the same person (the shared ID with other demographics, or the same normalised
  name, birth date and sex) becomes a *possible match* (`matches.py`) for a regional registrar to confirm or reject.

A link is recorded (`PatientLink`: what moved) and reversible (`unlink`); every link, unlink and decision leaves a
`PatientEvent` on both identities and a `StudyEvent` on each moved study. A link shows nobody anything new: who
sees which studies is decided by signaling_server/access/policy.py, from sites and grants, never from identity.

The shared ID is kept as a `PatientIdentifier` row of the site that sent it, its `local_id` being
"<issuer>\\<value>": a backslash cannot occur in a PatientID (it separates values), so it never collides with a
site's own numbers. Each identifier row keeps the demographics its site sent, which is what that site is shown.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Patient, PatientIdentifier, Study
from signaling_server.dicomstore import matches
from signaling_server.dicomstore.links import link_patients, shared_keys
from signaling_server.dicomstore.parsing import Demographics, normalised_name

log = logging.getLogger(__name__)

SEPARATOR = "\\"


def regional_key(issuer: str, value: str) -> str:
    """The `local_id` under which a shared regional ID is kept (fits the 64-character column)."""
    key = f"{issuer}{SEPARATOR}{value}"
    if len(key) <= 64:
        return key
    return SEPARATOR + hashlib.sha256(key.encode()).hexdigest()[:63]


def is_regional(local_id: str) -> bool:
    return SEPARATOR in local_id


def same_person(patient: Patient, person: Demographics) -> bool:
    """Name and birth date agree (both known): with the same shared ID, that is enough to link automatically."""
    name = normalised_name(person.name)
    return bool(name and person.birth_date) and (
        normalised_name(patient.name) == name and patient.birth_date == person.birth_date
    )


async def resolve_patient(
    db: AsyncSession,
    site_id: str,
    person: Demographics,
    *,
    issuer: str,
    now: datetime,
    study_patient_id: str | None = None,
) -> str:
    """The regional identity for an object from `site_id`, created or linked as the rules say. Does not commit.

    `study_patient_id` is the identity of the object's study when that study is known already: it is used when
    the object has no PatientID at all (an unidentified patient stays with their study, and with nobody else).
    """
    shared = person.regional_id(issuer)
    key = regional_key(issuer, shared) if shared else None
    known = await _identifier(db, site_id, person.local_id) if person.local_id else None
    if known is None and not person.local_id and study_patient_id:
        return study_patient_id
    created = None if known is not None else await _new_identity(db, site_id, person, now)
    patient_id = known.patient_id if known is not None else created
    assert patient_id is not None
    if key is not None:
        patient_id = await _shared_id(db, patient_id, site_id, key, person, now)
    if created is not None and patient_id == created:
        await matches.propose_look_alikes(db, created, now)
    await _fill_demographics(db, patient_id, person)
    await db.flush()
    return patient_id


async def _new_identity(db: AsyncSession, site_id: str, person: Demographics, now: datetime) -> str:
    patient = Patient(name=person.name, birth_date=person.birth_date, sex=person.sex, created_at=now)
    db.add(patient)
    await db.flush()
    if person.local_id:
        db.add(_row(patient.id, site_id, person.local_id, person, now))
    log.info("site %s patient %r: new regional identity %s", site_id, person.local_id, patient.id)
    return patient.id


async def _shared_id(
    db: AsyncSession, patient_id: str, site_id: str, key: str, person: Demographics, now: datetime
) -> str:
    """Place the object's shared ID: add it, link to its holder (all four agree), or propose a possible match."""
    mine = await shared_keys(db, patient_id)
    if mine and key not in mine:
        log.warning("identity %s already has another shared ID; %s from site %s kept apart", patient_id, key, site_id)
        return patient_id
    holder = await _holder_of(db, key, other_than=patient_id)
    if holder is None or key in mine:
        await _add_key(db, patient_id, site_id, key, person, now)
        return patient_id
    holding = await db.get(Patient, holder)
    assert holding is not None
    if same_person(holding, person) and not await matches.kept_apart(db, holder, patient_id):
        await _add_key(db, patient_id, site_id, key, person, now)
        await link_patients(db, holder, patient_id, by_user_id=None, reason="regional_id", now=now)
        return holder
    await matches.propose(db, patient_id, holder, "regional_id", {"site_id": site_id, "regional_id": key}, now)
    return patient_id


async def _add_key(
    db: AsyncSession, patient_id: str, site_id: str, key: str, person: Demographics, now: datetime
) -> None:
    if await _identifier(db, site_id, key) is None:
        db.add(_row(patient_id, site_id, key, person, now))
        await db.flush()


def _row(patient_id: str, site_id: str, local_id: str, person: Demographics, now: datetime) -> PatientIdentifier:
    return PatientIdentifier(
        patient_id=patient_id,
        site_id=site_id,
        local_id=local_id,
        created_at=now,
        name=person.name[:200],
        birth_date=person.birth_date,
        sex=person.sex,
    )


async def identifiers_of(db: AsyncSession, patient_ids: list[str]) -> dict[str, list[PatientIdentifier]]:
    found: dict[str, list[PatientIdentifier]] = defaultdict(list)
    if patient_ids:
        query = select(PatientIdentifier).where(PatientIdentifier.patient_id.in_(patient_ids))
        for row in await db.scalars(query.order_by(PatientIdentifier.id)):
            found[row.patient_id].append(row)
    return found


async def live_patient(db: AsyncSession, patient_id: str) -> Patient:
    """An identity that is not linked into another; NotFound otherwise."""
    patient = await db.get(Patient, patient_id)
    if patient is None or patient.merged_into_id is not None:
        raise errors.NotFound("no such patient")
    return patient


async def _identifier(db: AsyncSession, site_id: str, local_id: str) -> PatientIdentifier | None:
    query = select(PatientIdentifier).where(PatientIdentifier.site_id == site_id)
    return await db.scalar(query.where(PatientIdentifier.local_id == local_id))


async def _holder_of(db: AsyncSession, key: str, other_than: str) -> str | None:
    """The first identity (other than `other_than`) holding a shared regional ID."""
    query = select(PatientIdentifier.patient_id).where(
        PatientIdentifier.local_id == key, PatientIdentifier.patient_id != other_than
    )
    return await db.scalar(query.order_by(PatientIdentifier.id).limit(1))


async def _fill_demographics(db: AsyncSession, patient_id: str, person: Demographics) -> None:
    """Fill what the identity lacks; never overwrite what an earlier object said."""
    patient = await db.get(Patient, patient_id)
    if patient is None:
        return
    patient.name = patient.name or person.name
    patient.birth_date = patient.birth_date or person.birth_date
    patient.sex = patient.sex or person.sex


async def patient_studies(db: AsyncSession, patient_id: str) -> list[Study]:
    """Every study of a regional identity, newest first (the caller filters by the access policy)."""
    query = select(Study).where(Study.patient_id == patient_id)
    return list(await db.scalars(query.order_by(Study.study_date.desc(), Study.registered_at.desc())))
