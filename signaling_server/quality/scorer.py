"""Offline QC of every complete recording, on the server: the session's QC record, one ``qc_results`` row (kind
``offline``) per recording, computed once.

The scorer is a due loop (``outbox.DueLoop``) over the complete recordings that have no offline row yet: when a
recording becomes complete, the recording service (its ``_settle``, the one place that decides it) wakes it
(:meth:`Scorer.submit`), and it also looks every minute, so a server restarted mid-way, one that had scoring off, or
one whose neighbour completed the recording catches up. Before it scores a recording it claims it
(``recordings.qc_claimed_until``, by the outbox's claim rule ``outbox.Claims``) for :data:`CLAIM`, longer than a
scoring may take: with several servers on one database each recording is scored once, and a server that dies while
scoring leaves the recording to be taken again once the claim runs out. One recording is scored at a time, in a child
process (``python -m recordings.cli score FOLDER``, at low priority): a long decode never holds the event loop or the
GIL, and a crash of the decoder on a hostile file costs only that child.

The row's ``metrics`` are the record (:func:`recordings.offline.row_metrics`, the shape of
:mod:`recordings.qc_record`): completeness, image items and medians, link quality, the live alerts, the link's
freezes, the frozen-image, no-contact and dark stretches, all on the session clock, and the total. The review page,
the session score and the dashboard read it (:mod:`.session_qc`). A file that cannot be scored gets a row of kind
``offline_failed`` with the error, so it is not retried on every start and an administrator can see why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from qc.completeness import PROTOCOLS
from recordings.offline import row_metrics
from recordings.store import RecordingStore
from signaling_server.appkeys import DB, QC_WEIGHTS, SETTINGS
from signaling_server.db.models import Consultation, QcResult, Recording
from signaling_server.outbox import Claims, DueLoop, background
from signaling_server.session_recordings.files import RECORDING_COMPLETE, store_of
from signaling_server.session_recordings.state import RecordingState

log = logging.getLogger(__name__)

KIND, FAILED_KIND = "offline", "offline_failed"
TIMEOUT_SECONDS = 3600.0
MAX_OUTPUT_BYTES = 64 << 20
CLAIM = timedelta(seconds=TIMEOUT_SECONDS) + timedelta(minutes=10)  # a scoring ends (or times out) within its claim

SCORED = select(QcResult.consultation_id).where(QcResult.kind.in_((KIND, FAILED_KIND)))
UNSCORED = Claims(
    Recording,
    Recording.qc_claimed_until,
    pending=(Recording.state == RecordingState.COMPLETE, Recording.consultation_id.not_in(SCORED)),
)


class Scorer(DueLoop):
    """The loop that takes the unscored complete recordings one at a time (claimed first) and scores them."""

    name = "offline QC"

    def __init__(
        self,
        app: web.Application,
        store: RecordingStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        claim: timedelta = CLAIM,
    ) -> None:
        super().__init__()
        self._app = app
        self._store = store
        self.clock = clock
        self.claim = claim
        self.scored = 0  # rows written since start (tests and logs)

    def now(self) -> datetime:
        return self.clock()

    def submit(self, recording_id: str) -> None:
        """A recording became complete: look now (the loop finds it in the database, with any others)."""
        self.wake()

    async def work_due(self) -> int:
        recording_id = await self._claim()
        if recording_id is None:
            return 0
        await self._score_claimed(recording_id)
        return 1

    async def soonest_due(self) -> datetime | None:
        async with self._app[DB]() as db:
            return await UNSCORED.soonest(db, self.now())

    async def score(self, recording_id: str) -> None:
        """Score this recording now, unless it is scored already or another scorer holds it."""
        if await self._claim(recording_id) is not None:
            await self._score_claimed(recording_id)

    async def _claim(self, recording_id: str | None = None) -> str | None:
        at = self.now()
        where = () if recording_id is None else (Recording.id == recording_id,)
        async with self._app[DB]() as db:
            taken = await UNSCORED.take(db, at, at + self.claim, where=where, order_by=(Recording.completed_at,))
            await db.commit()
        return taken[0] if taken else None

    async def _score_claimed(self, recording_id: str) -> None:
        """Score a recording this scorer has claimed. A failure that is not the file's (the database away, a bug) is
        logged and leaves the claim to run out: the recording is tried again then."""
        try:
            await self._score(recording_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("offline QC of recording %s failed; tried again when its claim runs out", recording_id)

    async def _score(self, recording_id: str) -> None:
        async with self._app[DB]() as db:
            found = (
                await db.execute(
                    select(Recording, Consultation.exam_type)
                    .join(Consultation, Consultation.id == Recording.consultation_id)
                    .where(Recording.id == recording_id)
                )
            ).first()
            if found is None or found[0].state != RecordingState.COMPLETE:
                return
            recording, exam_type = found
        folder = self._store.root / recording.id
        exam = exam_type if exam_type in PROTOCOLS else None
        kind, metrics = await score_folder(str(folder), exam, self._app.get(QC_WEIGHTS))
        async with self._app[DB]() as db:
            db.add(QcResult(consultation_id=recording.consultation_id, kind=kind, metrics=metrics))
            claimed = await db.get(Recording, recording_id)
            if claimed is not None:
                claimed.qc_claimed_until = None
            await db.commit()
        self.scored += 1
        log.info("offline QC of recording %s: %s", recording_id, kind)


QC_SCORER = web.AppKey("qc_scorer", Scorer)  # only when TELEUS_QC_SCORING is on


async def score_folder(
    folder: str, exam_type: str | None, weights: dict[str, float] | None = None
) -> tuple[str, dict[str, Any]]:
    """``(kind, metrics)`` from ``python -m recordings.cli score`` run on the folder in a child process."""
    command = [sys.executable, "-m", "recordings.cli", "score", folder, "--no-progress", "--indent", "0"]
    if exam_type:
        command += ["--exam", exam_type]
    if weights:
        command += ["--weights", json.dumps(weights)]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _lower_priority(process.pid)
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return FAILED_KIND, {"error": "timeout", "message": f"scoring took longer than {TIMEOUT_SECONDS:.0f} s"}
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    try:
        report = json.loads(out[:MAX_OUTPUT_BYTES] or b"null")
    except ValueError:
        report = None
    if process.returncode == 0 and isinstance(report, dict):
        return KIND, row_metrics(report)
    if isinstance(report, dict) and "error" in report:
        return FAILED_KIND, {"error": str(report["error"]), "message": str(report.get("message", ""))[:500]}
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return FAILED_KIND, {"error": "scorer_crashed", "message": f"exit {process.returncode}: {tail[0][:500]}"}


def _lower_priority(pid: int) -> None:
    """The scorer below the live work. Set from outside once the child runs, never by a `preexec_fn`: Python code
    between fork and exec in this threaded server can deadlock on a lock another thread held at the fork (seen: a
    forked copy of the server stuck on a futex for good, a test run's pipe held open by it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpriority(os.PRIO_PROCESS, pid, 10)


async def qc_scorer(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the scorer runs for as long as the app does, when the settings turn it on."""
    if not app[SETTINGS].qc_scoring:
        yield
        return
    scorer = Scorer(app, store_of(app))
    app[QC_SCORER] = scorer
    app[RECORDING_COMPLETE] = scorer.submit
    async with background(scorer.run(), "offline-qc"):
        yield
