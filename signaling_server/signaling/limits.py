"""Per-user limits on the signaling sockets, and log lines that summarise a flood instead of repeating it.

- `SocketQuota`: how many signaling sockets one user (or one edge device) holds open at once, counted from before
  the upgrade to the end of the handler; one more is refused with 429 `too_many_sockets` before the upgrade.
- `TokenBucket`: `rate` tokens a second up to `burst`; a message takes one. Every socket has one for all its
  messages; every user (or device) has one for chat lines, shared by all their sockets. Over the limit the
  message is answered `rate_limited` and does nothing else (no relay, no broadcast, no database write).
- `LogThrottle`: the first event of an interval is logged at once, the rest are counted and summed up in one
  line when the next event comes after the interval (so a flood writes one line per interval, not one per message).

Every clock is injected (`clock`: monotonic seconds), so tests move time instead of waiting for it.

With several server processes (`TELEUS_REDIS_URL`, `cluster.py`) the socket quota and the chat bucket are shared
through Redis (:func:`shared_limits` switches them on), so a user holds at most the limit of sockets on all servers
together and chats at the rate on all of them together:

- sockets: the hash `sockets:{holder}` has one field per server process, its count of the holder's sockets. One
  Lua script sums the fields of the servers whose heartbeat key lives (and deletes the others' fields: a killed
  server's sockets stop counting once its heartbeat expires, ≤ 3 s), refuses at the limit, or adds one to this
  server's field; all in one step, so two servers cannot both take the last place. Closing a socket takes one off.
  Every `SWEEP_SECONDS` a sweep sets this server's fields to the sockets it holds (so a lost decrement, or a socket
  taken while Redis was away, is set right), and removes dead servers' fields and empty hashes (the set
  `socket-holders` lists them).
- chat: the hash `chat:{holder}` holds the bucket (tokens and when they were counted, on the servers' wall
  clock `wall`) and expires once it would be full again; one Lua script refills it and takes a token.

Redis away: the socket quota and the chat bucket of this process decide alone (the in-memory ones above), and a
warning is logged; the limits are there against floods, not for billing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from redis.exceptions import RedisError

from signaling_server import errors
from signaling_server.auth.identity import Caller
from signaling_server.cluster import CLUSTER, Cluster
from signaling_server.outbox import background
from signaling_server.settings import Settings

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0

# KEYS: the holder's hash, the set of holders. ARGV: limit, this server, the heartbeat keys' prefix, the holder.
_TAKE_SOCKET = """
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local server = fields[i]
  if server == ARGV[2] or redis.call('EXISTS', ARGV[3] .. server) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], server)
  end
end
if total >= tonumber(ARGV[1]) then
  return -1
