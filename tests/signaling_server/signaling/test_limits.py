"""signaling_server.signaling.limits with an injected clock: token buckets, the socket quota, log throttling."""

from __future__ import annotations

import logging

import pytest

from signaling_server import errors
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Device, User
from signaling_server.settings import Settings
from signaling_server.signaling.limits import LogThrottle, SignalLimits, SocketQuota, TokenBucket
from tests.clocks import FakeClock


def test_a_bucket_gives_its_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.advance(3600)  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3
    assert not bucket.full
    clock.advance(1.5)
    assert bucket.full


def test_a_clock_that_goes_back_gives_no_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    assert bucket.take()
    clock.advance(-100)
    assert not bucket.take()


def _user(user_id: str) -> Caller:
    return Caller("cookie", user=User(id=user_id, username=user_id, name=user_id, role="sonographer"))


def _device(device_id: str) -> Caller:
    return Caller("device", device=Device(id=device_id, name=device_id))


async def test_the_socket_quota_counts_per_user_and_per_device_and_frees_on_exit() -> None:
    quota = SocketQuota(per_user=2, per_device=1)
    async with quota.hold(_user("u1")), quota.hold(_user("u1")), quota.hold(_user("u2")), quota.hold(_device("d1")):
        with pytest.raises(errors.TooManySockets) as refused:
            async with quota.hold(_user("u1")):
                pass
        assert (refused.value.status, refused.value.code) == (429, "too_many_sockets")
        with pytest.raises(errors.TooManySockets):
            async with quota.hold(_device("d1")):
                pass
        assert quota.held == {"user:u1": 2, "user:u2": 1, "device:d1": 1}
    assert not quota.held
    with pytest.raises(RuntimeError):  # an error inside still frees the socket
        async with quota.hold(_user("u1")):
            raise RuntimeError("handler failed")
    assert not quota.held


def test_chat_buckets_are_per_user_and_shared_by_their_sockets() -> None:
    clock = FakeClock()
    limits = SignalLimits(Settings(chat_line_burst=2, chat_lines_per_second=1.0), clock=clock)
    first, again = limits.chat_bucket(_user("u1")), limits.chat_bucket(_user("u1"))
    assert first is again and first is not limits.chat_bucket(_user("u2"))
    assert limits.chat_bucket(_device("d1")) is not limits.chat_bucket(_user("d1"))


def test_full_chat_buckets_are_forgotten_when_many_users_have_chatted() -> None:
    clock = FakeClock()
    limits = SignalLimits(Settings(chat_line_burst=2, chat_lines_per_second=1.0), clock=clock)
    busy = limits.chat_bucket(_user("busy"))
    busy.take()
    for n in range(SignalLimits.PRUNE_AT):
        limits.chat_bucket(_user(f"u{n}"))
    assert limits.chat_bucket(_user("busy")) is busy  # not full: kept, with its debt
    assert len(limits._chat) < SignalLimits.PRUNE_AT


def test_a_flood_logs_one_line_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(logging.getLogger("tests.flood"), interval=10.0, clock=clock)
    caplog.set_level(logging.INFO, logger="tests.flood")
    for n in range(1000):
        throttle.event(logging.WARNING, "dropped", "dropped message %d", n)
        clock.advance(0.001)
    throttle.event(logging.WARNING, "refused", "refused message")
    clock.advance(10)
    throttle.event(logging.WARNING, "dropped", "dropped message %d", 1001)
    throttle.event(logging.WARNING, "dropped", "dropped message %d", 1002)
    throttle.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "dropped message 0",
        "999 dropped, 1 refused more in the last 11 s, not logged one by one",
        "dropped message 1001",
        "1 dropped more, not logged one by one",
    ]
