"""Reports over REST (PROTOCOL.md §5): versions, draft, edit, preview, sign, approve, addenda, printable view."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import ReportArchiveJob, Study
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.orders import matching as order_matching
from signaling_server.reports import archive, content, service
from signaling_server.reports.archiver import ARCHIVER
from signaling_server.reports.service import ReportView
from signaling_server.reports.state import ReportKind, ReportState

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _report_json(db: AsyncSession, view: ReportView) -> dict[str, Any]:
    report = view.report
    job = await service.archive_job(db, report) if report.state == ReportState.ARCHIVING else None
    return report_json(view, job)


def report_json(v: ReportView, job: ReportArchiveJob | None = None) -> dict[str, Any]:
    """A report; an archiving one (approved, its SR not stored yet) says how its archiving goes in `archiving`. A
    de-identified reader gets every text of its content with the patient's identifiers struck out."""
    r = v.report
    archiving = None
    if job is not None:
        archiving = {
            "attempts": job.attempts,
            "last_error": job.last_error,
            "next_attempt_at": iso(job.next_attempt_at),
        }
    return {
        "id": r.id,
        "study_id": r.study_id,
        "version": r.version,
        "kind": r.kind,
        "state": r.state,
        "content": v.shown(r.content.get("input", {})),
        "computed": v.shown(r.content.get("computed", {})),
        "author": {"id": v.author.id, "name": v.author.name},
        "created_at": iso(r.created_at),
        "signed_at": iso(r.signed_at),
        "approver": {"id": v.approver.id, "name": v.approver.name} if v.approver else None,
        "approved_at": iso(r.approved_at),
        "amends_id": r.amends_id,
        "sr_sop_uid": r.sr_sop_uid,
        "archiving": archiving,
    }


async def _tell(request: web.Request, db: AsyncSession, study_id: str) -> None:
    """The queue and the study page hear that a report of the study changed (called after the commit)."""
    study = await db.get(Study, study_id)
    if study is not None:
        request.app[CHANGES].changed(changes.of_study(study))
        order = await order_matching.order_of_study(db, study_id)
        if order is not None:  # the ordering site follows its order's report (orders/matching.py)
            request.app[CHANGES].changed(changes.of_order(order))


@routes.get("/api/v1/studies/{id}/reports")
async def list_reports(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        views = await service.list_for_study(db, who, request.match_info["id"])
        reports = [await _report_json(db, v) for v in views]
    return web.json_response({"reports": reports})


@routes.post("/api/v1/studies/{id}/reports")
async def create(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        report = await service.create_draft(db, who, request.match_info["id"], data, service.now())
        await _tell(request, db, report.study_id)
        return web.json_response(report_json(await service.view(db, report)), status=201)


@routes.post("/api/v1/reports/preview")
async def preview(request: web.Request) -> web.Response:
    """What the rules make of a report's content, without saving anything (the editor's live feedback)."""
    (await caller(request)).require_user()
    data = await body.json_body(request)
    kind = ReportKind(body.choice(data, "kind", [k.value for k in ReportKind]))
    evaluated = content.evaluate(kind, body.obj(data, "content"), final=False)
    return web.json_response({"computed": evaluated["computed"], "content": evaluated["input"]})


@routes.get("/api/v1/reports/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.read(db, who, request.match_info["id"])
        return web.json_response(await _report_json(db, view))


@routes.put("/api/v1/reports/{id}")
async def edit(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        report = await service.edit_draft(db, who, request.match_info["id"], data, service.now())
        return web.json_response(report_json(await service.view(db, report)))


@routes.post("/api/v1/reports/{id}/sign")
async def sign(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        report = await service.sign(db, who, request.match_info["id"], service.now())
        await _tell(request, db, report.study_id)
        return web.json_response(report_json(await service.view(db, report)))


@routes.post("/api/v1/reports/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    """Approve (the report becomes archiving, its archive job queued), then one attempt at storing its SR now:
    200 with the final report when it worked, 202 with the archiving one when the archiver must retry."""
    who = await caller(request)
    async with request.app[DB]() as db:
        report, _ = await service.approve(db, who, request.match_info["id"], service.now())
    final = await request.app[ARCHIVER].archive_now(report.id)
    async with request.app[DB]() as db:
        report, _ = await service.get_visible(db, who, report.id)
        await _tell(request, db, report.study_id)
        return web.json_response(await _report_json(db, await service.view(db, report)), status=200 if final else 202)


@routes.post("/api/v1/reports/{id}/addenda")
async def addendum(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        report = await service.add_addendum(db, who, request.match_info["id"], data, service.now())
        await _tell(request, db, report.study_id)
        return web.json_response(report_json(await service.view(db, report)), status=201)


@routes.get("/api/v1/reports/{id}/print")
async def printable(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        report, study = await service.get_visible(db, who, request.match_info["id"])
        html = await archive.printable_html(db, report, study)
    return web.Response(text=html, content_type="text/html")
