"""The edge's persistent upload outbox: a capture is on disk before anyone is told it was taken.

``enqueue`` writes ``<SOPInstanceUID>.dcm`` into the spool folder atomically (a hidden temporary file,
fsync, rename, fsync of the folder), so a power cut leaves either the whole file or nothing. The file is sealed
(AES-256-GCM under the spool key, edge_capture/sealing/): the clinic PC's disk never holds the image or the
patient's name in clear; the uploader opens it just before sending, and a file that fails authentication (or
whose key this edge lacks) is refused like a file the server refused, never sent. A file an older version
spooled in clear is sealed when the outbox starts. One uploader
task sends the oldest pending file with :class:`~edge_capture.dicom.stow.StowClient` until the server
acknowledges it, then deletes it. A new ``Outbox`` on the same folder picks up whatever is there: an agent
restart loses nothing.

Each file's upload is a small state machine (:data:`MACHINE`, moved only by ``Outbox._transition`` through
:func:`signaling_server.states.move`, logged ``old -> new``; its event trail is the outbox's listeners)::

    pending -> uploading -> acknowledged          (stored, or already held by the server)
                         -> pending               (network, 5xx, 408/429, a credential refused: retried)
                         -> rejected              (the server refused this file: moved to rejected/)

Retries back off exponentially (``base_delay`` doubling up to ``max_delay``, at least the server's
Retry-After) with jitter, for the whole outbox at once (a dead link is one problem, not one per file), and
the failed file goes to the back of the queue so one bad file cannot block the others. A refused file is
moved to ``rejected/`` beside a ``<uid>.json`` holding the reason: kept, never retried by itself. A file the
server failed to process (failure reason 0110H) ``processing_failure_limit`` times in a row is rejected too:
the server's trouble with that one file is no reason to send it for ever (a 5xx or A7xxH, the server's trouble
with everything, is retried without limit).

Enqueueing a SOP Instance UID that is already pending is a no-op (one file, one upload). Callers learn the
outcome from the future :meth:`Outbox.acknowledged` returns, or from listeners added with
:meth:`Outbox.add_listener`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset

from edge_capture.dicom.stow import PROCESSING_FAILURE, StowClient, failure_is_retryable
from edge_capture.dicom.ultrasound import is_valid_uid
from edge_capture.errors import SealError, StowError, UploadRejected
from edge_capture.sealing.keys import Keyring, SpoolKey
from edge_capture.sealing.repairs import seal_in_place
from edge_capture.sealing.sealed import is_sealed, read_sealed, write_sealed
from recordings.private_files import private_dir, private_opener
from signaling_server.states import Machine, move

logger = logging.getLogger(__name__)

SUFFIX = ".dcm"
REJECTED = "rejected"


class UploadState(StrEnum):
    PENDING = "pending"
    UPLOADING = "uploading"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"


MACHINE = Machine(
    "still upload",
    {
        UploadState.PENDING: {UploadState.UPLOADING},
        UploadState.UPLOADING: {UploadState.PENDING, UploadState.ACKNOWLEDGED, UploadState.REJECTED},
    },
    final={UploadState.ACKNOWLEDGED, UploadState.REJECTED},
    idempotent=False,  # one attempt at a time: a move to the same state is a bug
    log=logger,
)


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    rejected: int
    last_error: str | None
    attempts: int  # consecutive failed attempts (0 when the last one succeeded)


Listener = Callable[[str, UploadState, "StowError | None"], None]


def _write_atomically(folder: Path, name: str, data: bytes, key: SpoolKey | None = None) -> Path:
    """``data`` as ``folder/name`` (0600), sealed under ``key`` when given."""
    final = folder / name
    temporary = folder / f".{name}.tmp"
    if key is not None:
        write_sealed(temporary, data, key)  # fsynced
    else:
        with open(temporary, "wb", opener=private_opener) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    os.replace(temporary, final)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def _part10(dataset: Dataset) -> bytes:
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


class Outbox:
    def __init__(
        self,
        folder: str | Path,
        client: StowClient,
        *,
        keys: Keyring,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
        processing_failure_limit: int = 5,
    ) -> None:
        self.folder = Path(folder)
        self.rejected_folder = self.folder / REJECTED
        private_dir(self.folder)
        private_dir(self.rejected_folder)
        self.client, self.keys = client, keys
        self.base_delay, self.max_delay, self.jitter, self._rng = base_delay, max_delay, jitter, rng
        self.processing_failure_limit = max(1, processing_failure_limit)
        self._processing_failures: dict[str, int] = {}  # UID → 0110H answers in a row
        self._queue: list[str] = []  # SOP Instance UIDs, oldest first
        self._states: dict[str, UploadState] = {}
        self._futures: dict[str, asyncio.Future[str]] = {}
        self._writing: dict[str, asyncio.Future[asyncio.Future[str]]] = {}
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()  # ends a backoff early: the link is back
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self.last_error: str | None = None
        self.uploads = 0  # requests sent, for tests and logs

    # -- the public side ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up the spool left by an earlier run, then start uploading."""
        for stale in self.folder.glob(".*.tmp"):
            stale.unlink()  # a write the crash interrupted: its capture was never reported taken
        found = sorted(self.folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime_ns)
        for path in found:
            if not await asyncio.to_thread(is_sealed, path):  # spooled in clear by an older version
                await asyncio.to_thread(seal_in_place, path, self.keys.current)
                logger.info("outbox: %s was in clear (an older version): sealed", path.name)
        for path in found:
            if path.stem not in self._states:  # enqueued before start: already known
                self._register(path.stem)
        if found:
            logger.info("outbox %s: %s files left from an earlier run", self.folder, len(found))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dicom-outbox")

    async def close(self) -> None:
        """Stop uploading; whatever is pending stays on disk for the next start."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def enqueue(self, dataset: Dataset) -> asyncio.Future[str]:
        """Spool the dataset as a Part 10 file (off the event loop). Once this returns the file is on disk.

        Returns the future of its upload (see :meth:`acknowledged`). A UID already pending is not written twice.
        """
        uid = str(dataset.SOPInstanceUID)
        if not is_valid_uid(uid):
            raise ValueError(f"not a valid SOP Instance UID: {uid!r}")
        if uid in self._futures:
            return self._futures[uid]
        writing = self._writing.get(uid)
        if writing is None:
            writing = self._writing[uid] = asyncio.ensure_future(self._spool(uid, dataset))
            writing.add_done_callback(lambda _: self._writing.pop(uid, None))
        return await asyncio.shield(writing)

    async def _spool(self, uid: str, dataset: Dataset) -> asyncio.Future[str]:
        data = await asyncio.to_thread(_part10, dataset)
        await asyncio.to_thread(_write_atomically, self.folder, uid + SUFFIX, data, self.keys.current)
        logger.info("outbox: %s spooled (%.1f MB)", uid, len(data) / 1e6)
        return self._register(uid)

    def acknowledged(self, sop_instance_uid: str) -> asyncio.Future[str]:
        """The pending upload's future: resolves to the UID when the server holds the instance, raises
        UploadRejected if it refused it. KeyError when the UID is not pending."""
        return self._futures[sop_instance_uid]

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def status(self) -> OutboxStatus:
        rejected = sum(1 for _ in self.rejected_folder.glob("*.json"))  # one reason per refused file
        return OutboxStatus(len(self._queue), rejected, self.last_error, self._failures)

    async def _pause(self, delay: float) -> None:
        """Wait out a backoff of ``delay`` seconds, or until :meth:`retry_now`."""
        self._retry.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry.wait(), delay)

    def retry_now(self) -> None:
        """The link to the server is back (the edge rejoined a room): end a backoff and try at once."""
        self._failures = 0
        self._retry.set()

    # -- the uploader ---------------------------------------------------------------------------------------

    def _register(self, uid: str) -> asyncio.Future[str]:
        self._states[uid] = UploadState.PENDING
        self._queue.append(uid)
        future = self._futures[uid] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception never retrieved"
        self._wake.set()
        return future

    def _transition(self, uid: str, new: UploadState, error: StowError | None = None) -> None:
        """The one move of a file's upload (IllegalMove if the machine refuses it); tells the listeners."""
        move(MACHINE, self._states[uid], new, entity_id=uid)
        if error is not None:
            logger.info("upload %s: %s after %s", uid, new, error)
        if new in (UploadState.ACKNOWLEDGED, UploadState.REJECTED):
            del self._states[uid]
            self._processing_failures.pop(uid, None)
            self._queue.remove(uid)
            future = self._futures.pop(uid)
            if new is UploadState.ACKNOWLEDGED:
                future.set_result(uid)
            else:
                assert error is not None
                future.set_exception(UploadRejected(uid, error.code, error.message))
        else:
            self._states[uid] = new
        for listener in self._listeners:
            try:
                listener(uid, new, error)
            except Exception:
                logger.exception("outbox listener failed for %s", uid)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            uid = self._queue[0]
            error = await self._upload(uid)
            if error is None:
                continue
            self._failures += 1
            self._queue.append(self._queue.pop(0))  # to the back: one bad file must not block the rest
            delay = min(self.max_delay, self.base_delay * 2 ** (self._failures - 1))
            delay = max(delay * (1 - self.jitter * self._rng()), min(error.retry_after or 0.0, self.max_delay))
            logger.warning("outbox: %s pending; retry in %.1f s after %s", len(self._queue), delay, error)
            await self._pause(delay)

    async def _upload(self, uid: str) -> StowError | None:
        """One attempt; returns the error that leaves the file pending, None when it left the spool."""
        path = self.folder / (uid + SUFFIX)
        self._transition(uid, UploadState.UPLOADING)
        try:
            error = await self._attempt(uid, path)
            if error is None:
                self._transition(uid, UploadState.ACKNOWLEDGED)
                return None
            self.last_error = str(error)
            if error.blames_file:
                await asyncio.to_thread(self._reject, path, uid, error)
                self._transition(uid, UploadState.REJECTED, error)
                return None
        except asyncio.CancelledError:  # close(): the file stays pending for the next start
            self._transition(uid, UploadState.PENDING)
            raise
        except Exception as unexpected:  # the spool's disk, or a bug: keep the file and try again later
            logger.exception("upload %s: unexpected failure", uid)
            code = "spool_error" if isinstance(unexpected, OSError) else "internal_error"
            error = StowError(code, str(unexpected), retryable=True)
            self.last_error = str(error)
        self._transition(uid, UploadState.PENDING, error)
        return error

    async def _attempt(self, uid: str, path: Path) -> StowError | None:
        """Send one file; None when the server holds it (and it is deleted), else why not."""
        try:
            data = await asyncio.to_thread(read_sealed, path, self.keys)
        except FileNotFoundError:
            return StowError("spool_file_missing", f"{path} vanished from the spool")
        except SealError as refused:  # never sent: kept in rejected/ with the reason, like a file the server refused
            logger.error("outbox: %s", refused)
            return StowError(refused.code, refused.message)
        self.uploads += 1
        try:
            result = await self.client.store({uid: data})
        except StowError as error:
            return error
        if result.acknowledged(uid):
            await asyncio.to_thread(path.unlink)
            self._failures, self.last_error = 0, None
            return None
        reason, teleus = result.failed.get(uid), result.reasons.get(uid)
        failures = self._processing_failures.pop(uid, 0) + 1 if reason == PROCESSING_FAILURE else 0
        if reason is None or failure_is_retryable(reason):  # not listed, or the server's own trouble
            code, message = teleus or ("store_failed", f"failure reason {reason or 0:04X}H")
            if failures >= self.processing_failure_limit:  # with this one file, again and again: give it up
                return StowError(code, f"{message} ({failures} processing failures in a row)", result.status)
            if failures:
                self._processing_failures[uid] = failures
            return StowError(code, message, result.status, retryable=True)
        code, message = teleus or ("store_refused", f"failure reason {reason:04X}H")
        return StowError(code, message, result.status)

    def _reject(self, path: Path, uid: str, error: StowError) -> None:
        reason = {"error": error.code, "message": error.message, "status": error.status, "at": time.time()}
        _write_atomically(self.rejected_folder, uid + ".json", json.dumps(reason).encode())
        if path.exists():
            os.replace(path, self.rejected_folder / path.name)
