"""How arriving images enter the reading queue: find or create the study, start its clock, match it.

Called by DICOM ingest (STOW-RS from an edge or a script, C-STORE from a modality) inside the same transaction
that indexes the instance, so the queue never shows a study whose images are not stored, nor the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import Consultation, Study, StudyEvent
from signaling_server.reading.state import Priority, StudyState, transition
from signaling_server.reading.targets import Targets, targets_of

# DICOM RequestedProcedurePriority / ReportingPriority values → queue priority.
_DICOM_PRIORITY = {
    "STAT": Priority.STAT,
    "HIGH": Priority.URGENT,
    "MEDIUM": Priority.ROUTINE,
    "ROUTINE": Priority.ROUTINE,
    "LOW": Priority.ROUTINE,
    "URGENT": Priority.URGENT,
}


@dataclass(frozen=True)
class ArrivingStudy:
    """What one arriving instance says about its study, in plain domain words."""

    site_id: str
    study_uid: str
    patient_id: str  # the regional identity, already reconciled
    local_patient_id: str
    patient_name: str
    accession: str
    modality: str
    description: str = ""
    study_date: str = ""
    study_time: str = ""
    dicom_priority: str = ""


def priority_from_dicom(value: str) -> Priority:
    return _DICOM_PRIORITY.get(value.strip().upper(), Priority.ROUTINE)


async def images_arrived(db: AsyncSession, arriving: ArrivingStudy, targets: Targets, now: datetime) -> Study:
    """The study row for `arriving`, created if new, moved on to matched with its turnaround clock running.

    Does not commit: the caller commits together with the instance index.
    """
    study = await db.scalar(select(Study).where(Study.study_uid == arriving.study_uid))
    if study is None:
        consultation = await db.scalar(select(Consultation).where(Consultation.study_uid == arriving.study_uid))
        study = Study(
            study_uid=arriving.study_uid,
            site_id=arriving.site_id,
            patient_id=arriving.patient_id,
            local_patient_id=arriving.local_patient_id,
            patient_name=arriving.patient_name,
            accession=arriving.accession,
            modality=arriving.modality,
            description=arriving.description,
            study_date=arriving.study_date,
            study_time=arriving.study_time,
            consultation_id=consultation.id if consultation else None,
            state=StudyState.REGISTERED,
            priority=priority_from_dicom(arriving.dicom_priority),
            registered_at=now,
            instance_count=0,
        )
        db.add(study)
        await db.flush()
        db.add(StudyEvent(study_id=study.id, at=now, kind="registered", detail={"by": "images"}))
    elif study.modality != arriving.modality and arriving.modality not in ("SR", "PR", "KO"):
        if study.modality in ("SR", "PR", "KO"):
            study.modality = arriving.modality
    if study.patient_id is None:
        study.patient_id = arriving.patient_id
    if study.state == StudyState.REGISTERED:
        transition(study, StudyState.EXAMINED, now, db.add)
        site_targets = await targets_of(db, targets, study.site_id)
        study.due_at = site_targets.due(study.modality, Priority(study.priority), now)
    if study.state == StudyState.EXAMINED and study.patient_id is not None:
        transition(study, StudyState.MATCHED, now, db.add)
    # Counted in SQL, not in Python: two transactions adding to one study must not lose a count.
    await db.execute(
        update(Study)
        .where(Study.id == study.id)
        .values(instance_count=Study.instance_count + 1)
        .execution_options(synchronize_session=False)
    )
    return study
