"""The outbox loop's retry schedule and its loop: real asyncio, no database (the job tables' own tests use one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signaling_server.outbox import DueLoop, background, retry_at
from tests.waiting import eventually

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_backoff_doubles_per_failed_attempt_up_to_the_cap() -> None:
    backoff, cap = timedelta(seconds=5), timedelta(minutes=10)
    delays = [retry_at(NOW, n, backoff, cap) - NOW for n in range(1, 10)]
    assert delays[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert delays[-1] == cap
    assert delays == sorted(delays)


def test_a_job_that_failed_for_days_does_not_overflow() -> None:
    # 10 minutes apart for a week is about a thousand attempts: 5 s × 2^999 is far past timedelta's range
    assert retry_at(NOW, 1000, timedelta(seconds=5), timedelta(minutes=10)) == NOW + timedelta(minutes=10)
    assert retry_at(NOW, 0, timedelta(seconds=5), timedelta(minutes=10)) == NOW + timedelta(seconds=5)


class Jobs(DueLoop):
    """Jobs due at given moments; working one removes it."""

    idle_poll_seconds = 30.0
    retry_pause_seconds = 0.01

    def __init__(self, due: list[datetime]) -> None:
        super().__init__()
        self.due = due
        self.worked: list[datetime] = []
        self.fail_once = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def work_due(self) -> int:
        if self.fail_once:
            self.fail_once = False
            raise OSError("database away")
        ready = [d for d in self.due if d <= self.now()]
        for d in ready:
            self.due.remove(d)
            self.worked.append(d)
        return len(ready)

    async def soonest_due(self) -> datetime | None:
        return min(self.due, default=None)


async def test_the_loop_works_what_is_due_waits_for_the_rest_and_wakes_on_demand() -> None:
    jobs = Jobs([NOW])
    jobs.fail_once = True  # the loop survives a failure of its own and looks again
    async with background(jobs.run(), "test-outbox") as task:
        await eventually(lambda: jobs.worked, what="the due job worked")
        assert jobs.worked == [NOW]
        assert await jobs.seconds_to_next() == 30.0  # nothing pending: the idle poll
        later = datetime.now(UTC) + timedelta(hours=1)
        jobs.due.append(later)
        assert 0 < await jobs.seconds_to_next() <= 30.0
        jobs.due.append(NOW)  # committed now and due at once: wake instead of waiting for the poll
        jobs.wake()
        await eventually(lambda: len(jobs.worked) == 2, what="the woken job worked")
        assert jobs.due == [later]
    assert task.cancelled()
