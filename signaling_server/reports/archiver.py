"""The report archive outbox: an approved report becomes final only once its DICOM SR is stored with its study.

Approval (`service.approve`) moves the report to `archiving` and adds its `ReportArchiveJob` in the same
transaction, so an approved report cannot be forgotten, across restarts too. The archiver (a background task in
its own cleanup context, like the forwarder) takes the due jobs one at a time:

    build the SR (its SOP and Series Instance UIDs were fixed in the job at approval)
    store it through DICOM ingest (blob, index, reading queue and forward job: all or nothing)
    one transaction: report archiving → final (sr_sop_uid, StudyEvent `report_archived`), job pending → done

A failure (the blob store unwritable, the database away, a bug) leaves the job pending with `attempts`,
`last_error` and `next_attempt_at` after `TELEUS_ARCHIVE_BACKOFF_SECONDS` (default 5), doubling per attempt up
to 10 minutes, for as long as it takes: the report stays `archiving` and shows why. Nothing is half-done: ingest
removes the blob it wrote when its transaction fails, and an SR stored by an attempt that died before it could
mark the job done is found by its SOP Instance UID on the next attempt, never stored twice.

The approve route asks for one attempt at once (`archive_now`) and answers 200 when it made the report final,
202 (still archiving) otherwise.

Every attempt first claims its job (`outbox.Claims` on `claimed_until`, for `outbox.CLAIM`), so with several
servers on one database each job is attempted by one server at a time, and an SR is archived once; a server that
dies mid-attempt leaves the job to be taken again once its claim runs out.

The job's state machine (:data:`MACHINE`, moved by :func:`finish`)::

    pending ──the SR is stored──▶ done        (a failed attempt stays pending: retried after the backoff)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server import errors
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.db.models import Instance, Report, ReportArchiveJob, Study, StudyEvent
from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.outbox import CLAIM, Claims, DueLoop, background, retry_at
from signaling_server.reports import archive
from signaling_server.reports.state import ReportState, transition
from signaling_server.states import Machine, move

log = logging.getLogger(__name__)

BATCH = 20
MAX_BACKOFF = timedelta(minutes=10)
IDLE_POLL_SECONDS = 60.0
NOW_TIMEOUT_SECONDS = 10.0  # how long the approve route waits for its attempt before answering 202


class JobState(StrEnum):
    PENDING = "pending"
    DONE = "done"


JOBS = Claims(
    ReportArchiveJob,
    ReportArchiveJob.claimed_until,
    due_at=ReportArchiveJob.next_attempt_at,
    pending=(ReportArchiveJob.state == JobState.PENDING,),
)


MACHINE = Machine("archive job", {JobState.PENDING: {JobState.DONE}}, final={JobState.DONE}, context="report", log=log)


def record_failure(job: ReportArchiveJob, error: str, now: datetime, backoff: timedelta) -> None:
    """A failed attempt: the job stays pending and is tried again after the backoff."""
    job.attempts += 1
    job.last_error = error[:2000]
    job.claimed_until = None
    job.next_attempt_at = retry_at(now, job.attempts, backoff, MAX_BACKOFF)
    log.warning(
        "report %s: archiving attempt %d failed (%s); next at %s",
        job.report_id,
        job.attempts,
        error,
        job.next_attempt_at,
    )


def finish(job: ReportArchiveJob, report: Report, now: datetime, record: Callable[[StudyEvent], object]) -> None:
    """The SR is stored: the report becomes final and the job done (the one place either happens)."""
    transition(report, ReportState.FINAL, now, report.approver_id, record, sr_sop_uid=job.sop_uid)
    report.sr_sop_uid = job.sop_uid
    job.state = move(MACHINE, JobState(job.state), JobState.DONE, entity_id=job.id, context_id=job.report_id)
    job.attempts += 1
    job.last_error = None
    job.claimed_until = None


class Archiver(DueLoop):
    name = "report archiver"
    idle_poll_seconds = IDLE_POLL_SECONDS

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store_sr: Callable[[bytes, str], Awaitable[object]],
        *,
        backoff_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_final: Callable[[Study], None] | None = None,
        claim: timedelta = CLAIM,
    ) -> None:
        """`store_sr(raw, site_id)` is awaited to store one SR (ingest.store_instance in the app); `on_final(study)` is
        called once a report of the study is final (committed)."""
        super().__init__()
        self.on_final = on_final
        self.sessions = sessions
        self.store_sr = store_sr
        self.backoff = timedelta(seconds=backoff_seconds)
        self.clock = clock
        self.claim = claim
        self.retry_pause_seconds = max(1.0, self.backoff.total_seconds())
        self._one_at_a_time = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()

    def now(self) -> datetime:
        return self.clock()

    async def work_due(self) -> int:
        return await self.archive_due()

    async def archive_due(self) -> int:
        """One attempt at each due job (at most BATCH), each claimed just before it; returns how many were tried."""
        tried = 0
        while tried < BATCH:
            async with self._one_at_a_time:
                job_id = await self._claim()
                if job_id is None:
                    break
                await self._attempt_claimed(job_id)
            tried += 1
        return tried

    async def archive_now(self, report_id: str, timeout: float = NOW_TIMEOUT_SECONDS) -> bool:
        """One attempt at this report's job now (the approve route); True when the report is final. An attempt that
        takes longer than `timeout` goes on in the background."""
        async with self.sessions() as db:
            job_id = await db.scalar(select(ReportArchiveJob.id).where(ReportArchiveJob.report_id == report_id))
        if job_id is None:
            return False
        task = asyncio.create_task(self.attempt(job_id), name=f"archive-report-{report_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _: self.wake())  # the task recomputes when to look next (a retry is due)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            return False
        except Exception:  # not even the failure could be recorded (the database away): the task retries
            log.exception("archiving report %s failed", report_id)
            return False

    async def attempt(self, job_id: int) -> bool:
        """Claim the job and store its SR and finish it, or record why not; True when the report is final. A job
        that another server holds is left to it (False, unless it is done already)."""
        async with self._one_at_a_time:  # the route's attempt and the task's never race for one job
            if await self._claim(job_id) is None:
                async with self.sessions() as db:
                    job = await db.get(ReportArchiveJob, job_id)
                    return job is not None and job.state == JobState.DONE
            return await self._attempt_claimed(job_id)

    async def _claim(self, job_id: int | None = None) -> int | None:
        """Claim this pending job (even before its due time: asked for at once), or else the first due one."""
        at = self.clock()
        async with self.sessions() as db:
            if job_id is not None:
                taken = await JOBS.take(db, at, at + self.claim, where=(ReportArchiveJob.id == job_id,), due=False)
            else:
                order = (ReportArchiveJob.next_attempt_at, ReportArchiveJob.id)
                taken = await JOBS.take(db, at, at + self.claim, order_by=order)
            await db.commit()
        return taken[0] if taken else None

    async def _attempt_claimed(self, job_id: int) -> bool:
        try:
            return await self._attempt(job_id)
        except Exception as exc:
            if not isinstance(exc, OSError | errors.TeleusError):  # not the disk, not a refusal: a bug
                log.exception("archive job %s failed unexpectedly", job_id)
            await self._failed(job_id, _reason(exc))
            return False

    async def _attempt(self, job_id: int) -> bool:
        async with self.sessions() as db:
            job = await db.get(ReportArchiveJob, job_id)
            if job is None or job.state == JobState.DONE:
                return job is not None
            report = await db.get(Report, job.report_id)
            study = await db.get(Study, report.study_id) if report is not None else None
            if report is None or study is None:
                raise errors.NotFound(f"report {job.report_id} or its study is gone")
            if not await _stored(db, job.sop_uid):
                raw = await archive.sr_part10(db, report, study, sop_uid=job.sop_uid, series_uid=job.series_uid)
                try:
                    await self.store_sr(raw, study.site_id)
                except errors.InstanceConflict:  # stored meanwhile by an attempt we lost track of: it is there
                    pass
            finish(job, report, self.clock(), db.add)
            await db.commit()
        if self.on_final is not None:
            self.on_final(study)
        log.info("report %s: SR %s stored; the report is final", job.report_id, job.sop_uid)
        return True

    async def _failed(self, job_id: int, reason: str) -> None:
        async with self.sessions() as db:
            job = await db.get(ReportArchiveJob, job_id)
            if job is not None and job.state == JobState.PENDING:
                record_failure(job, reason, self.clock(), self.backoff)
                await db.commit()

    async def soonest_due(self) -> datetime | None:
        async with self.sessions() as db:
            return await JOBS.soonest(db, self.clock())

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _stored(db: AsyncSession, sop_uid: str) -> bool:
    return await db.scalar(select(Instance.id).where(Instance.sop_uid == sop_uid)) is not None


def _reason(exc: Exception) -> str:
    if isinstance(exc, errors.TeleusError):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, OSError):
        return f"storage failed: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


ARCHIVER = web.AppKey("report_archiver", Archiver)


async def report_archiver(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after `dicom_store`): the archiving task, which also finishes jobs left from before a restart."""
    store = app[DICOM_STORE]

    async def store_sr(raw: bytes, site_id: str) -> None:
        await store_instance(store, raw, site_id=site_id, received_via="report")

    hub = app[CHANGES]
    archiver = Archiver(
        app[DB],
        store_sr,
        backoff_seconds=app[SETTINGS].archive_backoff_seconds,
        on_final=lambda study: hub.changed(changes.of_study(study)),
    )
    app[ARCHIVER] = archiver
    try:
        async with background(archiver.run(), "report-archiver"):
            yield
    finally:
        await archiver.close()
