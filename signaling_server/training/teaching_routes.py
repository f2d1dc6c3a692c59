"""The teaching export over REST (RECORDINGS.md §5, docs/SESSIONS.md; the export itself: recordings/teaching.py).

    POST /api/v1/recordings/{id}/teaching-export      start exporting a complete recording → 202 (trainers, admins)
    GET  /api/v1/teaching-exports/{id}                its state, and its manifest once done (trainers, admins)
    GET  /api/v1/teaching-exports/{id}/files/{name}   one exported file (trainers, admins)
    GET  /api/v1/teaching/instances/{sop_uid}         a stored image, de-identified (experts, trainers, admins who
                                                      see its study, trainers every study)

The exports themselves run in the worker of training/teaching_exports.py, one at a time.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import select

from recordings import teaching
from recordings.store import parse_name
from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.session_recordings import service
from signaling_server.session_recordings.files import store_of
from signaling_server.session_recordings.state import RecordingState
from signaling_server.training.teaching_exports import TEACHING_EXPORTS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

EXPORT_ROLES = ("trainer", "admin")
STILL_ROLES = ("expert", "trainer", "admin")
_CONTENT_TYPES = {".mp4": "video/mp4", ".jsonl": "application/x-ndjson", ".json": "application/json"}


@routes.post("/api/v1/recordings/{id}/teaching-export")
async def start_export(request: web.Request) -> web.Response:
    who = await caller(request)
    who.require_user(*EXPORT_ROLES)
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"])
    recording = view.recording
    if recording.state != RecordingState.COMPLETE:
        raise errors.RecordingNotComplete(f"the recording is {recording.state}: only a complete one is exported")
    job = request.app[TEACHING_EXPORTS].start(recording.id, store_of(request.app).root / recording.id)
    answer = await request.app[TEACHING_EXPORTS].status(job.id)
    return web.json_response(answer, status=202, headers={"Location": f"/api/v1/teaching-exports/{job.id}"})


@routes.get("/api/v1/teaching-exports/{id}")
async def export_status(request: web.Request) -> web.Response:
    (await caller(request)).require_user(*EXPORT_ROLES)
    return web.json_response(await request.app[TEACHING_EXPORTS].status(request.match_info["id"]))


@routes.get("/api/v1/teaching-exports/{id}/files/{name}")
async def export_file(request: web.Request) -> web.FileResponse:
    (await caller(request)).require_user(*EXPORT_ROLES)
    name = request.match_info["name"]
    if name != teaching.MANIFEST and parse_name(name) is None:
        raise errors.InvalidRequest("a teaching export's file is manifest.json, media[.k].mp4 or timeline[.k].jsonl")
    exports = request.app[TEACHING_EXPORTS]
    status = await exports.status(request.match_info["id"])
    manifest = status["manifest"]
    if manifest is None:
        raise errors.NotFound(f"the export is {status['state']}: its files are there once it is done")
    if name != teaching.MANIFEST and name not in {f["name"] for f in manifest["files"]}:
        raise errors.NotFound(f"the export has no {name}")
    path = exports.folder(status["id"]) / name
    headers = {
        "Content-Type": _CONTENT_TYPES[path.suffix],
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    }
    return web.FileResponse(path, headers=headers)


@routes.get("/api/v1/teaching/instances/{sop_uid}")
async def teaching_instance(request: web.Request) -> web.Response:
    """A stored image as a de-identified DICOM object (made on each call; nothing is kept)."""
    who = await caller(request)
    who.require_user(*STILL_ROLES)
    uid = request.match_info["sop_uid"]
    async with request.app[DB]() as db:
        query = select(Instance, Study).join(Study, Study.id == Instance.study_id).where(Instance.sop_uid == uid)
        row = (await db.execute(query)).first()
        sight = policy.study_sight(await policy.scope_of(db, who), row[1]) if row is not None else Sight.NONE
    if row is None or sight == Sight.NONE:
        raise errors.NotFound(f"no instance {uid[:64]}")
    raw = await request.app[BLOBS].read(row[0].sha256)
    data = await asyncio.to_thread(teaching.export_still, raw)
    headers = {"Content-Disposition": 'attachment; filename="teaching.dcm"', "Cache-Control": "no-store"}
    return web.Response(body=data, content_type="application/dicom", headers=headers)
