"""The outbox pattern's moving parts, shared by every job table that must not forget work (forward jobs, report
archive jobs, the recordings the QC scorer has not scored): a job row is added in the transaction that creates the
work, and a background loop takes the due rows until none is left, sleeping until the soonest retry or until woken.

- :func:`backoff` and :func:`retry_at`: when a failed attempt is tried again (the first wait doubling per attempt,
  capped); the review copies of recordings wait by the same rule;
- :class:`DueLoop`: the loop itself; a subclass says what "the due jobs" are (:meth:`DueLoop.work_due`) and when
  the next one falls due (:meth:`DueLoop.seconds_to_next`);
- :func:`background`: one task for as long as the app runs (the body of a ``cleanup_ctx``), cancelled and awaited
  on the way out;
- :class:`Claims`: the one rule by which several server processes on one database share a job table, so that each
  job is worked once: a server takes due rows that no other holds and claims them until a moment (:data:`CLAIM`
  after now unless the worker says otherwise) before it works them. The claim is two statements in one
  transaction::

      SELECT id FROM jobs WHERE <pending> AND <due> AND <not claimed> ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED
      UPDATE jobs SET claimed_until = :until WHERE id IN (…) AND <pending> AND <due> AND <not claimed> RETURNING id

  On PostgreSQL the select locks the rows it returns and skips those another server is claiming at that instant.
  The update reads the conditions again, so it is a compare-and-set: SQLite has no row locks (SQLAlchemy leaves
  ``FOR UPDATE`` out), but a statement is atomic there, so two loops in one process never take one row. Working
  the job ends the claim (done, or failed and due again later); a server that dies while working leaves the claim
  to run out, and the job is taken again then. A worker whose work is one transaction (the escalation timer)
  claims and works in it: its claim column is the job's next due time, and a server that dies mid-way rolls it
  back.

A failure of the loop itself (the database away) is logged and tried again after a pause; it never ends the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=10)  # how long a job taken by one server is left to it before another may take it


def backoff(attempts: int, first: timedelta, cap: timedelta) -> timedelta:
    """The wait after ``attempts`` failed attempts: first × 2^(attempts−1), at most ``cap``. The doubling stops at
    the cap, so a job that has failed for days does not overflow a timedelta."""
    delay = first
    for _ in range(attempts - 1):
        if delay >= cap:
            break
        delay *= 2
    return min(delay, cap)


def retry_at(now: datetime, attempts: int, first: timedelta, cap: timedelta) -> datetime:
    """When attempt number ``attempts + 1`` is due, after ``attempts`` failed ones (:func:`backoff`)."""
    return now + backoff(attempts, first, cap)


class DueLoop(ABC):
    """Work the due jobs until none is left, then wait for the soonest one or a :meth:`wake`."""

    name = "outbox"
    idle_poll_seconds = 60.0  # look again at least this often, even when nothing is pending
    retry_pause_seconds = 1.0  # after the loop itself failed (the database away)

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New jobs were committed: look now instead of at the next poll."""
        self._wake.set()

    @abstractmethod
    async def work_due(self) -> int:
        """One attempt at each due job of one batch; returns how many were tried (0: nothing due)."""

    @abstractmethod
    async def soonest_due(self) -> datetime | None:
        """When the next pending job falls due (None: nothing pending)."""

    @abstractmethod
    def now(self) -> datetime: ...

    async def seconds_to_next(self) -> float:
        soonest = await self.soonest_due()
        if soonest is None:
            return self.idle_poll_seconds
        return min(self.idle_poll_seconds, max(0.05, (soonest - self.now()).total_seconds()))

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await self.work_due():
                    continue
                timeout = await self.seconds_to_next()
            except Exception:  # the database away: keep the task alive and look again later
                log.exception("%s: working the due jobs failed; trying again later", self.name)
                await asyncio.sleep(self.retry_pause_seconds)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` as a task for the body of the ``async with``; cancel it and wait for it on the way out."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class Claims:
    """The claim rule of one job table (see the module's doc): `model` has an integer or string `id`; `pending`
    says which rows are jobs still to work; `due_at` is when each is due (None: as soon as it is pending);
    `claimed_until` is the column a claim is written in (None or past: free)."""

    model: Any
    claimed_until: InstrumentedAttribute[datetime | None]
    due_at: InstrumentedAttribute[datetime] | None = None  # a column: compared in SQL
    pending: Sequence[ColumnElement[bool]] = field(default_factory=tuple)

    def free(self, at: datetime) -> ColumnElement[bool]:
        return or_(self.claimed_until.is_(None), self.claimed_until <= at)

    def due(self, at: datetime) -> ColumnElement[bool]:
        """Pending, due at `at`, and held by nobody: the rows a server may take."""
        conditions = [*self.pending, self.free(at)]
        if self.due_at is not None:
            conditions.append(cast("ColumnElement[bool]", self.due_at <= at))
        return and_(*conditions)

    async def take(
        self,
        db: AsyncSession,
        at: datetime,
        until: datetime,
        *,
        limit: int | None = 1,
        where: Sequence[ColumnElement[bool]] = (),
        order_by: Sequence[Any] = (),
        due: bool = True,
    ) -> list[Any]:
        """Claim up to `limit` rows (those also matching `where`) until `until`; their ids, in no set order. Not
        committed: the caller commits (a claim held while working outside the transaction) or works on in the same
        transaction. `due=False` takes a free pending row even before its due time (a job asked for at once)."""
        condition = and_(self.due(at) if due else and_(*self.pending, self.free(at)), *where)
        candidates = select(self.model.id).where(condition).order_by(*order_by)
        if limit is not None:
            candidates = candidates.limit(limit)
        found = list((await db.scalars(candidates.with_for_update(skip_locked=True))).all())  # SQLite: no locks
        if not found:
            return []
        claim = (
            update(self.model)
            .where(self.model.id.in_(found), condition)
            .values({self.claimed_until.key: until})
            .returning(self.model.id)
            .execution_options(synchronize_session=False)
        )
        return list((await db.scalars(claim)).all())

    async def soonest(
        self, db: AsyncSession, at: datetime, where: Sequence[ColumnElement[bool]] = ()
    ) -> datetime | None:
        """When the next pending row (matching `where`) may be taken: its due time, or the end of its claim if that
        is later (None: nothing pending)."""
        pending = [*self.pending, *where] or [true()]
        if self.due_at is None:
            if await db.scalar(select(self.model.id).where(*pending, self.free(at)).limit(1)) is not None:
                return at
            return await db.scalar(select(func.min(self.claimed_until)).where(*pending))
        later = case(
            (and_(self.claimed_until.is_not(None), self.claimed_until > self.due_at), self.claimed_until),
            else_=self.due_at,
        )
        soonest: datetime | None = await db.scalar(select(func.min(later)).where(*pending))
        return soonest
