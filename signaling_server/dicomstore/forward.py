"""Forwarding every stored instance to the regional PACS by C-STORE (`TELEUS_PACS="AET@host:port"`, off by default).

Ingest adds one `ForwardJob` per new instance in the transaction that indexes it, so nothing stored is ever
forgotten, across restarts too. A background task sends the due jobs in batches, one association per batch, in a
worker thread (pynetdicom blocks). The job's one state machine (:data:`MACHINE`, moved by :func:`record_attempt`):

    pending ──accepted (0000, or a B000/B006/B007 warning)──▶ sent
    pending ──refused or unreachable──▶ pending again, after 30 s, 60 s, 120 s … (at most an hour)
    pending ──the last allowed attempt fails──▶ failed      (attempts and last_error say why)
    failed  ──an admin re-queues it (:func:`requeue`)──▶ pending, due now, attempts back to 0

``sent`` is final. The job's row is its own trail (attempts, last_error: the last failure's, kept until the next
attempt); the moves are logged, there are no events. With `TELEUS_PACS_TLS=1` the association is DICOM TLS
(`tls.py`): the PACS's certificate and host name are checked, and our client certificate is presented.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from aiohttp import web
from pynetdicom import AE
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server.appkeys import DB, SETTINGS
from signaling_server.audit import dicom as audit_dicom
from signaling_server.audit.trail import AUDIT_TRAIL, AuditTrail
from signaling_server.db.models import ForwardJob, Instance
from signaling_server.dicomstore import tls
from signaling_server.dicomstore.blobs import BLOBS, BlobStore
from signaling_server.outbox import CLAIM, Claims, DueLoop, background, retry_at
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)

BATCH = 50  # jobs per association (each may need its own presentation context; at most 128)
MAX_BACKOFF = timedelta(hours=1)
# A batch taken for sending is claimed (outbox.Claims, for outbox.CLAIM): with several server processes on one
# PostgreSQL, each takes the due jobs no other holds, so no job goes out twice. A server that dies while sending
# leaves its batch to be taken again once the claim runs out.
JOBS = Claims(
    ForwardJob,
    ForwardJob.claimed_until,
    due_at=ForwardJob.next_attempt_at,
    pending=(ForwardJob.state == "pending",),
)
ACCEPTED_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})  # stored with coercion / elements discarded / mismatch
_DESTINATION = re.compile(r"^(?P<aet>[^@\\]{1,16})@(?P<host>[^:@]+):(?P<port>\d{1,5})$")


class JobState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


MACHINE = Machine(
    "forward job",
    {JobState.PENDING: {JobState.SENT, JobState.FAILED}, JobState.FAILED: {JobState.PENDING}},
    final={JobState.SENT},
    context="instance",  # pending -> pending is a retry: logged below as the attempt that failed
    log=log,
)


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        found = _DESTINATION.match(text.strip())
        if found is None or not 0 < int(found["port"]) < 65536:
            raise ValueError(f"TELEUS_PACS must look like AET@host:port, not {text!r}")
        return cls(found["aet"].strip(), found["host"], int(found["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Outgoing:
    job_id: int
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    path: Path


Sender = Callable[[Destination, str, list[Outgoing], ssl.SSLContext | None], dict[int, str | None]]


def record_attempt(
    job: ForwardJob, error: str | None, now: datetime, backoff: timedelta, max_attempts: int
) -> JobState:
    """The one place a job changes state after an attempt that failed with `error` (None: accepted)."""
    old = JobState(job.state)
    if old is not JobState.PENDING:  # only a pending job is sent; a failed one waits for an admin
        raise IllegalMove(MACHINE.name, old, JobState.SENT if error is None else JobState.PENDING, str(job.id))
    if error is None:
        new = JobState.SENT
    elif job.attempts + 1 >= max_attempts:
        new = JobState.FAILED
    else:
        new = JobState.PENDING
    job.state = move(MACHINE, old, new, entity_id=job.id, context_id=job.instance_id)
    job.attempts += 1
    job.last_error = error
    job.claimed_until = None
    if new is JobState.PENDING:
        job.next_attempt_at = retry_at(now, job.attempts, backoff, MAX_BACKOFF)
        log.info("forward job %s: attempt %d failed (%s); next at %s", job.id, job.attempts, error, job.next_attempt_at)
    return new


def requeue(job: ForwardJob, now: datetime) -> None:
    """An admin's second chance for a failed job: pending again, due now, with its attempts counted afresh.
    Only a failed job: a pending one is not a repeat of this (IllegalMove)."""
    old = JobState(job.state)
    if old is not JobState.FAILED:
        raise IllegalMove(MACHINE.name, old, JobState.PENDING, str(job.id))
    job.state = move(MACHINE, old, JobState.PENDING, entity_id=job.id, context_id=job.instance_id)
    log.info("forward job %s re-queued after %d attempts (last error: %s)", job.id, job.attempts, job.last_error)
    job.attempts = 0
    job.next_attempt_at = now
    job.claimed_until = None


def send_c_store(
    destination: Destination, calling_ae: str, items: list[Outgoing], context: ssl.SSLContext | None = None
) -> dict[int, str | None]:
    """C-STORE each file over one association (DICOM TLS with `context`); job id → None (accepted) or why not.
    Blocking."""
    # pynetdicom 3.0 leaks its socket when the connection is refused, and logs a TLS failure without saying it to
    # the caller: find out without it first, so that the job's last_error says what went wrong.
    try:
        with socket.create_connection((destination.host, destination.port), timeout=10) as probe:
            if context is not None:
                context.wrap_socket(probe, server_hostname=destination.host).close()
    except ssl.SSLCertVerificationError as exc:
        return {i.job_id: f"TLS with {destination} failed: certificate verify failed: {exc.verify_message}"
                for i in items}  # fmt: skip
    except ssl.SSLError as exc:
        why = exc.reason or str(exc)
        return {i.job_id: f"TLS with {destination} failed: {why}" for i in items}
    except OSError as exc:
        return {i.job_id: f"association with {destination} failed: {exc.strerror or exc}" for i in items}
    ae = AE(calling_ae)
    ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = 30, 120, 60
    for sop_class, syntax in sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in items}):
        ae.add_requested_context(sop_class, [syntax])  # one context per pair: the file is sent as stored
    tls_args = (context, destination.host) if context is not None else None
    try:
        assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls_args)
    except (OSError, ValueError) as exc:  # a TLS context pynetdicom cannot use
        return {i.job_id: f"association with {destination} failed: {exc}" for i in items}
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "failed"
        return {i.job_id: f"association with {destination} {reason}" for i in items}
    results: dict[int, str | None] = {}
    try:
        for item in items:
            if not assoc.is_established:
                results[item.job_id] = "the association ended early"
                continue
            try:
                answer = assoc.send_c_store(item.path)
            except (OSError, ValueError, RuntimeError) as exc:
                results[item.job_id] = f"{type(exc).__name__}: {exc}"
                continue
            status = answer.get("Status") if answer else None
            if status is None:
                results[item.job_id] = "no C-STORE response (timeout or abort)"
            elif status == 0x0000 or status in ACCEPTED_WARNINGS:
                results[item.job_id] = None
            else:
                results[item.job_id] = f"C-STORE status 0x{status:04X} {answer.get('ErrorComment', '')}".strip()
    finally:
        if assoc.is_established:
            assoc.release()
    return results


class Forwarder(DueLoop):
    name = "DICOM forwarder"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        destination: Destination,
        *,
        calling_ae: str,
        backoff_seconds: float,
        max_attempts: int,
        tls: ssl.SSLContext | None = None,
        send: Sender = send_c_store,
        trail: AuditTrail | None = None,
        claim: timedelta = CLAIM,
    ) -> None:
        super().__init__()
        self.sessions, self.blobs, self.destination = sessions, blobs, destination
        self.trail = trail
        self.calling_ae = calling_ae
        self.backoff = timedelta(seconds=backoff_seconds)
        self.max_attempts = max(1, max_attempts)
        self.tls = tls
        self.send = send
        self.claim = claim
        self.retry_pause_seconds = max(1.0, self.backoff.total_seconds())

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def work_due(self) -> int:
        return await self.send_due()

    async def send_due(self, now: datetime | None = None) -> int:
        """Send one batch of due jobs and record the outcome; returns how many were tried."""
        at = now or datetime.now(UTC)
        async with self.sessions() as db:
            claimed = await JOBS.take(
                db,
                at,
                at + self.claim,
                limit=BATCH,
                where=(ForwardJob.destination == str(self.destination),),
                order_by=(ForwardJob.next_attempt_at, ForwardJob.id),
            )
            if not claimed:
                return 0
            query = (
                select(ForwardJob.id, Instance)
                .join(Instance, Instance.id == ForwardJob.instance_id)
                .where(ForwardJob.id.in_(claimed))
                .order_by(ForwardJob.next_attempt_at, ForwardJob.id)
            )
            rows = (await db.execute(query)).all()
            await db.commit()
        items = [
            Outgoing(job_id, i.sop_uid, i.sop_class_uid, i.transfer_syntax_uid, self.blobs.path_for(i.sha256))
            for job_id, i in rows
        ]
        results = await asyncio.to_thread(self.send, self.destination, self.calling_ae, items, self.tls)
        done = datetime.now(UTC)
        async with self.sessions() as db:
            for item in items:
                job = await db.get(ForwardJob, item.job_id)
                if job is not None and job.state == JobState.PENDING:
                    error = results.get(item.job_id, "not attempted")
                    record_attempt(job, error, done, self.backoff, self.max_attempts)
            await db.commit()
        if self.trail is not None:  # each attempt leaves an audit row (not waited for)
            for item in items:
                error = results.get(item.job_id, "not attempted")
                self.trail.submit(audit_dicom.forwarded(self.calling_ae, str(self.destination), item.sop_uid, error))
        return len(items)

    async def soonest_due(self) -> datetime | None:
        async with self.sessions() as db:
            return await JOBS.soonest(db, self.now(), where=(ForwardJob.destination == str(self.destination),))


FORWARDER = web.AppKey("dicom_forwarder", Forwarder)  # only when TELEUS_PACS is set


async def forwarder(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the database and the blob store): the forwarding task, when TELEUS_PACS is set."""
    settings = app[SETTINGS]
    if not settings.pacs:
        yield
        return
    forwarding = Forwarder(
        app[DB],
        app[BLOBS],
        Destination.parse(settings.pacs),
        calling_ae=settings.dicom_ae_title,
        backoff_seconds=settings.forward_backoff_seconds,
        max_attempts=settings.forward_max_attempts,
        tls=tls.pacs_context(settings),
        trail=app.get(AUDIT_TRAIL),
    )
    app[FORWARDER] = forwarding
    async with background(forwarding.run(), "dicom-forwarder"):
        yield
