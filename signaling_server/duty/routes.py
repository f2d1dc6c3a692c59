"""The on-duty roster over REST (docs/NOTIFICATIONS.md). A roster names staff, never patients.

GET    /api/v1/duty?from=&to=      the shifts overlapping the window (default: now to 7 days on; ≤ 62 days) (staff)
GET    /api/v1/duty/now?site_id=   who is on duty now (serving the site, when given), and whether the caller is
POST   /api/v1/duty                {"user_id", "starts_at", "ends_at", "note"?} (admins) → 201 Shift
DELETE /api/v1/duty/{id}           (admins) → 204; 404 when there is no such shift

Shift = {"id", "user": {"id", "name"}, "starts_at", "ends_at", "note", "created_by", "created_at"}; times ISO 8601
with their zone (answers in UTC). Every change is told to every console as a `duty` notice (PROTOCOL.md §6).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import DutyShift, User
from signaling_server.duty import roster
from signaling_server.events.changes import DUTY, Change
from signaling_server.events.hub import CHANGES

routes = web.RouteTableDef()

DEFAULT_WINDOW = timedelta(days=7)


def shift_json(shift: DutyShift, user: User) -> dict[str, Any]:
    return {
        "id": shift.id,
        "user": {"id": user.id, "name": user.name},
        "starts_at": iso(shift.starts_at),
        "ends_at": iso(shift.ends_at),
        "note": shift.note,
        "created_by": shift.created_by_id,
        "created_at": iso(shift.created_at),
    }


def _told(request: web.Request, user_id: str) -> None:
    request.app[CHANGES].changed(Change(DUTY, "", user_ids=frozenset({user_id})))


@routes.get("/api/v1/duty")
async def listing(request: web.Request) -> web.Response:
    who = await caller(request)
    who.require_user()
    start = body.instant(request.query["from"], "from") if "from" in request.query else who.at
    end = body.instant(request.query["to"], "to") if "to" in request.query else start + DEFAULT_WINDOW
    if end <= start or end - start > roster.MAX_WINDOW:
        raise errors.InvalidRequest(f"'to' must come after 'from', at most {roster.MAX_WINDOW.days} days later")
    async with request.app[DB]() as db:
        rows = await roster.between(db, start, end)
    return web.json_response({"from": iso(start), "to": iso(end), "shifts": [shift_json(s, u) for s, u in rows]})


@routes.get("/api/v1/duty/now")
async def now(request: web.Request) -> web.Response:
    who = await caller(request)
    me = who.require_user()
    site_id = request.query.get("site_id") or None
    if site_id is not None and len(site_id) > 32:
        raise errors.InvalidRequest("site_id: not a site id")
    async with request.app[DB]() as db:
        serving = await roster.on_duty(db, who.at, site_id)
        mine = [shift for shift, user in await roster.on_duty(db, who.at) if user.id == me.id]
    return web.json_response({
        "on_duty": [{"user": {"id": u.id, "name": u.name}, "until": iso(s.ends_at)} for s, u in serving],
        "me": {"on_duty": bool(mine), "until": iso(mine[0].ends_at) if mine else None},
    })  # fmt: skip


@routes.post("/api/v1/duty")
async def add(request: web.Request) -> web.Response:
    who = await caller(request)
    admin = who.require_user("admin")
    data = await body.json_body(request)
    user_id = body.text(data, "user_id", max_len=32)
    starts_at = body.instant(data.get("starts_at"), "starts_at")
    ends_at = body.instant(data.get("ends_at"), "ends_at")
    note = body.text(data, "note", max_len=roster.MAX_NOTE, required=False)
    async with request.app[DB]() as db:
        shift, user = await roster.add(db, user_id, starts_at, ends_at, note, by=admin.id, at=who.at)
        answer = shift_json(shift, user)
        await db.commit()
    _told(request, user_id)
    return web.json_response(answer, status=201)


@routes.delete("/api/v1/duty/{id}")
async def remove(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        shift = await roster.remove(db, request.match_info["id"][:32])
        if shift is None:
            raise errors.NotFound("no such shift")
        user_id = shift.user_id
        await db.commit()
    _told(request, user_id)
    return web.Response(status=204)
