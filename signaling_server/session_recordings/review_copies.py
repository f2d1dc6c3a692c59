"""De-identified review copies of recording media, for readers who see recordings DEIDENTIFIED (trainers; the
access policy decides). A cleanup context owns the one worker.

A trainer's ``GET /api/v1/recordings/{id}/media?segment=k`` is answered with the segment's **review copy**: the
same video with the burned-in patient banner black in every frame and the same timestamps, the voice kept
(recordings/masked_video.py `write_review_copy`). It is made on the first de-identified request for a whole
(complete) file, once, by this worker (one copy at a time in a thread, at most :data:`MAX_WAITING` queued), and
kept beside the recording as ``<data>/recordings/<id>/review/media[.k].mp4`` (0600 in 0700 folders; it goes
wherever the recording goes). Until it is there the request is answered 409 ``review_copy_pending`` with
Retry-After. A copy that fails leaves a record ``review/media[.k].mp4.failed`` (JSON: reason, time, attempts) and is
answered 503 ``review_copy_failed`` with Retry-After until its backoff (:func:`backoff_seconds`) has passed; the next
request then tries again. The original is never served to a de-identified reader. Identified readers get the
original, as recorded and as received so far.

A copy's state is computed in one place, :func:`copy_state`, from the disk and this process's queue::

    absent ──first de-identified request──▶ pending ──made──▶ ready
                                              └──failed──▶ failed ──backoff over, next request──▶ pending
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from aiohttp import web

from recordings import masked_video
from recordings.errors import RecordingsError
from recordings.private_files import make_private_dirs, write_private
from recordings.store import RecordingStore
from signaling_server import errors
from signaling_server.appkeys import SETTINGS
from signaling_server.outbox import backoff

log = logging.getLogger(__name__)

FOLDER = "review"
MAX_WAITING = 16  # copies queued behind the running one; past that a request is told to come back, not queued
PENDING_RETRY_SECONDS = 2  # what a pending answer's Retry-After says: the page polls about this often
FIRST_BACKOFF, MAX_BACKOFF = 60, 3600  # seconds before a failed copy is tried again: doubling per attempt


class CopyState(StrEnum):
    ABSENT = "absent"
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Failure:
    reason: str
    at: float  # time.time() of the attempt that failed
    attempts: int


def backoff_seconds(attempts: int) -> int:
    """How long a copy that failed `attempts` times waits before the next try."""
    first, cap = timedelta(seconds=FIRST_BACKOFF), timedelta(seconds=MAX_BACKOFF)
    return int(backoff(max(1, attempts), first, cap).total_seconds())


def copy_state(ready: bool, queued: bool, failure: Failure | None, now: float) -> CopyState:
    """The copy's state (see the module docstring): a made copy wins; a queued or running one is pending; a failure
    stands until its backoff is over, after which the copy is absent again (the next request queues it)."""
    if ready:
        return CopyState.READY
    if queued:
        return CopyState.PENDING
    if failure is not None and now < failure.at + backoff_seconds(failure.attempts):
        return CopyState.FAILED
    return CopyState.ABSENT


class ReviewCopyStopped(Exception):
    """Raised in the copy's thread when the server shuts down: the copy stops and leaves nothing."""


