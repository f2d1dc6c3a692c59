"""Reports over REST (PROTOCOL.md §5): versions, draft, edit, preview, sign, approve, addenda, printable view."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from signaling_server.access.policy import Sight
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.reports import archive, content, service
from signaling_server.reports.service import ReportView
from signaling_server.reports.state import ReportKind

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def report_json(v: ReportView) -> dict[str, Any]:
    r = v.report
    return {
        "id": r.id,
        "study_id": r.study_id,
        "version": r.version,
        "kind": r.kind,
        "state": r.state,
        "content": r.content.get("input", {}),
        "computed": r.content.get("computed", {}),
        "author": {"id": v.author.id, "name": v.author.name},
        "created_at": iso(r.created_at),
        "signed_at": iso(r.signed_at),
        "approver": {"id": v.approver.id, "name": v.approver.name} if v.approver else None,
        "approved_at": iso(r.approved_at),
        "amends_id": r.amends_id,
        "sr_sop_uid": r.sr_sop_uid,
    }


@routes.get("/api/v1/studies/{id}/reports")
async def list_reports(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        views = await service.list_for_study(db, who, request.match_info["id"])
    return web.json_response({"reports": [report_json(v) for v in views]})


@routes.post("/api/v1/studies/{id}/reports")
async def create(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        report = await service.create_draft(db, who, request.match_info["id"], data, service.now())
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
        report, _ = await service.get_visible(db, who, request.match_info["id"], least=Sight.DEIDENTIFIED)
        return web.json_response(report_json(await service.view(db, report)))


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
        return web.json_response(report_json(await service.view(db, report)))


@routes.post("/api/v1/reports/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    """Approve, then archive the final report with its study as a DICOM SR (stored through DICOM ingest)."""
    who = await caller(request)
    async with request.app[DB]() as db:
        report, study = await service.approve(db, who, request.match_info["id"], service.now())
        sop_uid = await archive.store_sr(request.app, db, report, study)
        await service.record_archived(db, report, sop_uid)
        return web.json_response(report_json(await service.view(db, report)))


@routes.post("/api/v1/reports/{id}/addenda")
async def addendum(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        report = await service.add_addendum(db, who, request.match_info["id"], data, service.now())
        return web.json_response(report_json(await service.view(db, report)), status=201)


@routes.get("/api/v1/reports/{id}/print")
async def printable(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        report, study = await service.get_visible(db, who, request.match_info["id"])
        html = await archive.printable_html(db, report, study)
    return web.Response(text=html, content_type="text/html")
