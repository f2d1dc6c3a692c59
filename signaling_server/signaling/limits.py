"""Per-user limits on the signaling sockets, and log lines that summarise a flood instead of repeating it.

- `SocketQuota`: how many signaling sockets one user (or one edge device) holds open at once, counted from before
  the upgrade to the end of the handler; one more is refused with 429 `too_many_sockets` before the upgrade.
- `TokenBucket`: `rate` tokens a second up to `burst`; a message takes one. Every socket has one for all its
  messages; every user (or device) has one for chat lines, shared by all their sockets. Over the limit the
  message is answered `rate_limited` and does nothing else (no relay, no broadcast, no database write).
- `LogThrottle`: the first event of an interval is logged at once, the rest are counted and summed up in one
  line when the next event comes after the interval (so a flood writes one line per interval, not one per message).

Every clock is injected (`clock`: monotonic seconds), so tests move time instead of waiting for it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web

from signaling_server import errors
from signaling_server.auth.identity import Caller
from signaling_server.settings import Settings

Clock = Callable[[], float]


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        """One token if there is one (True), else False; the bucket refills meanwhile at `rate` a second."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.burst

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now


class LogThrottle:
    """One log line per `interval` seconds for a repeated event, with the count of the ones not logged."""

    def __init__(self, log: logging.Logger, interval: float = 10.0, clock: Clock = time.monotonic) -> None:
        self.log, self.interval, self._clock = log, interval, clock
        self._since: float | None = None
        self._unlogged: Counter[str] = Counter()

    def event(self, level: int, what: str, message: str, *args: object) -> bool:
        """Log `message % args` if the interval allows (True), else count it under `what` (False)."""
        now = self._clock()
        if self._since is not None and now - self._since < self.interval:
            self._unlogged[what] += 1
            return False
        if self._unlogged and self._since is not None:
            self.log.log(level, "%s more in the last %.0f s, not logged one by one", self._summary(), now - self._since)
            self._unlogged.clear()
        self._since = now
        self.log.log(level, message, *args)
        return True

    def flush(self, level: int = logging.INFO) -> None:
        """Log what is still counted (a socket that ends after a flood)."""
        if self._unlogged:
            self.log.log(level, "%s more, not logged one by one", self._summary())
            self._unlogged.clear()

    def _summary(self) -> str:
        return ", ".join(f"{count} {what}" for what, count in sorted(self._unlogged.items()))


def holder_of(who: Caller) -> str:
    """Whose quota a socket counts against: the user, or else the edge device."""
    if who.user is not None:
        return f"user:{who.user.id}"
    return f"device:{who.device.id}" if who.device is not None else "anonymous"


@dataclass
class SocketQuota:
    per_user: int
    per_device: int
    held: Counter[str] = field(default_factory=Counter)

    @contextlib.contextmanager
    def hold(self, who: Caller) -> Iterator[None]:
        """Count one socket for `who` while the block runs; TooManySockets (429) when they are at their limit."""
        key = holder_of(who)
        limit = self.per_device if key.startswith("device:") else self.per_user
        if self.held[key] >= limit:
            raise errors.TooManySockets(f"at most {limit} signaling sockets at once; close one first")
        self.held[key] += 1
        try:
            yield
        finally:
            self.held[key] -= 1
            if self.held[key] <= 0:
                del self.held[key]


class SignalLimits:
    """Every per-user limit of the signaling sockets, from the settings; `clock` may be replaced by tests."""

    PRUNE_AT = 1024  # chat buckets kept before the full ones (as good as new) are dropped

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.sockets = SocketQuota(settings.max_sockets_per_user, settings.max_sockets_per_device)
        self._chat: dict[str, TokenBucket] = {}

    def now(self) -> float:
        return self.clock()

    def message_bucket(self) -> TokenBucket:
        """A new socket's bucket for all its messages."""
        return TokenBucket(self.settings.signal_messages_per_second, self.settings.signal_message_burst, self.now)

    def chat_bucket(self, who: Caller) -> TokenBucket:
        """The bucket for chat lines of `who`, shared by all their sockets."""
        key = holder_of(who)
        bucket = self._chat.get(key)
        if bucket is None:
            if len(self._chat) >= self.PRUNE_AT:
                self._chat = {k: b for k, b in self._chat.items() if not b.full}
            bucket = self._chat[key] = TokenBucket(
                self.settings.chat_lines_per_second, self.settings.chat_line_burst, self.now
            )
        return bucket


SIGNAL_LIMITS = web.AppKey("signal_limits", SignalLimits)
