"""Regional patient identity: each site's own patient ID maps to one `Patient`, the region's person.

Linking across sites must be safe: two people with a common name and the same birth date are not rare, so
demographics alone never merge identities. The rules, applied to every arriving object:

- the same (site, PatientID) as before → the same identity;
- the object carries the region's shared ID (PatientID whose IssuerOfPatientID is `regional_id_issuer`, or an
  OtherPatientIDsSequence item with that issuer) → the identity already holding that ID, from any site;
  a site identity without a shared ID yet is merged into it; two *different* shared IDs are never merged;
- otherwise → a new identity. People who look alike (same normalised name, birth date and sex) are listed as
  candidates for an admin to link by hand (`link_patients`), which moves identifiers and studies and audits it.

The shared ID is kept as a `PatientIdentifier` row of the site that sent it, its `local_id` being
"<issuer>\\<value>": a backslash cannot occur in a PatientID (it separates values), so it never collides with a
site's own numbers.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Patient, PatientIdentifier, Study, StudyEvent
from signaling_server.dicomstore.parsing import Demographics

log = logging.getLogger(__name__)

SEPARATOR = "\\"
_NAME_NOISE = re.compile(r"[\s^,.\-'·]+")


def regional_key(issuer: str, value: str) -> str:
    """The `local_id` under which a shared regional ID is kept (fits the 64-character column)."""
    key = f"{issuer}{SEPARATOR}{value}"
    if len(key) <= 64:
        return key
    return SEPARATOR + hashlib.sha256(key.encode()).hexdigest()[:63]


def is_regional(local_id: str) -> bool:
    return SEPARATOR in local_id


def normalised_name(person_name: str) -> str:
    """A comparison key for names: first non-empty component group, NFKC, upper case, no spaces or separators.

    "Zhang^San=张^三", "ZHANG SAN" and "zhang^san^^" give the same key; "张^三" and "张三" give the same key.
    """
    groups = [g for g in person_name.split("=") if g.strip(" ^")]
    first = unicodedata.normalize("NFKC", groups[0] if groups else "")
    return _NAME_NOISE.sub("", first).upper()


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
    holder = await _holder_of(db, key) if key else None
    if known is not None and holder is not None and known.patient_id != holder:
        if await _shared_keys(db, known.patient_id):
            log.warning(
                "site %s patient %s: shared ID differs from the one on file; identities %s and %s kept apart",
                site_id,
                person.local_id,
                known.patient_id,
                holder,
            )
            return known.patient_id
        await link_patients(db, holder, known.patient_id, by_user_id=None, reason="regional_id", now=now)
        patient_id = holder
    elif known is not None:
        patient_id = known.patient_id
    elif holder is not None:
        patient_id = holder
    elif not person.local_id and study_patient_id:
        return study_patient_id
    else:
        patient = Patient(name=person.name, birth_date=person.birth_date, sex=person.sex, created_at=now)
        db.add(patient)
        await db.flush()
        patient_id = patient.id
        log.info("site %s patient %r: new regional identity %s", site_id, person.local_id, patient_id)
    if person.local_id and known is None:
        db.add(PatientIdentifier(patient_id=patient_id, site_id=site_id, local_id=person.local_id, created_at=now))
    if key is not None and await _identifier(db, site_id, key) is None:
        theirs = await _shared_keys(db, patient_id)
        if theirs and key not in theirs:
            log.warning("identity %s already has another shared ID; %s not added", patient_id, key)
        else:
            db.add(PatientIdentifier(patient_id=patient_id, site_id=site_id, local_id=key, created_at=now))
    await _fill_demographics(db, patient_id, person)
    await db.flush()
    return patient_id


async def link_patients(
    db: AsyncSession, keep_id: str, other_id: str, *, by_user_id: str | None, reason: str, now: datetime
) -> Patient:
    """Merge identity `other_id` into `keep_id`: identifiers and studies move, each moved study records it.

    Refused when both carry different shared regional IDs (then they are two people). Does not commit.
    """
    if keep_id == other_id:
        raise errors.InvalidRequest("an identity cannot be linked to itself")
    keep, other = await db.get(Patient, keep_id), await db.get(Patient, other_id)
    if keep is None or other is None:
        raise errors.NotFound("no such patient")
    keep_keys, other_keys = await _shared_keys(db, keep_id), await _shared_keys(db, other_id)
    if keep_keys and other_keys and keep_keys.isdisjoint(other_keys):
        raise errors.Conflict("these identities carry different regional IDs: they are different people")
    moved = list(await db.scalars(select(Study.id).where(Study.patient_id == other_id)))
    moving = update(PatientIdentifier).where(PatientIdentifier.patient_id == other_id)
    await db.execute(moving.values(patient_id=keep_id))
    await db.execute(update(Study).where(Study.patient_id == other_id).values(patient_id=keep_id))
    detail = {"from": other_id, "into": keep_id, "reason": reason}
    for study_id in moved:
        db.add(StudyEvent(study_id=study_id, at=now, kind="patient_linked", user_id=by_user_id, detail=detail))
    keep.birth_date = keep.birth_date or other.birth_date
    keep.sex = keep.sex or other.sex
    keep.name = keep.name or other.name
    await db.delete(other)
    await db.flush()
    log.info("patient %s linked into %s (%s, by %s, %d studies)", other_id, keep_id, reason, by_user_id, len(moved))
    return keep


async def duplicate_candidates(db: AsyncSession) -> list[list[Patient]]:
    """Groups of identities with the same normalised name, birth date and sex (birth date known), for review."""
    pairs = select(Patient.birth_date, Patient.sex).where(Patient.birth_date != "")
    pairs = pairs.group_by(Patient.birth_date, Patient.sex).having(func.count() > 1)
    keys = {(b, s) for b, s in (await db.execute(pairs)).all()}
    if not keys:
        return []
    births = {b for b, _ in keys}
    rows = await db.scalars(select(Patient).where(Patient.birth_date.in_(births)).order_by(Patient.created_at))
    groups: dict[tuple[str, str, str], list[Patient]] = defaultdict(list)
    for patient in rows:
        name = normalised_name(patient.name)
        if name and (patient.birth_date, patient.sex) in keys:
            groups[(name, patient.birth_date, patient.sex)].append(patient)
    return [group for _, group in sorted(groups.items()) if len(group) > 1]


async def identifiers_of(db: AsyncSession, patient_ids: list[str]) -> dict[str, list[PatientIdentifier]]:
    found: dict[str, list[PatientIdentifier]] = defaultdict(list)
    if patient_ids:
        query = select(PatientIdentifier).where(PatientIdentifier.patient_id.in_(patient_ids))
        for row in await db.scalars(query.order_by(PatientIdentifier.id)):
            found[row.patient_id].append(row)
    return found


async def patient_studies(db: AsyncSession, patient_id: str, site_id: str | None = None) -> list[Study]:
    """Every study of a regional identity, from every site (or from `site_id` only), newest first."""
    query = select(Study).where(Study.patient_id == patient_id)
    if site_id is not None:
        query = query.where(Study.site_id == site_id)
    return list(await db.scalars(query.order_by(Study.study_date.desc(), Study.registered_at.desc())))


async def _identifier(db: AsyncSession, site_id: str, local_id: str) -> PatientIdentifier | None:
    query = select(PatientIdentifier).where(PatientIdentifier.site_id == site_id)
    return await db.scalar(query.where(PatientIdentifier.local_id == local_id))


async def _holder_of(db: AsyncSession, key: str) -> str | None:
    """The identity holding a shared regional ID (every site's row for it points at the same one)."""
    query = select(PatientIdentifier.patient_id).where(PatientIdentifier.local_id == key).limit(1)
    return await db.scalar(query)


async def _shared_keys(db: AsyncSession, patient_id: str) -> set[str]:
    query = select(PatientIdentifier.local_id).where(PatientIdentifier.patient_id == patient_id)
    return {k for k in await db.scalars(query) if is_regional(k)}


async def _fill_demographics(db: AsyncSession, patient_id: str, person: Demographics) -> None:
    """Fill what the identity lacks; never overwrite what an earlier object (or an admin) said."""
    patient = await db.get(Patient, patient_id)
    if patient is None:
        return
    patient.name = patient.name or person.name
    patient.birth_date = patient.birth_date or person.birth_date
    patient.sex = patient.sex or person.sex
