"""A report as a document: the DICOM Structured Report stored with its study (by archiver.py), and the printable
page.

Both are built from the report's input with the rules' defaults, which are the rules the report was signed
under (signing stores the same computation in `Report.content["computed"]`); if a rule's configuration ever
changes, the signed `computed` stays the record and this module must be given it. A thyroid report's input names
the scoring system it was scored with (ACR TI-RADS or C-TIRADS), so both documents use that system.

Language: the SR stored with the study is written in the district's language (`SR_LANGUAGE`, Chinese); the
printable page in the language its reader asks for (routes.py: `?language=`, else their Accept-Language).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import (
    Instance,
    Patient,
    PatientIdentifier,
    Report,
    ReportImage,
    Series,
    Site,
    Study,
    User,
)
from signaling_server.reports import carotid, content, sr, tirads
from signaling_server.reports.printable import render_html
from signaling_server.reports.state import APPROVED, ReportKind, ReportState

SR_LANGUAGE = "zh-CN"
_SR_TAGS = {"en": "en-US", "zh-CN": "zh-CN"}  # catalog language → the SR's RFC 5646 tag


async def study_header(db: AsyncSession, study: Study) -> sr.StudyHeader:
    """The patient as the study's own site sent them (a linked identity may hold other sites' spellings)."""
    sent = await db.scalar(
        select(PatientIdentifier).where(
            PatientIdentifier.site_id == study.site_id, PatientIdentifier.local_id == study.local_patient_id
        )
    )
    patient = await db.get(Patient, study.patient_id) if sent is None and study.patient_id else None
    birth_date, sex = ("", "")
    if sent is not None:
        birth_date, sex = sent.birth_date, sent.sex
    elif patient is not None:
        birth_date, sex = patient.birth_date, patient.sex
    return sr.StudyHeader(
        patient_name=study.patient_name,
        patient_id=study.local_patient_id,
        patient_birth_date=birth_date,
        patient_sex=sex,
        study_instance_uid=study.study_uid,
        accession_number=study.accession,
        referring_physician="",
        study_date=study.study_date,
        study_time=study.study_time,
    )


def report_content(report: Report, study: Study) -> sr.ReportContent:
    raw: dict[str, Any] = {k: v for k, v in report.content.get("input", {}).items() if k != content.CONFIRMED}
    kind = ReportKind(report.kind)
    if kind is ReportKind.THYROID:
        return tirads.ThyroidFindings.from_json(raw)
    if kind is ReportKind.CAROTID:
        return carotid.CarotidFindings.from_json(raw)
    return sr.FreeText(raw.get("findings", ""), raw.get("impression", ""), study.modality)


async def _name(db: AsyncSession, user_id: str | None) -> str:
    user = await db.get(User, user_id) if user_id else None
    return user.name if user else ""


async def _predecessor(db: AsyncSession, report: Report) -> sr.Predecessor | None:
    amended = await db.get(Report, report.amends_id) if report.amends_id else None
    if amended is None or amended.sr_sop_uid is None:
        return None
    row = (
        await db.execute(
            select(Instance.sop_class_uid, Series.series_uid)
            .join(Series, Series.id == Instance.series_id)
            .where(Instance.sop_uid == amended.sr_sop_uid)
        )
    ).first()
    if row is None:
        return None
    return sr.Predecessor(row[0], amended.sr_sop_uid, row[1], amended.version)


async def chosen_images(db: AsyncSession, report: Report) -> tuple[sr.ImageRef, ...]:
    """The images chosen for the report that are in its study's index, in order (frame only for multi-frame)."""
    rows = (
        await db.execute(
            select(ReportImage.frame, Instance.sop_class_uid, Instance.sop_uid, Instance.frames, Series.series_uid)
            .join(Instance, Instance.sop_uid == ReportImage.sop_uid)
            .join(Series, Series.id == Instance.series_id)
            .where(ReportImage.report_id == report.id, Instance.study_id == report.study_id)
            .order_by(ReportImage.position)
        )
    ).all()
    return tuple(
        sr.ImageRef(sop_class, sop_uid, series_uid, frame if frames > 1 else None)
        for frame, sop_class, sop_uid, frames, series_uid in rows
    )


async def report_version(
    db: AsyncSession, report: Report, *, sop_uid: str = "", series_uid: str = "", language: str = SR_LANGUAGE
) -> sr.ReportVersion:
    final = report.state in APPROVED  # approved: verified, whether its SR is stored yet or not
    signed = report.signed_at or report.created_at
    return sr.ReportVersion(
        author=await _name(db, report.author_id),
        version=report.version,
        status=sr.ReportStatus.FINAL if final else sr.ReportStatus.PRELIMINARY,
        signed_at=signed,
        approver=await _name(db, report.approver_id) if final else "",
        approved_at=report.approved_at if final else None,
        complete=final or report.state == ReportState.PRELIMINARY,
        predecessor=await _predecessor(db, report),
        sop_instance_uid=sop_uid,
        series_instance_uid=series_uid,
        language=_SR_TAGS.get(language, _SR_TAGS[SR_LANGUAGE]),
        images=await chosen_images(db, report),
        institution=await _site_name(db, report),
    )


async def _site_name(db: AsyncSession, report: Report) -> str:
    study = await db.get(Study, report.study_id)
    site = await db.get(Site, study.site_id) if study is not None else None
    return site.name if site is not None else ""


async def sr_part10(db: AsyncSession, report: Report, study: Study, *, sop_uid: str, series_uid: str) -> bytes:
    """The approved report as a DICOM SR Part 10 file with the given UIDs (the archiver stores it with its study)."""
    dataset = sr.build_sr(
        await study_header(db, study),
        await report_version(db, report, sop_uid=sop_uid, series_uid=series_uid),
        report_content(report, study),
    )
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def printable_html(db: AsyncSession, report: Report, study: Study, language: str = SR_LANGUAGE) -> str:
    """The printable page in `language` (a catalog language: "zh-CN" or "en")."""
    version = await report_version(db, report, language=language)
    return render_html(await study_header(db, study), version, report_content(report, study))
