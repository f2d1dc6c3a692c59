"""The images a reader chooses for a report (printed with it, referenced by its SR): `report_images` rows.

The author sets them while the report is a draft and holds the study's lock, like the text; signing freezes them
with the version. An addendum starts with the images of the version it amends. Each image is an instance of the
report's own study (by SOP Instance UID) and one of its frames (from 1); at most `MAX_IMAGES`, no repeats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Instance, Report, ReportImage, Study
from signaling_server.reading import service as queue
from signaling_server.reports.state import ReportState

MAX_IMAGES = 12


async def of_report(db: AsyncSession, report_id: str) -> list[ReportImage]:
    query = select(ReportImage).where(ReportImage.report_id == report_id).order_by(ReportImage.position)
    return list((await db.scalars(query)).all())


def parse(data: dict[str, Any]) -> list[tuple[str, int]]:
    """`{"images": [{"sop_uid": "…", "frame": 1}, …]}` → [(sop_uid, frame)]; InvalidRequest naming what is wrong."""
    images = data.get("images")
    if not isinstance(images, list):
        raise errors.InvalidRequest("images must be a list of {sop_uid, frame}")
    if len(images) > MAX_IMAGES:
        raise errors.InvalidRequest(f"a report shows at most {MAX_IMAGES} images")
    chosen: list[tuple[str, int]] = []
    for n, item in enumerate(images):
        if not isinstance(item, dict) or not isinstance(item.get("sop_uid"), str) or set(item) - {"sop_uid", "frame"}:
            raise errors.InvalidRequest(f"images[{n}] must be {{sop_uid, frame}}")
        frame = item.get("frame", 1)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise errors.InvalidRequest(f"images[{n}].frame is a frame number from 1")
        if (item["sop_uid"], frame) in chosen:
            raise errors.InvalidRequest(f"images[{n}] is chosen twice")
        chosen.append((item["sop_uid"], frame))
    return chosen


async def choose(
    db: AsyncSession, caller: Caller, report: Report, study: Study, chosen: list[tuple[str, int]], at: datetime
) -> list[ReportImage]:
    """Replace the draft's images (its author, holding the lock); every image must be a frame of the study."""
    user = caller.require_user(*queue.READER_ROLES)
    if report.state != ReportState.DRAFT:
        raise errors.InvalidTransition(f"the images of a {report.state} report are fixed; write an addendum")
    if report.author_id != user.id:
        raise errors.Forbidden("only the author chooses a draft's images")
    queue.require_lock(study, user, at)
    rows = (await db.execute(select(Instance.sop_uid, Instance.frames).where(Instance.study_id == study.id))).all()
    frames = {uid: count for uid, count in rows}
    for uid, frame in chosen:
        if uid not in frames:
            raise errors.InvalidRequest(f"{uid} is not an image of this study")
        if frame > frames[uid]:
            raise errors.InvalidRequest(f"{uid} has {frames[uid]} frame(s), not {frame}")
    await db.execute(delete(ReportImage).where(ReportImage.report_id == report.id))
    for position, (uid, frame) in enumerate(chosen):
        db.add(ReportImage(report_id=report.id, position=position, sop_uid=uid, frame=frame))
    await db.commit()
    return await of_report(db, report.id)


async def carry_over(db: AsyncSession, amended: Report, addendum: Report) -> None:
    """An addendum starts with the images of the version it amends (in the caller's transaction)."""
    for image in await of_report(db, amended.id):
        db.add(ReportImage(report_id=addendum.id, position=image.position, sop_uid=image.sop_uid, frame=image.frame))


def images_json(images: list[ReportImage]) -> list[dict[str, Any]]:
    return [{"sop_uid": i.sop_uid, "frame": i.frame} for i in images]
