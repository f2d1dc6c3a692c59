"""What a de-identified reader (trainers: `Sight.DEIDENTIFIED`) is shown of a study's free text: the patient's
identifiers gathered from the index, then struck out of the text by `access/redaction.py`.

A study's patient is known by: the name and local ID the study arrived with, its accession, and, through its
regional identity, every name, birth date and ID any site sent for that person (a link merges them all) and the
accession of each of their studies (a report may cite a prior by its accession).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.access.policy import Sight
from signaling_server.access.redaction import Identifiers, redact, redact_json
from signaling_server.db.models import Patient, PatientIdentifier, Study
from signaling_server.dicomstore.identity import SEPARATOR, is_regional


async def identifiers_of(db: AsyncSession, studies: Iterable[Study]) -> dict[str, Identifiers]:
    """Each study's patient's identifiers, by study id (three queries, however many studies)."""
    studies = list(studies)
    patient_ids = {s.patient_id for s in studies if s.patient_id is not None}
    patients: dict[str, Patient] = {}
    held: dict[str, list[PatientIdentifier]] = {}
    accessions: dict[str, set[str]] = {}
    if patient_ids:
        patients = {p.id: p for p in await db.scalars(select(Patient).where(Patient.id.in_(patient_ids)))}
        for row in await db.scalars(select(PatientIdentifier).where(PatientIdentifier.patient_id.in_(patient_ids))):
            held.setdefault(row.patient_id, []).append(row)
        query = select(Study.patient_id, Study.accession).where(Study.patient_id.in_(patient_ids))
        for patient_id, accession in (await db.execute(query)).all():
            if patient_id is not None:
                accessions.setdefault(patient_id, set()).add(accession)
    found: dict[str, Identifiers] = {}
    for study in studies:
        patient = patients.get(study.patient_id) if study.patient_id else None
        rows = held.get(study.patient_id, []) if study.patient_id else []
        names = [study.patient_name, *(r.name for r in rows)] + ([patient.name] if patient else [])
        births = [r.birth_date for r in rows] + ([patient.birth_date] if patient else [])
        ids = [study.local_patient_id, study.accession, *(_id_value(r.local_id) for r in rows)]
        ids += sorted(accessions.get(study.patient_id, set())) if study.patient_id else []
        found[study.id] = Identifiers(_distinct(names), _distinct(ids), _distinct(births))
    return found


def text_for(sight: Sight, text: str, who: Identifiers) -> str:
    """Free text as a reader with `sight` is shown it."""
    return redact(text, who) if sight == Sight.DEIDENTIFIED else text


def json_for(sight: Sight, value: Any, who: Identifiers) -> Any:
    """Every string of a JSON value as a reader with `sight` is shown it."""
    return redact_json(value, who) if sight == Sight.DEIDENTIFIED else value


def _id_value(local_id: str) -> str:
    """A site's own ID as it is; a regional ID's value without its issuer (`identity.regional_key`; a key too long
    to keep whole is a hash, which no text holds)."""
    if not is_regional(local_id):
        return local_id
    _, _, value = local_id.partition(SEPARATOR)
    return value


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v and v.strip()}))
