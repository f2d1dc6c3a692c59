"""The outbox pattern's moving parts, shared by every job table that must not forget work (forward jobs, report
archive jobs): a job row is added in the transaction that creates the work, and a background loop takes the due
rows until none is left, sleeping until the soonest retry or until woken.

- :func:`backoff` and :func:`retry_at`: when a failed attempt is tried again (the first wait doubling per attempt,
  capped); the review copies of recordings wait by the same rule;
- :class:`DueLoop`: the loop itself; a subclass says what "the due jobs" are (:meth:`DueLoop.work_due`) and when
  the next one falls due (:meth:`DueLoop.seconds_to_next`);
- :func:`background`: one task for as long as the app runs (the body of a ``cleanup_ctx``), cancelled and awaited
  on the way out.

A failure of the loop itself (the database away) is logged and tried again after a pause; it never ends the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


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
