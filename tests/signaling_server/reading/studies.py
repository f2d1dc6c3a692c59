"""Put studies into the queue the way arriving images do (through `reading.intake`), for queue tests."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydicom.uid import generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Patient, PatientIdentifier
from signaling_server.reading.intake import ArrivingStudy, images_arrived
from signaling_server.reading.service import now
from signaling_server.reading.targets import TARGETS


async def arrive(
    app: web.Application,
    site_id: str,
    modality: str = "CR",
    *,
    priority: str = "",
    local_id: str = "",
    name: str = "Test^Patient",
    study_uid: str | None = None,
    at: datetime | None = None,
) -> str:
    """One instance of a new (or given) study arrives; returns the study's id."""
    local_id = local_id or "P" + generate_uid()[-10:]
    async with app[DB]() as db:
        known = await db.scalar(
            select(PatientIdentifier).where(
                PatientIdentifier.site_id == site_id, PatientIdentifier.local_id == local_id
            )
        )
        if known is None:
            patient = Patient(name=name, birth_date="19700101", sex="F")
            db.add(patient)
            await db.flush()
            db.add(PatientIdentifier(patient_id=patient.id, site_id=site_id, local_id=local_id))
            patient_id = patient.id
        else:
            patient_id = known.patient_id
        arriving = ArrivingStudy(
            site_id=site_id,
            study_uid=study_uid or generate_uid(),
            patient_id=patient_id,
            local_patient_id=local_id,
            patient_name=name,
            accession="A" + generate_uid()[-8:],
            modality=modality,
            dicom_priority=priority,
        )
        study = await images_arrived(db, arriving, app[TARGETS], at or now())
        await db.commit()
        return study.id
