"""Consultations over REST: request, list, read, end, cancel, chat history, invite an observer."""

from __future__ import annotations

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import chat_json, consultation_json, peer_json
from signaling_server.appkeys import CLOCK, DB
from signaling_server.auth.identity import Caller, caller, credential_ended
from signaling_server.consultations import captures, service
from signaling_server.consultations.doorbell import DOORBELL, MAX_WAIT_SECONDS
from signaling_server.consultations.service import ConsultationView
from signaling_server.consultations.state import OPEN_STATES, ConsultationState
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES, MAX_IDS
from signaling_server.signaling.messages import CHAT_PAGE, MAX_CHAT_PAGE, CaptureStatus, StateChanged
from signaling_server.signaling.rooms import ROOMS

routes = web.RouteTableDef()
_ALL_STATES = tuple(s.value for s in ConsultationState)


def _json(request: web.Request, view: ConsultationView) -> dict[str, object]:
    peers = request.app[ROOMS].peers(view.consultation.id)
    return consultation_json(view, [peer_json(p) for p in peers])


@routes.post("/api/v1/consultations")
async def create(request: web.Request) -> web.Response:
    user = (await caller(request)).require_user()
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        consultation = await service.create(db, user, data)
        view = await service.get_visible(db, await caller(request), consultation.id)
    request.app[DOORBELL].ring(consultation.device_id)
    request.app[CHANGES].changed(changes.of_consultation(consultation))
    return web.json_response(_json(request, view), status=201)


def _states(request: web.Request) -> tuple[str, ...]:
    raw = request.query.get("state", "")
    states = tuple(s for s in raw.split(",") if s) or tuple(s.value for s in OPEN_STATES)
    unknown = [s for s in states if s not in _ALL_STATES]
    if unknown:
        raise errors.InvalidRequest(f"unknown state {unknown[0][:20]!r}; use {', '.join(_ALL_STATES)}")
    return states


def _ids(request: web.Request) -> tuple[str, ...] | None:
    """`?ids=a,b,…`: only these consultations (the rows a change notice named, PROTOCOL.md §6)."""
    raw = request.query.get("ids")
    if raw is None:
        return None
    ids = tuple(dict.fromkeys(i for i in raw.split(",") if i))
    if not ids or len(ids) > MAX_IDS or not all(len(i) <= 32 and i.isascii() and i.isalnum() for i in ids):
        raise errors.InvalidRequest(f"'ids' must be 1 to {MAX_IDS} consultation ids separated by commas")
    return ids


@routes.get("/api/v1/consultations")
async def list_(request: web.Request) -> web.Response:
    who = await caller(request)
    states, ids = _states(request), _ids(request)
    async with request.app[DB]() as db:
        views = await service.list_visible(db, who, states, ids)
    return web.json_response({"consultations": [_json(request, v) for v in views]})


@routes.get("/api/v1/devices/me/consultations")
async def device_consultations(request: web.Request) -> web.Response:
    """The device's open consultations and their `version`; with `?since=V&wait=S` (a long poll, doorbell.py) held
    up to S seconds while the list is still at version V."""
    who = await caller(request)
    device = who.require_device()
    wait = _query_float(request, "wait", 0.0, MAX_WAIT_SECONDS)
    since = request.query.get("since", "")[:64]
    ticket = request.app[DOORBELL].ticket(device.id) if wait > 0 else None  # before the read: no ring is missed
    try:
        views, version = await _device_list(request, who)
        if ticket is not None and version == since and await ticket.wait(wait):
            async with request.app[DB]() as db:
                if await credential_ended(db, who, request.app[CLOCK]()) or not await service.same_secret(db, device):
                    raise errors.DeviceRevoked("this device credential was revoked or replaced")
            views, version = await _device_list(request, who)
    finally:
        if ticket is not None:
            ticket.leave()
    return web.json_response({"consultations": [_json(request, v) for v in views], "version": version})


async def _device_list(request: web.Request, who: Caller) -> tuple[list[ConsultationView], str]:
    async with request.app[DB]() as db:
        views = await service.list_visible(db, who, tuple(s.value for s in OPEN_STATES))
    return views, service.list_version(views)


def _query_float(request: web.Request, name: str, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return low
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails both comparisons
        raise errors.InvalidRequest(f"{name!r} must be a number of seconds from {low:g} to {high:g}")
    return value


@routes.get("/api/v1/consultations/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"])
    return web.json_response(_json(request, view))


async def _close(request: web.Request, view: ConsultationView) -> web.Response:
    request.app[DOORBELL].ring(view.consultation.device_id)
    request.app[CHANGES].changed(changes.of_consultation(view.consultation))
    state = _json(request, view)
    await request.app[ROOMS].close_room(view.consultation.id, StateChanged(state))
    return web.json_response(state)


@routes.post("/api/v1/consultations/{id}/end")
async def end(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.end(db, who, request.match_info["id"])
    return await _close(request, view)


@routes.post("/api/v1/consultations/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.cancel(db, who, request.match_info["id"])
    return await _close(request, view)


@routes.get("/api/v1/consultations/{id}/chat")
async def chat(request: web.Request) -> web.Response:
    """A page of the chat (`?limit=1..200&before=<line id>`): the newest lines first chosen, sent oldest first."""
    who = await caller(request)
    before = _query_int(request, "before", 1, 2**63 - 1, None)
    limit = _query_int(request, "limit", 1, MAX_CHAT_PAGE, CHAT_PAGE)
    assert limit is not None
    async with request.app[DB]() as db:
        view = await service.chat_readable(db, who, request.match_info["id"])
        lines, next_before = await service.chat_page(db, view.consultation.id, before=before, limit=limit)
    return web.json_response({"messages": [chat_json(x) for x in lines], "next_before": next_before})


def _query_int(request: web.Request, key: str, low: int, high: int, default: int | None) -> int | None:
    raw = request.query.get(key, "")
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise errors.InvalidRequest(f"'{key}' must be an integer from {low} to {high}")
    return int(raw)


@routes.post("/api/v1/consultations/{id}/observers")
async def invite(request: web.Request) -> web.Response:
    """The expert or sonographer invites `{"user_id"}` to observe: 201 with the grant's id (until it closes)."""
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        invited = body.text(data, "user_id", max_len=32)
        grant_id = await service.invite(db, who, request.match_info["id"], invited)
        consultation = (await service.get_visible(db, who, request.match_info["id"])).consultation
    request.app[CHANGES].changed(changes.of_consultation(consultation, invited))  # their home lists it now
    return web.json_response({"grant_id": grant_id}, status=201)


@routes.post("/api/v1/consultations/{id}/captures")
async def capture(request: web.Request) -> web.Response:
    """Ask the edge for a still or a clip; 202 with the capture id, then `capture-status` messages in the room."""
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"])
        wanted = captures.check(who, view, data)
        room = request.app[ROOMS].existing(view.consultation.id)
        edge = room.edge() if room is not None else None
        if room is None or edge is None:
            raise errors.EdgeOffline(
                "the edge agent is not connected to this consultation; try again when video is back"
            )
        room.send(edge.id, wanted)
        room.broadcast(CaptureStatus(wanted.id, "requested", None, {"kind": wanted.kind, "by": wanted.by}))
        await service.record_event(
            db, view.consultation.id, "capture_requested", {"id": wanted.id, "kind": wanted.kind}
        )
    return web.json_response({"id": wanted.id, "state": "requested"}, status=202)
