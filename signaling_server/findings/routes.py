"""Critical findings over REST (PROTOCOL.md §5); the escalation timer is findings/escalation.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.auth.identity import caller
from signaling_server.db.models import CriticalFinding, Study
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.findings import service
from signaling_server.findings.state import state_of
from signaling_server.reading import service as queue

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _escalate_after(request: web.Request) -> timedelta:
    return timedelta(minutes=request.app[SETTINGS].finding_escalation_minutes)


async def finding_json(db: AsyncSession, f: CriticalFinding) -> dict[str, Any]:
    reporter, acknowledger, accession = await service.names(db, f)
    return {
        "id": f.id,
        "study_id": f.study_id,
        "accession": accession,
        "site_id": f.site_id,
        "state": state_of(f),
        "finding": f.finding,
        "found_at": iso(f.found_at),
        "reported_by": reporter,
        "notified_person": f.notified_person,
        "acknowledged_by": acknowledger,
        "acknowledged_at": iso(f.acknowledged_at),
        "method": f.method,
        "escalation_level": f.escalation_level,
        "next_escalation_at": iso(f.next_escalation_at),
    }


@routes.post("/api/v1/studies/{id}/findings")
async def flag(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        finding = await service.flag(db, who, request.match_info["id"], data, _escalate_after(request), service.now())
        request.app[CHANGES].changed(changes.of_finding(finding, await db.get(Study, finding.study_id)))
        return web.json_response(await finding_json(db, finding), status=201)


@routes.get("/api/v1/studies/{id}/findings")
async def of_study(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        study = (await queue.get_visible(db, who, request.match_info["id"])).study
        return web.json_response(
            {"findings": [await finding_json(db, f) for f in await service.for_study(db, study.id)]}
        )


@routes.get("/api/v1/findings")
async def list_findings(request: web.Request) -> web.Response:
    who = await caller(request)
    open_only = request.query.get("state", "open") == "open"
    async with request.app[DB]() as db:
        found = await service.list_visible(db, who, open_only=open_only)
        return web.json_response({"findings": [await finding_json(db, f) for f in found]})


@routes.post("/api/v1/findings/{id}/acknowledge")
async def acknowledge(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request) if request.can_read_body else {}
    async with request.app[DB]() as db:
        finding = await service.acknowledge(db, who, request.match_info["id"], data, service.now())
        request.app[CHANGES].changed(changes.of_finding(finding, await db.get(Study, finding.study_id)))
        return web.json_response(await finding_json(db, finding))
