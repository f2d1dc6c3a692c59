"""Several server processes behind one address: the Redis they share, and this process's heartbeat in it.

With `TELEUS_REDIS_URL` unset there is one process and nothing here runs: rooms, the sign-in throttle and the
socket limits keep their state in memory. With it set, every process

- names itself (`server_id`, random per start) and keeps the key `{prefix}server:{server_id}` alive, refreshed
  every `HEARTBEAT_SECONDS` with a time to live of `ALIVE_SECONDS`: a process that is killed stops refreshing it,
  and the others treat what it held (room members, open sockets) as gone once the key has expired;
- puts every key it writes under `prefix` (`TELEUS_REDIS_PREFIX`, default `teleus:`), so several deployments or
  parallel tests can share one Redis.

The features that share state (`signaling/redis_rooms.py`, `auth/throttle.py`, `signaling/limits.py`) take the
`Cluster` from `CLUSTER`; docs/SERVERS.md says what is shared and what stays per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling_server.appkeys import SETTINGS

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
ALIVE_SECONDS = 3.0  # a server whose heartbeat is older is gone: its members leave their rooms


class Cluster:
    def __init__(self, redis: Redis, prefix: str, server_id: str | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.server_id = server_id or "s" + secrets.token_hex(5)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def beat(self) -> None:
        await self.redis.set(self.key("server", self.server_id), "1", px=int(ALIVE_SECONDS * 1000))

    async def alive(self, server_ids: Iterable[str]) -> set[str]:
        """Which of `server_ids` still beat (this process always does)."""
        wanted = sorted(set(server_ids) - {self.server_id})
        if not wanted:
            return {self.server_id}
        async with self.redis.pipeline(transaction=False) as pipe:
            for server in wanted:
                pipe.exists(self.key("server", server))
            answers = await pipe.execute()
        return {self.server_id, *(s for s, n in zip(wanted, answers, strict=True) if n)}

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.beat()
            except (RedisError, OSError) as exc:  # Redis away: the others will soon take us for gone
                log.warning("server %s: heartbeat to Redis failed: %s", self.server_id, exc)
            await asyncio.sleep(HEARTBEAT_SECONDS)


CLUSTER = web.AppKey("cluster", Cluster)


def connect(url: str, prefix: str) -> Cluster:
    return Cluster(Redis.from_url(url, decode_responses=True, socket_connect_timeout=5), prefix)


async def cluster(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the shared Redis and this process's heartbeat, when `redis_url` is set (else nothing)."""
    settings = app[SETTINGS]
    if not settings.redis_url:
        yield
        return
    shared = connect(settings.redis_url, settings.redis_prefix)
    await shared.beat()  # fails the start at once when Redis is not there
    app[CLUSTER] = shared
    log.info("server %s: sharing rooms and limits through Redis (prefix %r)", shared.server_id, shared.prefix)
    task = asyncio.create_task(shared._heartbeat(), name="cluster-heartbeat")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(RedisError, OSError):
        await shared.redis.delete(shared.key("server", shared.server_id))
    await shared.redis.aclose()
