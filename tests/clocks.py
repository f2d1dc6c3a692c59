"""A clock for tests of code that paces itself or measures idleness: time moves only when the code sleeps or the
test says so, so the assertions hold however busy the machine is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Monotonic seconds that advance by exactly what is slept (plus ``oversleep``, a scheduler's lateness)."""

    def __init__(self, start: float = 1000.0, oversleep: float = 0.0) -> None:
        self.now = start
        self.oversleep = oversleep
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.slept.append(seconds)
        self.now += seconds + self.oversleep

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeWallClock:
    """Aware UTC datetimes that move only when the test says (for workers that schedule by `next_attempt_at`)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
