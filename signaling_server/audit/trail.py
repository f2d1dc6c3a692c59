"""Appending to the audit trail: one writer task per process, one chain per database.

Callers hand an `Entry` (who, from where, what, the result) to `AuditTrail.append` and wait until its row is
committed; `submit` hands one over without waiting (a request being cancelled, a worker that must not stop). The
writer takes whatever is queued (up to `batch` entries), fills in the study and patient each entry concerns
(subjects.py), and in one transaction reads the chain's head, numbers and hashes the rows (chain.py) and inserts
them. So the chain never forks:

- in one process, the one writer task does every append, in queue order;
- across processes on one PostgreSQL, the transaction first takes a transaction-scoped advisory lock, so a second
  process reads the head only once the first has committed (on SQLite, an UPDATE that matches no row takes the
  database's write lock the same way);
- whatever else happens, `seq` is the primary key: two rows cannot claim the same place. A writer that loses such
  a race (SQLite shared by two processes, say) rolls back and appends again on the new head.

The application never updates or deletes a row; migration 0006 makes the database refuse it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server import errors
from signaling_server.appkeys import DB
from signaling_server.audit import chain
from signaling_server.audit.subjects import subject_of
from signaling_server.db.models import AuditEvent

log = logging.getLogger(__name__)

# The advisory lock key of the chain's head on PostgreSQL (any constant; "teleus audit" in ASCII, shortened).
_LOCK_KEY = 0x7465_6C65_7573_4155
_ATTEMPTS = 3

# Actions that disclose patient data: such a request does not succeed unless its row is committed.
READ_ACTIONS = frozenset({"read", "search", "join", "print", "export"})


@dataclass(frozen=True)
class Actor:
    """Who acted: a signed-in user, an edge device, a DICOM peer (by its AE title), the server itself, or nobody
    known (a request that failed before its caller was known)."""

    kind: str  # "user" | "device" | "ae" | "server" | "anonymous"
    id: str | None = None
    name: str | None = None
    role: str | None = None
    site_id: str | None = None


ANONYMOUS = Actor("anonymous")


@dataclass(frozen=True)
class Entry:
    """One row to be: what the caller knows. The trail adds the number, the time, the subject and the hashes."""

    actor: Actor
    client: str | None  # the peer's address
    action: str  # read, search, join, print, export, write, store, send
    method: str  # the HTTP method, or the DICOM service (C-STORE)
    route: str  # the route's pattern (/api/v1/reports/{id}), or the DICOM service
    status: int  # the HTTP status, or the DICOM status
    outcome: str  # "ok", or the stable error code
    object_kind: str | None = None
    object_id: str | None = None
    study_id: str | None = None
    patient_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    subject_known: bool = False  # study_id and patient_id are resolved already (None: there is none)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


class AuditTrail:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = 200,
    ) -> None:
        self.sessions, self.clock, self.batch = sessions, clock, batch
        self._queue: asyncio.Queue[tuple[Entry | asyncio.Future[Entry], asyncio.Future[int]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def append(self, entry: Entry) -> int:
        """Append one row and wait until it is committed; its `seq`. Raises AuditUnavailable when it cannot be.

        The row's place in the chain is taken now (rows are numbered in the order they are handed over); its
        subject (the study and patient behind the object it names: a few queries) is looked up meanwhile in a task
        of its own, so that many requests look theirs up at once and the one writer only waits for its batch's
        lookups, takes the chain's lock and inserts the batch (under load the subjects, looked up one after another
        by the writer, were what every audited read waited for: bench/load.py)."""
        return await self._enqueue(asyncio.ensure_future(self._with_subject(entry)))

    async def _with_subject(self, entry: Entry) -> Entry:
        if entry.subject_known or (entry.study_id is not None and entry.patient_id is not None):
            return entry
        try:
            async with self.sessions() as db:
                study_id, patient_id = await _subject(db, entry)
        except Exception:  # the writer tries again, and fails the row if the database is away
            log.warning("audit trail: the subject of a row could not be looked up before it was queued", exc_info=True)
            return entry
        return replace(entry, study_id=study_id, patient_id=patient_id, subject_known=True)

    def submit(self, entry: Entry) -> None:
        """Append one row without waiting (a failure is logged)."""
        future = self._enqueue(entry)
        future.add_done_callback(_log_failure)

    def _enqueue(self, entry: Entry | asyncio.Future[Entry]) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(errors.AuditUnavailable("the audit trail is closed (the server is stopping)"))
        else:
            self._queue.put_nowait((entry, future))
        return future

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            pending = [first]
            while len(pending) < self.batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    self._queue.put_nowait(None)  # stop after this batch
                    break
                pending.append(item)
            await self._write(pending)

    async def _write(self, pending: list[tuple[Entry | asyncio.Future[Entry], asyncio.Future[int]]]) -> None:
        entries = [await entry if isinstance(entry, asyncio.Future) else entry for entry, _ in pending]
        failure: Exception | None = None
        for _ in range(_ATTEMPTS):
            try:
                seqs = await self._append_rows(entries)
            except IntegrityError as exc:  # another process took the head first: append again on its new head
                failure = exc
                continue
            except Exception as exc:
                failure = exc
                break
            for (_, future), seq in zip(pending, seqs, strict=True):
                if not future.done():
                    future.set_result(seq)
            return
        log.error("audit trail: %d row(s) could not be appended: %r", len(pending), failure)
        for _, future in pending:
            if not future.done():
                future.set_exception(errors.AuditUnavailable("the audit trail cannot be written just now"))

    async def _append_rows(self, entries: list[Entry]) -> list[int]:
        async with self.sessions() as db:
            subjects = [await _subject(db, entry) for entry in entries]
            if db.get_bind().dialect.name == "postgresql":
                await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            else:  # SQLite: a write that changes nothing takes the database's write lock before the head is read
                await db.execute(text("UPDATE audit_events SET seq = seq WHERE 1 = 0"))
            newest = select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
            head = (await db.execute(newest)).first()
            seq, prev = (head[0], head[1]) if head is not None else (0, chain.GENESIS)
            numbered = []
            for entry, (study_id, patient_id) in zip(entries, subjects, strict=True):
                seq += 1
                fields = _fields(entry, seq, self.clock(), study_id, patient_id)
                digest = chain.row_hash(prev, fields)
                db.add(AuditEvent(**fields, prev_hash=prev, row_hash=digest))
                prev = digest
                numbered.append(seq)
            await db.commit()
        return numbered


async def _subject(db: AsyncSession, entry: Entry) -> tuple[str | None, str | None]:
    if entry.subject_known or (entry.study_id is not None and entry.patient_id is not None):
        return entry.study_id, entry.patient_id
    study_id, patient_id = await subject_of(db, entry.object_kind, entry.object_id)
    return entry.study_id or study_id, entry.patient_id or patient_id


def _fields(entry: Entry, seq: int, at: datetime, study_id: str | None, patient_id: str | None) -> dict[str, Any]:
    actor = entry.actor
    return {
        "seq": seq,
        "at": at.astimezone(UTC),
        "actor_kind": actor.kind,
        "actor_id": _clip(actor.id, 64),
        "actor_name": _clip(actor.name, 200),
        "actor_role": _clip(actor.role, 16),
        "site_id": _clip(actor.site_id, 32),
        "client": _clip(entry.client, 64),
        "action": entry.action,
        "method": entry.method[:16],
        "route": entry.route[:200],
        "object_kind": entry.object_kind,
        "object_id": _clip(entry.object_id, 128),
        "study_id": _clip(study_id, 32),
        "patient_id": _clip(patient_id, 32),
        "detail": dict(entry.detail),
        "status": entry.status,
        "outcome": entry.outcome[:64],
    }


def _log_failure(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("audit trail: a row submitted without waiting was lost: %s", future.exception())


AUDIT_TRAIL = web.AppKey("audit_trail", AuditTrail)


async def audit_trail(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (right after the database): the writer task; at shutdown it writes what is queued, then stops."""
    trail = AuditTrail(app[DB])
    trail.start()
    app[AUDIT_TRAIL] = trail
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await trail.close()


async def verify(sessions: async_sessionmaker[AsyncSession], anchor: tuple[int, str] | None = None) -> chain.Verdict:
    """Check the whole stored chain, oldest row first, a page at a time (the table can be large)."""
    verifier = chain.Verifier(anchor)
    after, page = 0, 1000
    async with sessions() as db:
        while True:
            query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(page)
            rows = (await db.scalars(query)).all()
            for row in rows:
                if not verifier.feed(_as_mapping(row)):
                    return verifier.verdict()
            if len(rows) < page:
                return verifier.verdict()
            after = rows[-1].seq
            db.expunge_all()


def _as_mapping(row: AuditEvent) -> dict[str, Any]:
    return {name: getattr(row, name) for name in (*chain.FIELDS, "prev_hash", "row_hash")}
