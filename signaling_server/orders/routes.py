"""Orders over REST (docs/ORDERS.md): a community site orders an exam at the regional centre.

    POST /api/v1/orders               place an order (doctors and sonographers, for their own site) → 201 the order
         {"patient": {"id", "name", "birth_date"?: "YYYY-MM-DD", "sex"?: "M"|"F"|"O"},
          "exam": {"modality": "US"|"CR"|…, "body_part"?: "THYROID", "description"?: "甲状腺超声"},
          "reason": "…", "clinical_info"?: "…", "priority"?: "routine"|"urgent"|"stat",
          "accession"?: "…" (else generated), "scheduled_at"?: ISO 8601 with zone (else now),
          "station_ae"?: a DICOM peer of the site (else any of its modalities)}
         400 invalid_order (+ "field"), 409 duplicate_accession, 403 forbidden (not a doctor or sonographer)
    GET  /api/v1/orders[?state=scheduled,in_progress&site=<id or code>]
                                      the orders the caller sees, newest first (at most 500): their own site's for
                                      its people, the sites they serve for the centre's experts
    GET  /api/v1/orders/{id}          one order, with its trail (`events`); 404 not_found when not visible
    POST /api/v1/orders/{id}/cancel   {"reason": "…"}: the ordering site withdraws a scheduled order → the order;
                                      409 invalid_transition once its images arrived (or it is cancelled already)

An order's JSON: id, accession, state (scheduled | in_progress | completed | cancelled), priority, site, ordered_by,
patient {id (regional), local_id, name (DICOM PN), birth_date, sex}, exam {modality, body_part, description},
reason, clinical_info, station_ae, scheduled_at, study_uid (the worklist's StudyInstanceUID), created_at,
started_at, completed_at, cancelled_at, cancelled_by, cancel_reason, study_id, report_id, and `links` to the
study and the report (REST paths; the report's printable view too). Every route is audited (audit/coverage.py);
every change is told on the change-notice stream as topic `orders` (events/changes.py).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.auth.identity import caller
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.orders import service
from signaling_server.orders.service import OrderView

routes = web.RouteTableDef()


def order_json(view: OrderView) -> dict[str, Any]:
    o = view.order
    links: dict[str, str] = {}
    if o.study_id:
        links["study"] = f"/api/v1/studies/{o.study_id}"
    if o.report_id:
        links["report"] = f"/api/v1/reports/{o.report_id}"
        links["report_print"] = f"/api/v1/reports/{o.report_id}/print"
    data: dict[str, Any] = {
        "id": o.id,
        "accession": o.accession,
        "state": o.state,
        "priority": o.priority,
        "site": {"id": view.site.id, "code": view.site.code, "name": view.site.name},
        "ordered_by": _person(view.ordered_by),
        "patient": {
            "id": o.patient_id,
            "local_id": o.local_patient_id,
            "name": o.patient_name,
            "birth_date": o.patient_birth_date,
            "sex": o.patient_sex,
        },
        "exam": {"modality": o.modality, "body_part": o.body_part, "description": o.description},
        "reason": o.reason,
        "clinical_info": o.clinical_info,
        "station_ae": o.station_ae,
        "scheduled_at": iso(o.scheduled_at),
        "study_uid": o.study_uid,
        "created_at": iso(o.created_at),
        "started_at": iso(o.started_at),
        "completed_at": iso(o.completed_at),
        "cancelled_at": iso(o.cancelled_at),
        "cancelled_by": _person(view.cancelled_by),
        "cancel_reason": o.cancel_reason,
        "study_id": o.study_id,
        "report_id": o.report_id,
        "links": links,
    }
    if view.events:
        data["events"] = [
            {"at": iso(e.at), "kind": e.kind, "user_id": e.user_id, "detail": e.detail} for e in view.events
        ]
    return data


def _person(user: Any) -> dict[str, str] | None:
    return {"id": user.id, "name": user.name, "role": user.role} if user is not None else None


@routes.post("/api/v1/orders")
async def place(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    settings = request.app[SETTINGS]
    async with request.app[DB]() as db:
        order = await service.place(
            db, who, data, service.now(), issuer=settings.regional_id_issuer, zone=ZoneInfo(settings.worklist_timezone)
        )
        view = await service.get_visible(db, who, order.id, events=True)
    request.app[CHANGES].changed(changes.of_order(view.order))
    return web.json_response(order_json(view), status=201)


@routes.get("/api/v1/orders")
async def list_orders(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        views = await service.list_visible(db, who, dict(request.query))
    return web.json_response({"orders": [order_json(v) for v in views]})


@routes.get("/api/v1/orders/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"], events=True)
    return web.json_response(order_json(view))


@routes.post("/api/v1/orders/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        order = await service.cancel(db, who, request.match_info["id"], data, service.now())
        view = await service.get_visible(db, who, order.id, events=True)
    request.app[CHANGES].changed(changes.of_order(view.order))
    return web.json_response(order_json(view))
