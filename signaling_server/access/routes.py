"""Assignments and grants over REST (docs/SECURITY.md §2, §3).

GET    /api/v1/assignments?user_id=            who serves which site (admins)
POST   /api/v1/users/{id}/sites                {"site_id"}: the user serves the site (admins) → 201, 200 if so
DELETE /api/v1/users/{id}/sites/{site_id}      the user no longer serves it (admins) → 204
GET    /api/v1/users/lookup?q=             people a grant may name, by username or name (registrars, admins)
GET    /api/v1/grants?active=1                 every grant (registrars, admins); anyone else: grants naming them
POST   /api/v1/grants                          make a grant (registrars, admins) → 201
POST   /api/v1/grants/{id}/revoke              revoke it now (registrars, admins)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.access import assignments, directory, grants
from signaling_server.access.directory import Person
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import AccessGrant, AccessGrantObject, SiteAssignment
from signaling_server.events.hub import CHANGES

routes = web.RouteTableDef()

GRANTING_ROLES = ("registrar", "admin")


def assignment_json(row: SiteAssignment) -> dict[str, Any]:
    return {"user_id": row.user_id, "site_id": row.site_id, "created_at": iso(row.created_at)}


def grant_json(grant: AccessGrant, objects: list[AccessGrantObject], at: datetime) -> dict[str, Any]:
    valid = (
        grant.revoked_at is None and grant.valid_from <= at and (grant.valid_until is None or at < grant.valid_until)
    )
    return {
        "id": grant.id,
        "kind": grant.kind,
        "grantee": {"user_id": grant.grantee_user_id, "site_id": grant.grantee_site_id},
        "objects": [{"kind": o.kind, "id": o.object_id} for o in objects],
        "valid_from": iso(grant.valid_from),
        "valid_until": iso(grant.valid_until),
        "reason": grant.reason,
        "created_by": grant.created_by_id,
        "created_at": iso(grant.created_at),
        "revoked_at": iso(grant.revoked_at),
        "revoked_by": grant.revoked_by_id,
        "active": valid,
    }


def _instant(data: dict[str, Any], key: str, default: datetime | None) -> datetime | None:
    raw = data.get(key)
    return default if raw is None else body.instant(raw, key)


@routes.get("/api/v1/assignments")
async def list_assignments(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        rows = await assignments.listing(db, request.query.get("user_id") or None)
    return web.json_response({"assignments": [assignment_json(r) for r in rows]})


@routes.post("/api/v1/users/{id}/sites")
async def assign(request: web.Request) -> web.Response:
    who = await caller(request)
    admin = who.require_user("admin")
    data = await body.json_body(request)
    site_id = body.text(data, "site_id", max_len=32)
    async with request.app[DB]() as db:
        made = await assignments.assign(db, request.match_info["id"], site_id, by=admin.id, at=who.at)
        await db.commit()
        rows = await assignments.listing(db, request.match_info["id"])
    request.app[CHANGES].rescope([request.match_info["id"]])  # their event streams hear the site's changes now
    return web.json_response({"assignments": [assignment_json(r) for r in rows]}, status=201 if made else 200)


@routes.delete("/api/v1/users/{id}/sites/{site_id}")
async def unassign(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        if not await assignments.unassign(db, request.match_info["id"], request.match_info["site_id"]):
            raise errors.NotFound("this user does not serve this site")
        await db.commit()
    request.app[CHANGES].rescope([request.match_info["id"]])  # no notice names the site's consultations to them
    return web.Response(status=204)


def person_json(person: Person) -> dict[str, Any]:
    """A person as a grant's maker sees them: who they are and where they work, nothing of their account."""
    u = person.user
    return {
        "id": u.id, "username": u.username, "name": u.name, "role": u.role, "site_id": u.site_id,
        "serves": list(person.serves),
    }  # fmt: skip


@routes.get("/api/v1/users/lookup")
async def lookup_people(request: web.Request) -> web.Response:
    """`?q=` (2 to 64 characters of a username or name) → `{"users": [...], "truncated"}` (registrars, admins)."""
    (await caller(request)).require_user(*GRANTING_ROLES)
    text = directory.query_text(request.query.get("q", ""))
    async with request.app[DB]() as db:
        found = await directory.lookup(db, text)
    return web.json_response({"users": [person_json(p) for p in found.people], "truncated": found.truncated})


@routes.get("/api/v1/grants")
async def list_grants(request: web.Request) -> web.Response:
    who = await caller(request)
    user = who.require_user()
    only_active = request.query.get("active", "") in ("1", "true")
    async with request.app[DB]() as db:
        rows = await grants.listing(
            db,
            grantee_user_id=None if user.role in GRANTING_ROLES else user.id,
            at=who.at if only_active else None,
        )
        objects = await grants.objects_of(db, [g.id for g in rows])
    return web.json_response({"grants": [grant_json(g, objects.get(g.id, []), who.at) for g in rows]})


@routes.post("/api/v1/grants")
async def create_grant(request: web.Request) -> web.Response:
    who = await caller(request)
    user = who.require_user(*GRANTING_ROLES)
    data = await body.json_body(request)
    grantee = body.obj(data, "grantee")
    items = data.get("objects")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise errors.InvalidRequest('\'objects\' must be a list of {"kind", "id"}')
    objects = [(body.choice(i, "kind", grants.OBJECT_KINDS), body.text(i, "id", max_len=32)) for i in items]
    valid_from = _instant(data, "valid_from", who.at)
    assert valid_from is not None
    async with request.app[DB]() as db:
        grant = await grants.create(
            db,
            kind=body.choice(data, "kind", grants.KINDS),
            grantee_user_id=body.text(grantee, "user_id", max_len=32, required=False) or None,
            grantee_site_id=body.text(grantee, "site_id", max_len=32, required=False) or None,
            objects=objects,
            valid_from=valid_from,
            valid_until=_instant(data, "valid_until", None),
            reason=body.text(data, "reason", max_len=2000),
            by=user.id,
            at=who.at,
        )
        await db.commit()
        rows = await grants.objects_of(db, [grant.id])
    return web.json_response(grant_json(grant, rows.get(grant.id, []), who.at), status=201)


@routes.post("/api/v1/grants/{id}/revoke")
async def revoke_grant(request: web.Request) -> web.Response:
    who = await caller(request)
    user = who.require_user(*GRANTING_ROLES)
    async with request.app[DB]() as db:
        grant = await grants.revoke(db, request.match_info["id"], by=user.id, at=who.at)
        await db.commit()
        rows = await grants.objects_of(db, [grant.id])
    return web.json_response(grant_json(grant, rows.get(grant.id, []), who.at))