end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('SADD', KEYS[2], ARGV[4])
return total + 1
"""
# KEYS: the holder's hash. ARGV: this server.
_GIVE_SOCKET = """
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return left
"""
# KEYS: the holder's hash, the set of holders. ARGV: the heartbeat keys' prefix, the holder.
_SWEEP_HOLDER = """
local fields = redis.call('HKEYS', KEYS[1])
for _, server in ipairs(fields) do
  if redis.call('EXISTS', ARGV[1] .. server) == 0 then
    redis.call('HDEL', KEYS[1], server)
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 0
"""
# KEYS: the bucket's hash. ARGV: rate a second, burst, now (wall seconds), time to live (ms).
_TAKE_TOKEN = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens, at = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return taken
"""

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
    """This process's count of each holder's sockets (alone, or beside the shared count in Redis)."""

    per_user: int
    per_device: int
    held: Counter[str] = field(default_factory=Counter)
    shared: Cluster | None = None  # set by `shared_limits` when several servers share Redis

    def limit_of(self, key: str) -> int:
        return self.per_device if key.startswith("device:") else self.per_user

    @contextlib.asynccontextmanager
    async def hold(self, who: Caller) -> AsyncIterator[None]:
        """Count one socket for `who` while the block runs; TooManySockets (429) when they are at their limit (on
        every server together, when shared)."""
        key = holder_of(who)
        limit = self.limit_of(key)
        if self.held[key] >= limit:
            raise errors.TooManySockets(f"at most {limit} signaling sockets at once; close one first")
        counted = await self._take_shared(key, limit)
        self.held[key] += 1
        try:
            yield
        finally:
            self.held[key] -= 1
            if self.held[key] <= 0:
                del self.held[key]
            if counted:  # to its end even if the handler is cancelled again meanwhile
                await asyncio.shield(self._give_shared(key))

    async def _take_shared(self, key: str, limit: int) -> bool:
        """One more socket in Redis (True), or TooManySockets; False when not shared or Redis is away."""
        cluster = self.shared
        if cluster is None:
            return False
        try:
            total = await cluster.redis.eval(
                _TAKE_SOCKET,
                2,
                cluster.key("sockets", key),
                cluster.key("socket-holders"),
                limit,
                cluster.server_id,
                cluster.key("server", ""),
                key,
            )
        except (RedisError, OSError) as exc:
            log.warning("socket limit of %s counted on this server only (Redis: %s)", key, exc)
            return False
        if int(total) < 0:
            raise errors.TooManySockets(f"at most {limit} signaling sockets at once; close one first")
        return True

    async def _give_shared(self, key: str) -> None:
        cluster = self.shared
        if cluster is None:
            return
        try:
            await cluster.redis.eval(_GIVE_SOCKET, 1, cluster.key("sockets", key), cluster.server_id)
        except (RedisError, OSError) as exc:  # counted until this server's heartbeat stops
            log.warning("a closed socket of %s is still counted in Redis: %s", key, exc)

    async def sweep(self) -> None:
        """Set this server's counts to the sockets it holds (a decrement lost while Redis was away, or a socket
        taken then, is counted right again); remove the counts of servers that stopped beating, and the holders
        left with none."""
        cluster = self.shared
        if cluster is None:
            return
        holders = cluster.key("socket-holders")
        listed = {str(key) for key in await cluster.redis.smembers(holders)}
        held = dict(self.held)  # one moment's count: a socket taken meanwhile is set right by the next sweep
        async with cluster.redis.pipeline(transaction=False) as pipe:
            for key in listed | set(held):
                if held.get(key, 0) > 0:
                    pipe.hset(cluster.key("sockets", key), cluster.server_id, held[key])
                    pipe.sadd(holders, key)
                else:
                    pipe.hdel(cluster.key("sockets", key), cluster.server_id)
            await pipe.execute()
        for key in listed:
            await cluster.redis.eval(
                _SWEEP_HOLDER, 2, cluster.key("sockets", key), holders, cluster.key("server", ""), key
            )


class SignalLimits:
    """Every per-user limit of the signaling sockets, from the settings; `clock` may be replaced by tests."""

    PRUNE_AT = 1024  # chat buckets kept before the full ones (as good as new) are dropped

    def __init__(self, settings: Settings, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall  # the shared chat buckets' clock: every server's must agree (NTP)
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

    async def chat_line(self, who: Caller) -> bool:
        """Take a token for one chat line of `who` (False: over the rate), from the bucket every server shares when
        there is Redis, else from this process's (:meth:`chat_bucket`)."""
        cluster = self.sockets.shared
        if cluster is None:
            return self.chat_bucket(who).take()
        rate, burst = self.settings.chat_lines_per_second, self.settings.chat_line_burst
        full_after_ms = int(1000 * (burst / rate if rate > 0 else 86400.0)) + 1000
        try:
            taken = await cluster.redis.eval(
                _TAKE_TOKEN, 1, cluster.key("chat", holder_of(who)), rate, burst, f"{self.wall():.6f}", full_after_ms
            )
        except (RedisError, OSError) as exc:
            log.warning("chat rate of %s counted on this server only (Redis: %s)", holder_of(who), exc)
            return self.chat_bucket(who).take()
        return bool(int(taken))


SIGNAL_LIMITS = web.AppKey("signal_limits", SignalLimits)


async def shared_limits(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after `cluster`): with Redis, the socket quota and chat buckets are shared by every server, and
    a sweep removes the socket counts of servers that stopped beating."""
    cluster = app.get(CLUSTER)
    if cluster is None:
        yield
        return
    limits = app[SIGNAL_LIMITS]
    limits.sockets.shared = cluster

    async def sweeper() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await limits.sockets.sweep()
            except (RedisError, OSError) as exc:
                log.warning("the sweep of socket counts failed: %s", exc)

    async with background(sweeper(), "socket-count-sweep"):
        yield
    limits.sockets.shared = None
