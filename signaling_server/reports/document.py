"""A report as printed for the community (docs/RESULTS.md): everything its PDF shows, gathered from the database
and the DICOM store in one place, so that the page itself (pdf.py) is a pure function of it.

The header is the study's site (name, address, phone, logo); the patient as that site sent them; the report
version with its reader and approver; the structured content with what the rules computed (as for the SR,
archive.py); the chosen images rendered as JPEG (an image that cannot be rendered is left out and counted).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.db.models import Instance, Report, Site, Study
from signaling_server.dicomstore import render
from signaling_server.dicomstore.blobs import BlobStore
from signaling_server.dicomstore.limits import ImageLimits
from signaling_server.dicomstore.parsing import read_dataset
from signaling_server.reports import archive, key_images, sr
from signaling_server.reports.state import ReportKind

IMAGE_VIEWPORT = (800, 600)  # pixels of a printed image at most: 2 a row on A4 at about 200 dpi


@dataclass(frozen=True)
class SiteHeader:
    name: str
    address: str = ""
    phone: str = ""
    logo: bytes | None = None
    logo_type: str | None = None


@dataclass(frozen=True)
class PrintedReport:
    site: SiteHeader
    study: sr.StudyHeader
    modality: str
    description: str
    kind: ReportKind
    version: sr.ReportVersion
    content: sr.ReportContent
    images: tuple[bytes, ...]  # JPEG, in the reader's order
    images_missing: int  # chosen images that could not be rendered


async def site_header(db: AsyncSession, site_id: str) -> SiteHeader:
    row = (
        await db.execute(
            select(Site.name, Site.address, Site.phone, Site.logo, Site.logo_type).where(Site.id == site_id)
        )
    ).first()
    if row is None:
        raise errors.NotFound("no such site")
    name, address, phone, logo, logo_type = row
    return SiteHeader(name, address or "", phone or "", bytes(logo) if logo is not None else None, logo_type)


async def gather(
    db: AsyncSession, blobs: BlobStore, limits: ImageLimits, report: Report, study: Study
) -> PrintedReport:
    chosen = await key_images.of_report(db, report.id)
    instances = {
        i.sop_uid: i
        for i in (
            await db.scalars(
                select(Instance).where(Instance.study_id == study.id, Instance.sop_uid.in_([c.sop_uid for c in chosen]))
            )
        ).all()
    }
    images: list[bytes] = []
    for choice in chosen:
        instance = instances.get(choice.sop_uid)
        jpeg = await _rendered(blobs, limits, instance, choice.frame) if instance is not None else None
        if jpeg is not None:
            images.append(jpeg)
    return PrintedReport(
        site=await site_header(db, study.site_id),
        study=await archive.study_header(db, study),
        modality=study.modality,
        description=study.description,
        kind=ReportKind(report.kind),
        version=await archive.report_version(db, report),
        content=archive.report_content(report, study),
        images=tuple(images),
        images_missing=len(chosen) - len(images),
    )


async def _rendered(blobs: BlobStore, limits: ImageLimits, instance: Instance, frame: int) -> bytes | None:
    if (instance.rows or 0) * (instance.columns or 0) > limits.max_pixels_per_frame:
        return None
    raw = await blobs.read(instance.sha256)
    try:
        return await asyncio.to_thread(_render, raw, frame - 1)
    except errors.TeleusError:
        return None


def _render(raw: bytes, index: int) -> bytes:
    with quiet_pydicom():
        ds = read_dataset(raw)
        return render.render(ds, index, viewport=IMAGE_VIEWPORT, media_type=render.JPEG, quality=88)
