"""Sign-in throttling: exponential backoff per account and per client address, and one attempt at a time per
account.

Two stores answer the same two questions (may this attempt run? record its outcome), chosen by the settings:

- `LoginThrottle`, in memory (one server process). The decision to let an attempt through is taken and recorded
  before the first `await`, so thirty attempts sent at once see each other: one checks its password, the others
  are refused (a row read then written in the database would let all thirty pass the check together). A throttled
  attempt costs a dictionary look-up: no database round trip, no write, no Argon2. A restart forgets the counters.
- `RedisLoginThrottle` (several server processes, `TELEUS_REDIS_URL`): the same keys in Redis, so every process
  counts every failure. A failure is `INCR` on `login:fail:{key}` with `PEXPIRE` of the quiet hour; past the free
  failures, `login:block:{key}` is set for the doubled delay (its time to live is the Retry-After); the one
  attempt at a time per account is `SET NX` on `login:busy:{account}` (with an expiry, so a killed process
  cannot hold it). A throttled attempt costs one Redis round trip.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aiohttp import web

from signaling_server import errors
from signaling_server.appkeys import CLOCK, SETTINGS
from signaling_server.cluster import CLUSTER, Cluster


@dataclass(frozen=True)
class Policy:
    """Failures allowed before the backoff starts, the first delay (doubled by each further failure), its cap,
    and how long a key stays quiet before its failures are forgotten."""

    account_free: int = 3  # a person mistypes; a guesser needs thousands
    address_free: int = 20  # a hospital's NAT puts many people behind one address
    first_delay: float = 1.0
    max_delay: float = 15 * 60.0
    forget_after: float = 60 * 60.0
    max_keys: int = 50_000  # the oldest are forgotten first: a spray of invented names cannot grow memory


@dataclass
class _Record:
    failures: int = 0
    blocked_until: datetime | None = None
    last_failure: datetime | None = None
    in_flight: bool = False


class Store(Protocol):
    async def fail(self, key: str) -> None: ...
    async def forget(self, key: str) -> None: ...


class Attempt:
    """One admitted sign-in attempt: report `failed()` or `succeeded()`; leaving the block ends it either way."""

    def __init__(self, throttle: Store, keys: tuple[str, ...]) -> None:
        self._throttle, self._keys = throttle, keys

    async def failed(self) -> None:
        for key in self._keys:
            await self._throttle.fail(key)

    async def succeeded(self) -> None:
        await self._throttle.forget(self._keys[0])  # the account's slate; the address keeps its count (module doc)


class Throttle(Protocol):
    policy: Policy

    def attempt(self, username: str, address: str) -> AbstractAsyncContextManager[Attempt]: ...


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"user:{username.casefold()}", f"addr:{address}"


def _delay(policy: Policy, key: str, failures: int) -> float:
    """The wait after `failures` failures of `key`, 0 while they are free."""
    free = policy.account_free if key.startswith("user:") else policy.address_free
    if failures <= free:
        return 0.0
    return float(min(policy.max_delay, policy.first_delay * 2 ** (failures - free - 1)))


class LoginThrottle:
    def __init__(self, clock: Callable[[], datetime], policy: Policy | None = None) -> None:
        self.clock = clock
        self.policy = policy or Policy()
        self._records: OrderedDict[str, _Record] = OrderedDict()

    @asynccontextmanager
    async def attempt(self, username: str, address: str) -> AsyncIterator[Attempt]:
        """Admit one attempt for `username` from `address`, or raise TooManyAttempts (429 with Retry-After)."""
        account, client = _keys(username, address)
        now = self.clock()
        wait = max(self._wait(account, now), self._wait(client, now))
        if wait:
            raise errors.TooManyAttempts(f"too many failed sign-ins: try again in {wait} s", wait)
        record = self._record(account, now)
        if record.in_flight:  # one password check at a time per account
            raise errors.TooManyAttempts("a sign-in for this account is being checked: try again shortly", 1)
        record.in_flight = True
        try:
            yield Attempt(self, (account, client))
        finally:
            record.in_flight = False

    def _wait(self, key: str, now: datetime) -> int:
        record = self._records.get(key)
        if record is None or record.blocked_until is None or record.blocked_until <= now:
            return 0
        return math.ceil((record.blocked_until - now).total_seconds())

    def _record(self, key: str, now: datetime) -> _Record:
        record = self._records.get(key)
        forget = timedelta(seconds=self.policy.forget_after)
        if record is not None and record.last_failure and now - record.last_failure > forget and not record.in_flight:
            record.failures, record.blocked_until = 0, None
        if record is None:
            record = self._records[key] = _Record()
            while len(self._records) > self.policy.max_keys:
                self._records.popitem(last=False)
        self._records.move_to_end(key)
        return record

    async def fail(self, key: str) -> None:
        now = self.clock()
        record = self._record(key, now)
        record.failures += 1
        record.last_failure = now
        delay = _delay(self.policy, key, record.failures)
        if delay:
            record.blocked_until = now + timedelta(seconds=delay)

    async def forget(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.failures, record.blocked_until, record.last_failure = 0, None, None


class RedisLoginThrottle:
    """The same throttle with its counters in Redis, shared by every server process (see the module docstring).
    Redis keeps the time: the injected clock of the memory store has no part here."""

    BUSY_MS = 30_000  # the longest a password check may hold its account's slot (a killed process's slot expires)

    def __init__(self, cluster: Callable[[], Cluster], policy: Policy | None = None) -> None:
        self._cluster = cluster
        self.policy = policy or Policy()

    def _key(self, kind: str, key: str) -> str:
        return self._cluster().key("login", kind, key)

    @asynccontextmanager
    async def attempt(self, username: str, address: str) -> AsyncIterator[Attempt]:
        account, client = _keys(username, address)
        redis = self._cluster().redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.pttl(self._key("block", account))
            pipe.pttl(self._key("block", client))
            left_ms = max(await pipe.execute())
        if left_ms > 0:
            wait = math.ceil(left_ms / 1000)
            raise errors.TooManyAttempts(f"too many failed sign-ins: try again in {wait} s", wait)
        busy = self._key("busy", account)
        if not await redis.set(busy, "1", nx=True, px=self.BUSY_MS):
            raise errors.TooManyAttempts("a sign-in for this account is being checked: try again shortly", 1)
        try:
            yield Attempt(self, (account, client))
        finally:
            await redis.delete(busy)

    async def fail(self, key: str) -> None:
        redis = self._cluster().redis
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._key("fail", key))
            pipe.pexpire(self._key("fail", key), int(self.policy.forget_after * 1000))
            failures, _ = await pipe.execute()
        delay = _delay(self.policy, key, int(failures))
        if delay:
            await redis.set(self._key("block", key), str(failures), px=int(delay * 1000))

    async def forget(self, key: str) -> None:
        await self._cluster().redis.delete(self._key("fail", key), self._key("block", key))


THROTTLE: web.AppKey[Throttle] = web.AppKey("login_throttle")


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last address it forwarded."""
    remote = request.remote or "unknown"
    if remote in request.app[SETTINGS].trusted_proxies:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return remote[:64]


def login_throttle(app: web.Application) -> Throttle:
    """In memory for one server process; in Redis when the settings name one (the cluster is made at start)."""
    if app[SETTINGS].redis_url:
        return RedisLoginThrottle(lambda: app[CLUSTER])
    return LoginThrottle(lambda: app[CLOCK]())
