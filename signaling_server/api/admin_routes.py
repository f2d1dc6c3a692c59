"""Sites, users and edge devices (administration), and the edge device's own view of itself."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from signaling_server import admin, errors, ice
from signaling_server.api import body
from signaling_server.api.account_routes import must_change
from signaling_server.api.representations import device_json, site_json, user_json
from signaling_server.appkeys import CLOCK, DB, SETTINGS
from signaling_server.auth.identity import ROLES, caller
from signaling_server.consultations.doorbell import DOORBELL
from signaling_server.db.models import Device, Site, User
from signaling_server.dicomstore import peers
from signaling_server.signaling.rooms import ROOMS

routes = web.RouteTableDef()


@routes.get("/api/v1/config")
async def config(request: web.Request) -> web.Response:
    """The ICE configuration for this caller: STUN/TURN servers with a TURN credential minted for them (user or
    device id) and the transport policy of their site (signaling_server/ice.py)."""
    who = await caller(request)
    subject = who.user or who.device
    assert subject is not None
    site_code = None
    if subject.site_id is not None:
        async with request.app[DB]() as db:
            site = await db.get(Site, subject.site_id)
            site_code = site.code if site is not None else None
    answer = ice.configuration(request.app[SETTINGS], subject.id, site_code, request.app[CLOCK]())
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/sites")
async def list_sites(request: web.Request) -> web.Response:
    """Every site; an admin also sees each site's DICOM AE titles (anyone else could use them to pose as a site)."""
    user = (await caller(request)).require_user()
    async with request.app[DB]() as db:
        sites = (await db.scalars(select(Site).order_by(Site.code))).all()
        titles = await peers.ae_titles_by_site(db) if user.role == "admin" else None
    shown = [site_json(s, None if titles is None else titles.get(s.id, [])) for s in sites]
    return web.json_response({"sites": shown})


@routes.post("/api/v1/sites")
async def create_site(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        site = await admin.create_site(
            db,
            body.text(data, "code", max_len=32),
            body.text(data, "name"),
            body.text(data, "kind", max_len=16, required=False, default="community"),
        )
    return web.json_response(site_json(site, []), status=201)


@routes.post("/api/v1/sites/{id}/kind")
async def set_site_kind(request: web.Request) -> web.Response:
    """What the site is in the district: `{"kind": "community"|"regional"|"hospital"}` → Site."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        site = await admin.set_kind(db, request.match_info["id"], body.text(data, "kind", max_len=16))
    return web.json_response(site_json(site))


@routes.post("/api/v1/sites/{id}/recording")
async def set_site_recording(request: web.Request) -> web.Response:
    """Turn the recording of a site's live consultations on or off: `{"enabled": bool}` → Site."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise errors.InvalidRequest("'enabled' must be true or false")
    async with request.app[DB]() as db:
        site = await admin.set_recording(db, request.match_info["id"], enabled)
    return web.json_response(site_json(site))


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        users = (await db.scalars(select(User).order_by(User.username))).all()
    return web.json_response({"users": [user_json(u) for u in users]})


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        user = await admin.create_user(
            db,
            body.text(data, "username", max_len=64),
            body.text(data, "name"),
            body.choice(data, "role", ROLES),
            body.text(data, "password", max_len=256),
            body.text(data, "site_id", max_len=32, required=False) or None,
            must_change_password=must_change(data),
        )
    return web.json_response(user_json(user), status=201)


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        devices = (await db.scalars(select(Device).order_by(Device.created_at))).all()
    return web.json_response({"devices": [device_json(d) for d in devices]})


@routes.post("/api/v1/devices")
async def register_device(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        device, credential = await admin.register_device(
            db, body.text(data, "site_id", max_len=32), body.text(data, "name")
        )
    return web.json_response({"device": device_json(device), "credential": credential}, status=201)


@routes.post("/api/v1/devices/{id}/rotate")
async def rotate_device(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        device, credential = await admin.rotate_device(db, request.match_info["id"])
    await request.app[ROOMS].disconnect_device(device.id)
    request.app[DOORBELL].ring(device.id)  # its waiting long poll answers (refused: the credential changed)
    return web.json_response({"device": device_json(device), "credential": credential})


@routes.post("/api/v1/devices/{id}/revoke")
async def revoke_device(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        device = await admin.revoke_device(db, request.match_info["id"])
    await request.app[ROOMS].disconnect_device(device.id)
    request.app[DOORBELL].ring(device.id)
    return web.json_response(device_json(device))


@routes.get("/api/v1/devices/me")
async def device_me(request: web.Request) -> web.Response:
    device = (await caller(request)).require_device()
    async with request.app[DB]() as db:
        site = await db.get(Site, device.site_id)
    assert site is not None
    return web.json_response({"device": device_json(device), "site": site_json(site)})
