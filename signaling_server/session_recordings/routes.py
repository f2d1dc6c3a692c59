"""Session recordings over REST (RECORDINGS.md §1): the edge's resumable upload, and reading them back."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from recordings.session import read_timeline
from recordings.store import file_name, parse_name
from recordings.timeline_fields import TimelineError
from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.access.redaction import Identifiers, redact_json
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.audit.middleware import note as audit_note
from signaling_server.auth.identity import caller
from signaling_server.db.models import RecordingFile
from signaling_server.session_recordings import service
from signaling_server.session_recordings.files import on_complete, store_of
from signaling_server.session_recordings.review_copies import REVIEW_COPIES
from signaling_server.session_recordings.service import RecordingView

routes = web.RouteTableDef()
CHUNK_HEADER = "X-Chunk-SHA256"
READ_BLOCK = 64 * 1024


def file_json(row: RecordingFile) -> dict[str, Any]:
    return {
        "name": row.name,
        "offset": row.received,
        "complete": row.complete,
        "size": row.size if row.complete else None,
        "sha256": row.sha256 if row.complete else None,
        "chunks": row.chunks,
    }


def recording_json(view: RecordingView) -> dict[str, Any]:
    r, c = view.recording, view.consultation
    segments = sorted({parsed[1] for f in view.files if (parsed := parse_name(f.name))})
    return {
        "id": r.id,
        "consultation_id": r.consultation_id,
        "study_uid": c.study_uid,  # the session's stills (a trainer may not read the consultation itself)
        "exam_type": c.exam_type,
        "state": r.state,
        "site": {"id": view.site.id, "code": view.site.code, "name": view.site.name},
        "sonographer": {"id": view.sonographer.id, "name": view.sonographer.name} if view.sonographer else None,
        "expert": {"id": view.expert.id, "name": view.expert.name} if view.expert else None,
        "started_at": iso(r.started_at),
        "ended_at": iso(r.ended_at),
        "completed_at": iso(r.completed_at),
        "duration_seconds": r.duration_seconds,
        "segments": segments,
        "files": [file_json(f) for f in view.files],
    }


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "")
    if not raw.isdigit():
        raise errors.InvalidRequest("offset: the byte offset of the chunk in the file, a whole number")
    return int(raw)


async def _chunk(request: web.Request) -> bytes:
    """The body, read here with the recordings' own limit (the app's client_max_size is for JSON calls)."""
    limit = service.MAX_CHUNK_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge(f"a chunk is at most {limit} bytes")
    data = bytearray()
    async for block in request.content.iter_chunked(READ_BLOCK):
        data += block
        if len(data) > limit:
            raise errors.TooLarge(f"a chunk is at most {limit} bytes")
    return bytes(data)


@routes.post("/api/v1/recordings")
async def create(request: web.Request) -> web.Response:
    device = (await caller(request)).require_device()
    data = await body.json_body(request)
    consultation_id = body.text(data, "consultation_id", max_len=32)
    async with request.app[DB]() as db:
        recording, created = await service.create(db, device, consultation_id)
        view = await service.get_visible(db, await caller(request), recording.id, uploader=True)
    return web.json_response(recording_json(view), status=201 if created else 200)


@routes.get("/api/v1/recordings")
async def list_(request: web.Request) -> web.Response:
    who = await caller(request)
    filters = {key: request.query.get(key, "")[:64] for key in ("site", "sonographer", "state")}
    async with request.app[DB]() as db:
        views = await service.list_visible(db, who, filters)
    return web.json_response({"recordings": [recording_json(v) for v in views]})


@routes.get("/api/v1/recordings/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"], uploader=True)
    return web.json_response(recording_json(view))


@routes.put("/api/v1/recordings/{id}/files/{name}")
async def put_chunk(request: web.Request) -> web.Response:
    device = (await caller(request)).require_device()
    offset = _offset(request)
    sha256 = service.check_sha256(request.headers.get(CHUNK_HEADER), CHUNK_HEADER)
    data = await _chunk(request)
    name = request.match_info["name"]
    async with request.app[DB]() as db:
        new_offset = await service.append_chunk(
            db, store_of(request.app), device, request.match_info["id"], name, offset, data, sha256
        )
    return web.json_response({"name": name, "offset": new_offset, "complete": False})


@routes.get("/api/v1/recordings/{id}/files/{name}")
async def file_status(request: web.Request) -> web.Response:
    who = await caller(request)
    name = service.check_name(request.match_info["name"])
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"], uploader=True)
        row = await service.file_row(db, view.recording.id, name)
    if row is None:
        return web.json_response({"name": name, "offset": 0, "complete": False, "size": None, "sha256": None})
    return web.json_response(file_json(row))


@routes.post("/api/v1/recordings/{id}/files/{name}/complete")
async def complete(request: web.Request) -> web.Response:
    device = (await caller(request)).require_device()
    data = await body.json_body(request)
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise errors.InvalidRequest("size: the file's length in bytes")
    sha256 = service.check_sha256(data.get("sha256"), "sha256")
    async with request.app[DB]() as db:
        row = await service.complete_file(
            db,
            store_of(request.app),
            device,
            request.match_info["id"],
            request.match_info["name"],
            size,
            sha256,
            on_complete(request.app),
        )
    return web.json_response(file_json(row))


@routes.post("/api/v1/recordings/{id}/end")
async def end(request: web.Request) -> web.Response:
    who = await caller(request)
    device = who.require_device()
    data = await body.json_body(request)
    names = data.get("files")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise errors.InvalidRequest("files: the names of every file of the recording")
    duration = data.get("duration_seconds")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0):
        raise errors.InvalidRequest("duration_seconds: a number >= 0, or null")
    async with request.app[DB]() as db:
        recording = await service.end(
            db, store_of(request.app), device, request.match_info["id"], names, duration, on_complete(request.app)
        )
        view = await service.get_visible(db, who, recording.id, uploader=True)
    return web.json_response(recording_json(view))


@routes.post("/api/v1/recordings/{id}/fail")
async def fail(request: web.Request) -> web.Response:
    who = await caller(request)
    device = who.require_device()
    data = await body.json_body(request)
    reason = body.text(data, "reason", max_len=500)
    async with request.app[DB]() as db:
        recording = await service.fail(db, device, request.match_info["id"], reason)
        view = await service.get_visible(db, who, recording.id, uploader=True)
    return web.json_response(recording_json(view))


def _segment(request: web.Request) -> int:
    raw = request.query.get("segment", "0")
    if not raw.isdigit() or int(raw) > 9999:
        raise errors.InvalidRequest("segment: 0 for the first segment, k for media.k.mp4")
    return int(raw)


async def _readable(request: web.Request, kind: str) -> tuple[str, RecordingFile, Sight, Identifiers]:
    """(recording id, file row, the caller's sight, the patient's identifiers) of a segment's file the caller may
    read and the server has bytes of."""
    who = await caller(request)
    name = file_name(kind, _segment(request))
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"])
        row = await service.file_row(db, view.recording.id, name)
        sight = policy.recording_sight(await policy.scope_of(db, who), view.recording, view.consultation)
    if row is None or row.received == 0:
        raise errors.NotFound(f"the server has nothing of {name} yet")
    c = view.consultation
    patient = Identifiers(
        names=(c.patient_name,),
        ids=tuple(i for i in (c.patient_id, c.accession) if i),
        birth_dates=(c.patient_birth_date.replace("-", ""),) if c.patient_birth_date else (),
    )
    return view.recording.id, row, sight, patient


@routes.get("/api/v1/recordings/{id}/media")
async def media(request: web.Request) -> web.FileResponse:
    """The segment's MP4 with HTTP Range for seeking: as received so far (whole fragments only) for identified
    readers; for de-identified readers (trainers) the whole file's review copy, banner masked, once it is made
    (review_copies.py: 409 review_copy_pending until then)."""
    recording_id, row, sight, _ = await _readable(request, "media")
    if sight == Sight.FULL:
        path = store_of(request.app).path(recording_id, row.name)
        audit_note(request, copy="original")
    else:
        audit_note(request, copy="deidentified")
        if not row.complete:
            raise errors.RecordingNotComplete(
                f"{row.name} is still arriving: its de-identified copy is made once the file is whole"
            )
        path = await request.app[REVIEW_COPIES].ready_copy(recording_id, row.name)
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"})


@routes.get("/api/v1/recordings/{id}/timeline")
async def timeline(request: web.Request) -> web.Response:
    """The segment's timeline, decoded and validated: {"header", "events", "torn_tail"}; for a de-identified reader
    (a trainer) every text in it (chat lines, labels) with the patient's identifiers struck out."""
    recording_id, row, sight, patient = await _readable(request, "timeline")
    name = row.name
    path = store_of(request.app).path(recording_id, name)
    try:
        decoded = await asyncio.to_thread(read_timeline, path, skip_bad=False)
    except TimelineError as exc:
        raise errors.NotRenderable(f"{name} is not a valid timeline: {exc.message}") from None
    events = [e.to_dict() for e in decoded.events]
    if sight != Sight.FULL:
        events = redact_json(events, patient)
    return web.json_response({"header": decoded.header.to_dict(), "events": events, "torn_tail": decoded.torn_tail})