class ReviewCopies:
    """The review copies under the recording store's folders, and the one worker that makes them."""

    def __init__(self, store: RecordingStore) -> None:
        self.store = store
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(MAX_WAITING)
        self.queued: set[tuple[str, str]] = set()  # waiting in the queue or being made
        self._stopping = threading.Event()
        self._worker: asyncio.Task[None] | None = None
        self._making: asyncio.Task[None] | None = None

    def path(self, recording_id: str, name: str) -> Path:
        return self.store.path(recording_id, name).parent / FOLDER / name

    def _failure_path(self, recording_id: str, name: str) -> Path:
        copy = self.path(recording_id, name)
        return copy.with_name(copy.name + ".failed")

    def _on_disk(self, recording_id: str, name: str) -> tuple[bool, Failure | None]:
        return self.path(recording_id, name).is_file(), _read_failure(self._failure_path(recording_id, name))

    async def state(self, recording_id: str, name: str) -> tuple[CopyState, Failure | None]:
        ready, failure = await asyncio.to_thread(self._on_disk, recording_id, name)
        return copy_state(ready, (recording_id, name) in self.queued, failure, time.time()), failure

    async def ready_copy(self, recording_id: str, name: str) -> Path:
        """The review copy's path when it is made; else queue it (unless queued, or the queue is full) and raise
        ReviewCopyPending, or ReviewCopyFailed while a failure's backoff runs."""
        state, failure = await self.state(recording_id, name)
        if state is CopyState.READY:
            return self.path(recording_id, name)
        if state is CopyState.FAILED:
            assert failure is not None
            wait = round(failure.at + backoff_seconds(failure.attempts) - time.time())
            raise errors.ReviewCopyFailed(f"the de-identified copy of {name} could not be made: {failure.reason}", wait)
        key = (recording_id, name)
        if state is CopyState.ABSENT and key not in self.queued and not self.queue.full():  # two asks at once: one
            self.queued.add(key)
            self.queue.put_nowait(key)
            log.info("recording %s: review copy of %s queued", recording_id, name)
        raise errors.ReviewCopyPending(
            f"the de-identified copy of {name} is being made for your review: ask again shortly",
            PENDING_RETRY_SECONDS,
        )

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="review copies")

    async def _run(self) -> None:
        while True:
            recording_id, name = await self.queue.get()
            self._making = asyncio.create_task(self._make(recording_id, name), name=f"review copy {recording_id}")
            try:
                await asyncio.shield(self._making)  # close() cancels the loop and waits for the copy itself
            finally:
                self.queued.discard((recording_id, name))

    async def _make(self, recording_id: str, name: str) -> None:
        source, copy = self.store.path(recording_id, name), self.path(recording_id, name)
        failed = self._failure_path(recording_id, name)

        def progress(_: float) -> None:  # called in the worker thread
            if self._stopping.is_set():
                raise ReviewCopyStopped("the server stopped while making the copy")

        started = time.monotonic()
        try:
            await asyncio.to_thread(masked_video.write_review_copy, source, copy, progress)
        except ReviewCopyStopped:
            log.info("recording %s: review copy of %s stopped with the server", recording_id, name)
        except (RecordingsError, OSError) as exc:
            await asyncio.to_thread(_record_failure, failed, _without_paths(str(exc), source.parent))
        except Exception as exc:
            log.exception("recording %s: review copy of %s failed", recording_id, name)
            reason = f"internal error: {_without_paths(str(exc), source.parent)}"
            await asyncio.to_thread(_record_failure, failed, reason)
        else:
            failed.unlink(missing_ok=True)
            log.info("recording %s: review copy of %s made in %.1f s", recording_id, name, time.monotonic() - started)

    async def close(self) -> None:
        """Stop the copy being made (at its next frames) and the worker."""
        self._stopping.set()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._making is not None:
            await self._making  # its thread raises at its next progress report


REVIEW_COPIES = web.AppKey("review_copies", ReviewCopies)


def _without_paths(reason: str, folder: Path) -> str:
    """The reason as a reader may see it: the server's folders left out (the decoder names the file it opened)."""
    return reason.replace(f"{folder}/", "").replace(str(folder.parent.parent), "…")


def _read_failure(path: Path) -> Failure | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Failure(str(data["reason"]), float(data["at"]), int(data["attempts"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # a torn record: as one failed attempt now
        return Failure("the failure record is unreadable", time.time(), 1)


def _record_failure(path: Path, reason: str) -> None:
    before = _read_failure(path)
    attempts = before.attempts + 1 if before is not None else 1
    make_private_dirs(path.parent)
    write_private(path, json.dumps({"reason": reason[:500], "at": time.time(), "attempts": attempts}).encode())
    log.warning("review copy %s failed (attempt %s): %s", path.name.removesuffix(".failed"), attempts, reason)


async def review_copies(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the review copies' worker; a copy being made is stopped at shutdown."""
    copies = ReviewCopies(RecordingStore(app[SETTINGS].data_dir / "recordings"))
    app[REVIEW_COPIES] = copies
    copies.start()
    yield
    await copies.close()
