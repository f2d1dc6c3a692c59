"""Results back to the community over REST (docs/RESULTS.md):

    GET /api/v1/results[?state=registered,examined,matched,reported,approved]
        → {"results": [Result]}: the newest 300 exams the caller sees in full (a community user: their own site),
          newest first; 400 invalid_request for an unknown state. A Result:
          {"study_id", "study_uid", "site": {"id", "code", "name"}, "patient": {"name", "local_id"}, "accession",
           "modality", "description", "study_date", "state" (the community state, results/states.py),
           "registered_at", "examined_at", "reported_at", "approved_at", "instance_count",
           "report": null | {"id", "version", "state", "approved_at", "approver": {"id", "name"}}}
    GET /api/v1/studies/{id}/dicom.zip   the study's stored objects as application/zip with a DICOMDIR
    GET /api/v1/studies/{id}/jpeg.zip    the first frame of each image as JPEG, zipped

Each is checked by the access policy (404 for an exam the caller does not see in full) and audited (the list as a
search, the downloads as exports). The PDF is `GET /api/v1/reports/{id}/pdf` (reports/routes.py). The list changes
are pushed as `queue` change notices (events/changes.py): the console refetches on them, it never polls.
"""

from __future__ import annotations

import asyncio
import re
from typing import IO, Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.results import bundle, service
from signaling_server.results.service import Result
from signaling_server.results.states import of_study

routes = web.RouteTableDef()
CHUNK = 256 * 1024


def result_json(r: Result) -> dict[str, Any]:
    s, report = r.study, r.report
    shown = None
    if report is not None:
        approver = {"id": r.approver.id, "name": r.approver.name} if r.approver else None
        shown = {
            "id": report.id,
            "version": report.version,
            "state": report.state,
            "approved_at": iso(report.approved_at),
            "approver": approver,
        }
    return {
        "study_id": s.id,
        "study_uid": s.study_uid,
        "site": {"id": r.site.id, "code": r.site.code, "name": r.site.name},
        "patient": {"name": s.patient_name, "local_id": s.local_patient_id},
        "accession": s.accession,
        "modality": s.modality,
        "description": s.description,
        "study_date": s.study_date,
        "state": of_study(s.state).value,
        "registered_at": iso(s.registered_at),
        "examined_at": iso(s.examined_at),
        "reported_at": iso(s.reported_at),
        "approved_at": iso(s.approved_at),
        "instance_count": s.instance_count,
        "report": shown,
    }


@routes.get("/api/v1/results")
async def list_results(request: web.Request) -> web.Response:
    who = await caller(request)
    states = service.parse_states(request.query.get("state", ""))
    async with request.app[DB]() as db:
        results = await service.list_results(db, who, states)
    return web.json_response({"results": [result_json(r) for r in results]}, headers={"Cache-Control": "no-store"})


async def _download(request: web.Request, make: Any, suffix: str) -> web.StreamResponse:
    who = await caller(request)
    blobs = request.app[BLOBS]
    async with request.app[DB]() as db:
        study, rows = await service.objects_of(db, who, request.match_info["id"])
    if not rows:
        raise errors.NotFound("this exam has no images yet")
    objects = [
        bundle.StoredObject(
            blobs.path_for(i.sha256),
            i.sop_uid,
            s.number or 0,
            i.number or 0,
            i.rows is not None and i.columns is not None,
        )
        for i, s in rows
    ]
    archive: IO[bytes] = await asyncio.to_thread(make, objects, blobs.tmp)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{study.accession or study.id}-{suffix}.zip")
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        response.content_length = archive.seek(0, 2)
        archive.seek(0)
        await response.prepare(request)
        while chunk := await asyncio.to_thread(archive.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        archive.close()


@routes.get("/api/v1/studies/{id}/dicom.zip")
async def dicom_zip(request: web.Request) -> web.StreamResponse:
    return await _download(request, bundle.dicom_zip, "dicom")


@routes.get("/api/v1/studies/{id}/jpeg.zip")
async def jpeg_zip(request: web.Request) -> web.StreamResponse:
    return await _download(request, bundle.jpeg_zip, "jpeg")
