"""The teaching export over REST (RECORDINGS.md §5, docs/SESSIONS.md; the export itself: recordings/teaching.py).

    POST /api/v1/recordings/{id}/teaching-export      start exporting a complete recording → 202 (trainers, admins)
    GET  /api/v1/teaching-exports/{id}                its state, and its manifest once done (trainers, admins)
    GET  /api/v1/teaching-exports/{id}/files/{name}   one exported file (trainers, admins)
    GET  /api/v1/teaching/instances/{sop_uid}         a stored image, de-identified (experts, trainers, admins)

Exports live under ``<data_dir>/teaching/<export id>/``. The server makes one at a time, in a worker thread; a
second asked meanwhile is refused (409 ``export_busy``). An export's state is computed in one place
(:func:`export_state`) from its folder and this process's job: ``done`` when the manifest is there (it is written
last), ``running`` or ``failed`` as the job says, and ``failed`` ("interrupted") for a folder without a manifest
that no job of this process is writing (the server stopped during the export). A job of this process moves once
(:data:`EXPORT_MACHINE`, by :meth:`ExportJob.finish`)::

    running ──the manifest is written──▶ done
        └────an error, or the server stops──▶ failed (+ reason)

``done`` and ``failed`` are final; the export has no event trail (its folder and manifest are its record).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from recordings import teaching
from recordings.errors import RecordingsError
from recordings.store import parse_name
from signaling_server import errors
from signaling_server.appkeys import BLOBS, DB, SETTINGS, TEACHING_EXPORTS
from signaling_server.auth.identity import caller
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore import access
from signaling_server.session_recordings import service
from signaling_server.session_recordings.files import store_of
from signaling_server.session_recordings.state import RecordingState
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

EXPORT_ROLES = ("trainer", "admin")
STILL_ROLES = ("expert", "trainer", "admin")
INTERRUPTED = "interrupted"
_EXPORT_ID = re.compile(r"[0-9a-f]{32}")
_CONTENT_TYPES = {".mp4": "video/mp4", ".jsonl": "application/x-ndjson", ".json": "application/json"}


class ExportState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


EXPORT_MACHINE = Machine(
    "teaching export",
    {ExportState.RUNNING: {ExportState.DONE, ExportState.FAILED}},
    final={ExportState.DONE, ExportState.FAILED},
    idempotent=False,  # a job finishes once
    context="recording",
    log=log,
)


class ExportStopped(Exception):
    """Raised in the export's thread when the server shuts down: the export stops and cleans up."""


@dataclass
class ExportJob:
    """One export this process started (mutable: the worker thread moves `progress` on)."""

    id: str
    recording_id: str
    state: ExportState = ExportState.RUNNING
    progress: float = 0.0
    reason: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def finish(self, new: ExportState, reason: str = "") -> None:
        try:
            self.state = move(EXPORT_MACHINE, self.state, new, entity_id=self.id, context_id=self.recording_id)
        except IllegalMove as refused:
            raise errors.InvalidTransition(refused.message) from refused
        self.reason = reason
        if reason:
            log.info("teaching export %s (recording %s) %s: %s", self.id, self.recording_id, new, reason)


def export_state(job: ExportJob | None, has_manifest: bool) -> tuple[ExportState, str]:
    """(state, reason) of an export whose folder exists: see the module docstring."""
    if has_manifest:
        return ExportState.DONE, ""
    if job is None or job.state is ExportState.DONE:  # done, yet the manifest is gone: as good as interrupted
        return ExportState.FAILED, INTERRUPTED
    return job.state, job.reason


class TeachingExports:
    """The export folders under `root` and the jobs of this process; at most one job runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs: dict[str, ExportJob] = {}
        self._stopping = threading.Event()

    def folder(self, export_id: str) -> Path:
        path = self.root / export_id
        if not _EXPORT_ID.fullmatch(export_id) or not path.is_dir():
            raise errors.NotFound("no such teaching export")
        return path

    def running(self) -> ExportJob | None:
        return next((j for j in self.jobs.values() if j.state is ExportState.RUNNING), None)

    def start(self, recording_id: str, source: Path) -> ExportJob:
        busy = self.running()
        if busy is not None:
            raise errors.ExportBusy(f"teaching export {busy.id} is running: the server makes one at a time")
        job = ExportJob(uuid.uuid4().hex, recording_id)
        dest = self.root / job.id
        dest.mkdir(parents=True)
        self.jobs[job.id] = job
        job.task = asyncio.create_task(self._run(job, source, dest), name=f"teaching export {job.id}")
        log.info("teaching export %s (recording %s): started", job.id, recording_id)
        return job

    async def _run(self, job: ExportJob, source: Path, dest: Path) -> None:
        def progress(fraction: float) -> None:  # called in the worker thread
            if self._stopping.is_set():
                raise ExportStopped("the server stopped during the export")
            job.progress = fraction

        try:
            await asyncio.to_thread(teaching.export_recording, source, dest, progress)
        except (RecordingsError, errors.TeleusError, ExportStopped) as exc:
            job.finish(ExportState.FAILED, str(exc))
        except Exception as exc:
            log.exception("teaching export %s (recording %s) failed", job.id, job.recording_id)
            job.finish(ExportState.FAILED, f"internal error: {exc}")
        else:
            job.finish(ExportState.DONE)

    async def status(self, export_id: str) -> dict[str, Any]:
        folder = self.folder(export_id)
        job = self.jobs.get(export_id)
        manifest = await asyncio.to_thread(_read_manifest, folder)
        state, reason = export_state(job, manifest is not None)
        progress = 1.0 if state is ExportState.DONE else job.progress if job is not None else None
        return {
            "id": export_id,
            "recording_id": job.recording_id if job is not None else None,
            "state": state,
            "progress": None if progress is None else round(progress, 3),
            "reason": reason or None,
            "manifest": manifest,
        }

    async def close(self) -> None:
        """Stop the running export (at its next frames) and wait for its thread."""
        self._stopping.set()
        tasks = [job.task for job in self.jobs.values() if job.task is not None and not job.task.done()]
        await asyncio.gather(*tasks, return_exceptions=True)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / teaching.MANIFEST
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


async def teaching_exports(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the exports under data_dir/teaching; a running export is stopped at shutdown."""
    exports = TeachingExports(app[SETTINGS].data_dir / "teaching")
    app[TEACHING_EXPORTS] = exports
    yield
    await exports.close()


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
    site_id = access.reading_site(who)
    uid = request.match_info["sop_uid"]
    async with request.app[DB]() as db:
        query = select(Instance, Study).join(Study, Study.id == Instance.study_id).where(Instance.sop_uid == uid)
        row = (await db.execute(query)).first()
    if row is None or (site_id is not None and row[1].site_id != site_id):
        raise errors.NotFound(f"no instance {uid[:64]}")
    raw = await request.app[BLOBS].read(row[0].sha256)
    data = await asyncio.to_thread(teaching.export_still, raw)
    headers = {"Content-Disposition": 'attachment; filename="teaching.dcm"', "Cache-Control": "no-store"}
    return web.Response(body=data, content_type="application/dicom", headers=headers)
