"""The teaching-export worker: one export at a time in a worker thread, its jobs and their states (a cleanup
context). The export itself is recordings/teaching.py; the REST routes are training/teaching_routes.py.

Exports live under ``<data_dir>/teaching/<export id>/``. A second export asked while one runs is refused (409
``export_busy``). An export's state is computed in one place (:func:`export_state`) from its folder and this
process's job: ``done`` when the manifest is there (it is written last), ``running`` or ``failed`` as the job says,
and ``failed`` ("interrupted") for a folder without a manifest that no job of this process is writing (the server
stopped during the export). A job of this process moves once (:data:`EXPORT_MACHINE`, by :meth:`ExportJob.finish`)::

    running ──the manifest is written──▶ done
        └────an error, or the server stops──▶ failed (+ reason)

``done`` and ``failed`` are final; the export has no event trail (its folder and manifest are its record).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiohttp import web

from recordings import teaching
from recordings.errors import RecordingsError
from recordings.private_files import DIR_MODE, make_private_dirs
from signaling_server import errors
from signaling_server.appkeys import SETTINGS
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted"
_EXPORT_ID = re.compile(r"[0-9a-f]{32}")


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
        make_private_dirs(self.root)
        os.mkdir(dest, DIR_MODE)
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


TEACHING_EXPORTS = web.AppKey("teaching_exports", TeachingExports)


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
