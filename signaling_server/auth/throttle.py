"""Sign-in throttling: exponential backoff per account and per client address, and one attempt at a time per
account.

The state is kept in memory, in this process. The decision to let an attempt through is taken and recorded before
the first `await`, so thirty attempts sent at once see each other: one checks its password, the others are
refused (a row read then written in the database would let all thirty pass the check together). A throttled
attempt costs a dictionary look-up: no database round trip, no write, no Argon2. The price: a restart forgets the
counters, and several server processes each keep their own. When the server runs as several processes (Redis is
there for it), this class is the seam: the same two questions (may this attempt run? record its outcome) become
Redis `INCR`/`PEXPIRE` on the same keys.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from signaling_server import errors
from signaling_server.appkeys import CLOCK, SETTINGS


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


class Attempt:
    """One admitted sign-in attempt: report `failed()` or `succeeded()`; leaving the block ends it either way."""

    def __init__(self, throttle: LoginThrottle, keys: tuple[str, ...]) -> None:
        self._throttle, self._keys = throttle, keys

    def failed(self) -> None:
        for key in self._keys:
            self._throttle._fail(key)

    def succeeded(self) -> None:
        self._throttle._forget(self._keys[0])  # the account's slate; the address keeps its count (see module doc)


class LoginThrottle:
    def __init__(self, clock: Callable[[], datetime], policy: Policy | None = None) -> None:
        self.clock = clock
        self.policy = policy or Policy()
        self._records: OrderedDict[str, _Record] = OrderedDict()

    @contextmanager
    def attempt(self, username: str, address: str) -> Iterator[Attempt]:
        """Admit one attempt for `username` from `address`, or raise TooManyAttempts (429 with Retry-After)."""
        account, client = f"user:{username.casefold()}", f"addr:{address}"
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

    def _fail(self, key: str) -> None:
        now = self.clock()
        record = self._record(key, now)
        record.failures += 1
        record.last_failure = now
        free = self.policy.account_free if key.startswith("user:") else self.policy.address_free
        if record.failures > free:
            delay = min(self.policy.max_delay, self.policy.first_delay * 2 ** (record.failures - free - 1))
            record.blocked_until = now + timedelta(seconds=delay)

    def _forget(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.failures, record.blocked_until, record.last_failure = 0, None, None


THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last address it forwarded."""
    remote = request.remote or "unknown"
    if remote in request.app[SETTINGS].trusted_proxies:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return remote[:64]


def login_throttle(app: web.Application) -> LoginThrottle:
    return LoginThrottle(lambda: app[CLOCK]())
