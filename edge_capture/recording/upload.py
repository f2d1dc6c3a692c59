"""Upload without loss: every recording in the edge's folder goes to the server in chunks, during and after the
session, and stays on the edge's disk until the server has confirmed all of it.

One uploader per agent. On start it cuts torn tails (:func:`~edge_capture.recording.spool.recover`) and then
passes over every consultation folder, again and again (every ``poll_seconds`` while anything is left, or at
once when woken)::

    create the recording (idempotent) ─▶ for each file: ask the server's offset, send what is readable from there
        (whole fragments / lines while the recorder writes; all of it once the file is closed), chunk by chunk,
        each with its SHA-256; then the whole file's size and SHA-256 ─▶ when every file is whole, nobody records
        and the consultation is over: end ─▶ the server says complete ─▶ the folder is deleted

A 409 names the server's offset and the upload goes on from there; a whole-file mismatch restarts that file from
0. A dead link or a 5xx stops the pass and retries with exponential backoff. Killing the agent at any moment loses
nothing: the next start resumes at the server's offsets. The files on the edge's disk are sealed
(edge_capture/sealing/); the uploader reads their plaintext through one view per file and sends that, so the wire
protocol and the server's checks are unchanged. A file that fails authentication is never sent: its folder becomes
``damaged`` and stays on disk. ``max_bytes_per_second`` keeps the upload from taking
the uplink the live video needs. Each folder's upload state (new, uploading, complete, refused) is computed and moved
in one place: :class:`~edge_capture.recording.spool.FolderState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from edge_capture.errors import OffsetRefused, SealError, ServerError
from edge_capture.recording.api import RecordingApi
from edge_capture.recording.mp4 import probe_duration
from edge_capture.recording.spool import (
    FolderState,
    UploadState,
    Writing,
    data_files,
    hash_file,
    read_chunk,
    readable_end,
    recover,
)
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import SealedReader
from recordings.private_files import private_dir

logger = logging.getLogger(__name__)

OPEN_STATES = ("requested", "live")


@dataclass
class _File:
    offset: int | None = None  # the server's, once asked
    boundary: int = 0  # the readable end found last time: the next scan starts there
    view: SealedReader | None = None  # the plaintext, opened once and refreshed as the file grows

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None


@dataclass
class _Job:
    folder: Path
    state: FolderState
    files: dict[str, _File] = field(default_factory=dict)
    checked_at: float = -1e9  # when the consultation's state was last asked

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()


@dataclass
class UploadStats:
    bytes_sent: int = 0
    chunks_sent: int = 0
    files_completed: int = 0
    recordings_completed: int = 0
    offset_corrections: int = 0
    checksum_restarts: int = 0
    last_error: str | None = None


class RecordingUploader:
    def __init__(
        self,
        root: Path,
        api: RecordingApi,
        *,
        keys: Keyring,
        chunk_bytes: int = 1 << 20,
        max_bytes_per_second: float | None = None,
        poll_seconds: float = 1.0,
        check_seconds: float = 5.0,
        keep_uploaded: bool = False,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        self.root, self.api, self.keys = root, api, keys
        self.chunk_bytes, self.max_bytes_per_second = chunk_bytes, max_bytes_per_second
        self.poll_seconds, self.check_seconds, self.keep_uploaded = poll_seconds, check_seconds, keep_uploaded
        self.base_delay, self.max_delay = base_delay, max_delay
        self.writing = Writing()
        self.live: set[str] = set()  # consultations a session is recording right now
        self.stats = UploadStats()
        self._jobs: dict[str, _Job] = {}
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()  # ends a backoff early: the link is back
        self._task: asyncio.Task[None] | None = None
        self._next_slot = 0.0

    async def start(self) -> None:
        await asyncio.to_thread(private_dir, self.root)
        left = await asyncio.to_thread(recover, self.root, self.keys)
        if left:
            logger.info("recordings: %s left by an earlier run to upload: %s", len(left), ", ".join(left))
        self._task = asyncio.create_task(self._run(), name="recording-uploader")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in self._jobs.values():
            job.close()

    def wake(self) -> None:
        self._wake.set()

    def retry_now(self) -> None:
        """The link to the server is back (the edge rejoined a room): end a backoff and go on at once."""
        self._retry.set()
        self._wake.set()

    # ---- the loop ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                pending = await self._pass()
                failures = 0
            except Exception as exc:  # a dead link, a 5xx, a full disk, or a bug: keep everything, try again later
                if not isinstance(exc, aiohttp.ClientError | OSError | TimeoutError | ServerError):
                    logger.exception("recordings: upload pass failed")
                failures += 1
                self.stats.last_error = str(exc) or type(exc).__name__
                delay = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
                logger.warning("recordings: upload paused %.1f s after %s", delay, exc)
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), delay)
                if self._retry.is_set():
                    failures = 0
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds if pending else None)

    async def _pass(self) -> bool:
        """One pass over every folder; True while anything is left to do."""
        folders = sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        pending = False
        for folder in folders:
            try:
                pending = await self._sync(folder) or pending
            except SealError as exc:
                await self._damaged(folder, exc)
            except ServerError as exc:
                if exc.status >= 500 or exc.status in (401, 408, 429):
                    raise  # the server or the credential, not this recording: back off as a whole
                logger.warning("recording %s: the server refused %s", folder.name, exc)
                self.stats.last_error = str(exc)
                pending = True
                if exc.status == 404:  # the server lost the recording: start it over there, from this copy
                    await self._forget(folder)
        return pending

    async def _sync(self, folder: Path) -> bool:
        cid = folder.name
        job = self._jobs.get(cid)
        if job is None:
            job = self._jobs[cid] = _Job(folder, await asyncio.to_thread(FolderState.load, folder))
        if job.state.upload_state in (UploadState.REFUSED, UploadState.COMPLETE, UploadState.DAMAGED):
            return False
        if job.state.upload_state is UploadState.NEW and not await self._create(job):
            return False
        writing = self.writing.names(cid)
        names = await asyncio.to_thread(data_files, folder)
        for name in names:
            if name not in job.state.complete:
                await self._sync_file(job, name, final=name not in writing)
        if cid in self.live or writing or any(n not in job.state.complete for n in names):
            return True
        if await asyncio.to_thread(data_files, folder) != names:
            return True  # a recorder made a segment while this pass sent the others: not the end yet
        return await self._finish(job, names)

    async def _damaged(self, folder: Path, exc: SealError) -> None:
        """A file failed authentication or was sealed under a key this edge lacks: nothing more of the folder is
        sent; it stays on disk for someone to look at."""
        job = self._jobs.pop(folder.name, None)
        state = job.state if job is not None else await asyncio.to_thread(FolderState.load, folder)
        if job is not None:
            job.close()
        state.move(UploadState.DAMAGED, reason=f"{exc.code}: {exc.message}")
        self.stats.last_error = str(exc)
        await asyncio.to_thread(state.save, folder)
        logger.error("recording %s: not uploaded any further, kept on disk: %s", folder.name, exc)

    async def _forget(self, folder: Path) -> None:
        job = self._jobs.pop(folder.name, None)
        if job is not None:
            job.close()
            job.state.move(UploadState.NEW)
            await asyncio.to_thread(job.state.save, folder)

    async def _create(self, job: _Job) -> bool:
        try:
            recording = await self.api.create(job.state.consultation_id)
        except ServerError as exc:
            if exc.status not in (403, 404, 409):
                raise
            job.state.move(UploadState.REFUSED, reason=f"{exc.code}: {exc.message}")
            await asyncio.to_thread(job.state.save, job.folder)
            logger.warning("recording %s: refused by the server, kept on disk: %s", job.folder.name, exc)
            return False
        job.state.move(UploadState.UPLOADING, recording_id=str(recording["id"]))
        await asyncio.to_thread(job.state.save, job.folder)
        logger.info("recording %s: server recording %s", job.folder.name, job.state.recording_id)
        return True

    async def _sync_file(self, job: _Job, name: str, final: bool) -> None:
        rid, path = job.state.recording_id, job.folder / name
        assert rid is not None
        file = job.files.setdefault(name, _File())
        if file.offset is None:
            status = await self.api.file_status(rid, name)
            if status["complete"]:
                await self._completed(job, name, str(status["sha256"]))
                return
            file.offset = int(status["offset"])
        if file.view is None:
            file.view = await asyncio.to_thread(SealedReader, path, self.keys)
        view = file.view
        size = await asyncio.to_thread(view.refresh)
        # not being written yet without its end: a recorder that did not stop in time; only whole fragments go,
        # and the next start's recovery finishes the file
        final = final and view.finished
        end = size if final else await asyncio.to_thread(readable_end, view, path.suffix, file.boundary)
        file.boundary = end
        while file.offset < end:
            length = min(self.chunk_bytes, end - file.offset)
            data, sha = await asyncio.to_thread(read_chunk, view, file.offset, length)
            await self._throttle(len(data))
            try:
                file.offset = await self.api.put_chunk(rid, name, file.offset, data, sha)
            except OffsetRefused as exc:
                logger.info("recording %s: %s resumes at the server's offset %s", job.folder.name, name, exc.offset)
                self.stats.offset_corrections += 1
                file.offset = exc.offset
                if exc.offset > end:
                    break  # the server holds more than this file: the whole-file check below settles it
                continue
            self.stats.bytes_sent += len(data)
            self.stats.chunks_sent += 1
        if final:
            await self._complete(job, name, file)

    async def _complete(self, job: _Job, name: str, file: _File) -> None:
        rid = job.state.recording_id
        assert rid is not None
        assert file.view is not None
        size, sha = await asyncio.to_thread(hash_file, file.view)
        try:
            await self.api.complete(rid, name, size, sha)
        except OffsetRefused as exc:
            file.offset = exc.offset
            if exc.code == "checksum_mismatch":
                self.stats.checksum_restarts += 1
                logger.warning("recording %s: %s did not arrive intact; sending it again", job.folder.name, name)
            return
        await self._completed(job, name, sha)

    async def _completed(self, job: _Job, name: str, sha: str) -> None:
        job.state.complete[name] = sha
        done = job.files.pop(name, None)
        if done is not None:
            done.close()
        await asyncio.to_thread(job.state.save, job.folder)
        self.stats.files_completed += 1
        logger.info("recording %s: %s is whole on the server (%s…)", job.folder.name, name, sha[:12])

    async def _finish(self, job: _Job, names: list[str]) -> bool:
        """Every file is whole and nobody records: end the recording once the consultation is over."""
        now = time.monotonic()
        if now - job.checked_at < self.check_seconds:
            return True
        job.checked_at = now
        if await self.api.consultation_state(job.state.consultation_id) in OPEN_STATES:
            return True  # the agent will rejoin it and record more
        media = [job.folder / n for n in names if n.endswith(".mp4")]
        durations = [await asyncio.to_thread(self._duration, path) for path in media]
        total = sum(d for d in durations if d is not None) if media else None
        assert job.state.recording_id is not None
        recording = await self.api.end(job.state.recording_id, names, total)
        if recording["state"] != "complete":
            return True
        self.stats.recordings_completed += 1
        logger.info("recording %s: complete on the server (%s files)", job.folder.name, len(names))
        job.state.move(UploadState.COMPLETE)
        if self.keep_uploaded:
            await asyncio.to_thread(job.state.save, job.folder)
        else:
            job.close()
            await asyncio.to_thread(shutil.rmtree, job.folder)
            del self._jobs[job.folder.name]
        return False

    def _duration(self, path: Path) -> float | None:
        with SealedReader(path, self.keys) as view:
            return probe_duration(view)

    async def _throttle(self, size: int) -> None:
        rate = self.max_bytes_per_second
        if not rate:
            return
        now = time.monotonic()
        start = max(now, self._next_slot)
        self._next_slot = start + size / rate
        if start > now:
            await asyncio.sleep(start - now)
