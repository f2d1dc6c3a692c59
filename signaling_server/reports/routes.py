"""Reports over REST (PROTOCOL.md §5): versions, draft, edit, preview, sign, approve, addenda, printable view.

    GET  /api/v1/studies/{id}/reports      the study's report versions
    POST /api/v1/studies/{id}/reports      a new draft {kind, content} (thyroid: scored with the site's system)
    POST /api/v1/reports/preview           what the rules make of {kind, content[, study_id]}, nothing saved
    GET  /api/v1/reports/{id}              one version
    PUT  /api/v1/reports/{id}              edit a draft {content}
    POST /api/v1/reports/{id}/sign         draft → preliminary (409 unconfirmed_warnings until confirmed)
    POST /api/v1/reports/{id}/approve      preliminary → archiving → final
    POST /api/v1/reports/{id}/addenda      a new draft amending the final report
    GET  /api/v1/reports/{id}/print        the reader's printable page of one version (findings, status, version)

The scoring system of a site is set in site_routes.py (`POST /api/v1/sites/{id}/thyroid-system`).

Issue 12 (docs/RESULTS.md):

    GET /api/v1/reports/{id}/printed.html  the formal printed report as HTML (what the PDF is made of: the site's
                                      header and logo, the chosen images, findings, reader and approver), for the
                                      console to show and print; no script, nothing loaded but its inline images
    GET /api/v1/reports/{id}/pdf      the same as application/pdf (`?inline=1`: shown, not downloaded)

    GET /api/v1/reports/{id}/images   → {"images": [{"sop_uid", "frame"}]}: the images chosen for the report
    PUT /api/v1/reports/{id}/images   {"images": [{"sop_uid", "frame"?}]} → the same: the draft's author, holding
                                      the study's lock, chooses (at most 12, each a frame of the study's images)

The findings read the same in all three printed forms (printable.findings_body). Each is in `?language=zh-CN|en`,
else the reader's own language (the console's switch), else Accept-Language's (Chinese when it says nothing); for
whoever sees the report in full (its site, the sites they serve, a grant); audited as a print; 400 invalid_request
for another language, 404 for a report the caller does not see.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.auth.identity import Caller, caller
from signaling_server.db.models import Report, ReportArchiveJob, Study
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.ingest import DICOM_STORE
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.localization.catalogs import CATALOGS, LANGUAGES, negotiate
from signaling_server.orders import matching as order_matching
from signaling_server.reading import service as queue
from signaling_server.reports import archive, content, document, key_images, pdf, service
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
    who = await caller(request)
    who.require_user()
    data = await body.json_body(request)
    kind = ReportKind(body.choice(data, "kind", [k.value for k in ReportKind]))
    system = None
    study_id = data.get("study_id")
    if study_id is not None:  # a thyroid report of this study is scored with its site's system
        if not isinstance(study_id, str):
            raise errors.InvalidRequest("study_id must be a study's id")
        async with request.app[DB]() as db:
            study = (await queue.get_visible(db, who, study_id)).study
            system = await service.site_system(db, study)
    evaluated = content.evaluate(kind, body.obj(data, "content"), final=False, system=system)
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


def print_language(request: web.Request, who: Caller) -> str:
    """The printed report's language: `?language=` when given (zh-CN or en), else the language the reader chose for
    themselves (the console's switch), else the Accept-Language's choice (Chinese when it says nothing)."""
    asked = request.query.get("language")
    if asked is not None:
        if asked not in LANGUAGES:
            raise errors.InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
        return asked
    chosen = getattr(who.user, "language", None)  # users.language, the console's switch (issue 12 §1)
    if isinstance(chosen, str) and chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("Accept-Language"))


# The printed page holds no script and loads nothing: only its own styles and inline images; the console may frame it.
PRINTED_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


async def _printed_page(request: web.Request) -> tuple[str, Report, Study]:
    who = await caller(request)
    language = print_language(request, who)
    zone = ZoneInfo(request.app[SETTINGS].report_time_zone)
    store = request.app[DICOM_STORE]
    async with request.app[DB]() as db:
        report, study = await service.get_visible(db, who, request.match_info["id"])
        doc = await document.gather(db, request.app[BLOBS], store.limits, report, study)
    return pdf.render_html(doc, request.app[CATALOGS], language, zone, datetime.now(zone)), report, study


@routes.get("/api/v1/reports/{id}/print")
async def printable(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        report, study = await service.get_visible(db, who, request.match_info["id"])
        html = await archive.printable_html(db, report, study, print_language(request, who))
    return web.Response(text=html, content_type="text/html")


@routes.get("/api/v1/reports/{id}/printed.html")
async def printed_page(request: web.Request) -> web.Response:
    page, _, _ = await _printed_page(request)
    headers = {"Content-Security-Policy": PRINTED_CSP, "Cache-Control": "no-store"}
    return web.Response(text=page, content_type="text/html", headers=headers)


@routes.get("/api/v1/reports/{id}/pdf")
async def printed(request: web.Request) -> web.Response:
    page, report, study = await _printed_page(request)
    data = await asyncio.to_thread(pdf.render_pdf, page)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"report-{study.accession or report.id}-v{report.version}.pdf")
    disposition = "inline" if request.query.get("inline") == "1" else "attachment"  # inline: the browser prints it
    headers = {"Content-Disposition": f'{disposition}; filename="{name}"', "Cache-Control": "no-store"}
    return web.Response(body=data, content_type="application/pdf", headers=headers)


@routes.get("/api/v1/reports/{id}/images")
async def chosen_images(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        report, _ = await service.get_visible(db, who, request.match_info["id"])
        images = await key_images.of_report(db, report.id)
    return web.json_response({"images": key_images.images_json(images)})


@routes.put("/api/v1/reports/{id}/images")
async def choose_images(request: web.Request) -> web.Response:
    who = await caller(request)
    chosen = key_images.parse(await body.json_body(request))
    async with request.app[DB]() as db:
        report, study = await service.get_visible(db, who, request.match_info["id"])
        images = await key_images.choose(db, who, report, study, chosen, service.now())
    return web.json_response({"images": key_images.images_json(images)})
