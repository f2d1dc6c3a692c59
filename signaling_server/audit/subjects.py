"""Whose data a row is about: the study and the regional patient behind the object a request named.

A request names one object (a report, a recording, an instance UID…); the trail also keeps the study and the
regional patient (`Patient.id`) it belongs to, so an admin can ask "who saw this patient?" whatever the route.
Each kind of object has one small query; an object that does not exist (a refused or mistyped read) leaves both
empty, and the row still says what was asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import (
    Consultation,
    CriticalFinding,
    Instance,
    Order,
    PatientIdentifier,
    Recording,
    Report,
    Series,
    Study,
)

Subject = tuple[str | None, str | None]  # (study id, regional patient id)
NOBODY: Subject = (None, None)


async def _study(db: AsyncSession, study_id: str | None) -> Subject:
    study = await db.get(Study, study_id) if study_id else None
    return (study.id, study.patient_id) if study is not None else NOBODY


async def _study_uid(db: AsyncSession, uid: str) -> Subject:
    study = await db.scalar(select(Study).where(Study.study_uid == uid))
    return (study.id, study.patient_id) if study is not None else NOBODY


async def _series_uid(db: AsyncSession, uid: str) -> Subject:
    return await _study(db, await db.scalar(select(Series.study_id).where(Series.series_uid == uid)))


async def _instance(db: AsyncSession, uid: str) -> Subject:
    return await _study(db, await db.scalar(select(Instance.study_id).where(Instance.sop_uid == uid)))


async def _report(db: AsyncSession, report_id: str) -> Subject:
    return await _study(db, await db.scalar(select(Report.study_id).where(Report.id == report_id)))


async def _finding(db: AsyncSession, finding_id: str) -> Subject:
    return await _study(db, await db.scalar(select(CriticalFinding.study_id).where(CriticalFinding.id == finding_id)))


async def _consultation(db: AsyncSession, consultation_id: str) -> Subject:
    consultation = await db.get(Consultation, consultation_id)
    if consultation is None:
        return NOBODY
    study = await db.scalar(select(Study).where(Study.consultation_id == consultation.id).limit(1))
    if study is None and consultation.study_uid:
        study = await db.scalar(select(Study).where(Study.study_uid == consultation.study_uid))
    if study is not None and study.patient_id is not None:
        return study.id, study.patient_id
    patient_id = await db.scalar(
        select(PatientIdentifier.patient_id).where(
            PatientIdentifier.site_id == consultation.site_id, PatientIdentifier.local_id == consultation.patient_id
        )
    )
    return (study.id if study is not None else None), patient_id


async def _recording(db: AsyncSession, recording_id: str) -> Subject:
    consultation_id = await db.scalar(select(Recording.consultation_id).where(Recording.id == recording_id))
    return await _consultation(db, consultation_id) if consultation_id else NOBODY


async def _order(db: AsyncSession, order_id: str) -> Subject:
    order = await db.get(Order, order_id) if len(order_id) <= 32 else None
    return (order.study_id, order.patient_id) if order is not None else NOBODY


async def _patient(db: AsyncSession, patient_id: str) -> Subject:
    return None, patient_id if len(patient_id) <= 32 else None  # what was asked for, existing or not


_RESOLVERS: dict[str, Callable[[AsyncSession, str], Awaitable[Subject]]] = {
    "study": _study,
    "study_uid": _study_uid,
    "series_uid": _series_uid,
    "instance": _instance,
    "report": _report,
    "finding": _finding,
    "consultation": _consultation,
    "recording": _recording,
    "patient": _patient,
    "order": _order,
}


PATIENT_KINDS = frozenset(_RESOLVERS)  # the kinds of object that lead to a study or a patient


async def subject_of(db: AsyncSession, kind: str | None, object_id: str | None) -> Subject:
    """The (study id, patient id) of an object of `kind`; NOBODY for kinds that name no patient's data."""
    resolve = _RESOLVERS.get(kind or "")
    if resolve is None or not object_id:
        return NOBODY
    return await resolve(db, object_id)
