"""One channel of short text messages heard by every server process.

Without Redis there is one process and a relay is nothing: the sender delivers to its own listeners directly.
With several processes (`TELEUS_REDIS_URL`) each message is also published on the Redis channel `{prefix}<name>`
as `"<server_id> <text>"`; every process subscribes, skips its own messages (it delivered them already) and hands
the others to its `deliver` callback. The subscription is confirmed before the app serves anything, so no message
sent after the start is missed; a message Redis loses (Redis away) is logged, and the features that use a relay
keep a slower way to catch up (the edge's wait runs out, the console's safety refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.exceptions import RedisError

from signaling_server.cluster import CLUSTER
from signaling_server.outbox import background

log = logging.getLogger(__name__)

Publish = Callable[[str], None]


@contextlib.asynccontextmanager
async def relay(app: web.Application, name: str, deliver: Callable[[str], None]) -> AsyncIterator[Publish | None]:
    """For a cleanup context: yields the function that tells the other processes a message (`deliver` hears
    theirs), or None when this process is alone."""
    shared = app.get(CLUSTER)
    if shared is None:
        yield None
        return
    channel = shared.key(name)
    outgoing: asyncio.Queue[str] = asyncio.Queue()
    pubsub = shared.redis.pubsub()
    await pubsub.subscribe(channel)
    if await pubsub.get_message(timeout=10.0) is None:
        raise RuntimeError(f"Redis did not confirm the {name} subscription")

    async def publisher() -> None:
        while True:
            text = await outgoing.get()
            try:
                await shared.redis.publish(channel, f"{shared.server_id} {text}")
            except (RedisError, OSError) as exc:
                log.warning("a %s message was not heard by the other servers: %s", name, exc)

    async def listener() -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("server %s: %s messages from Redis interrupted: %s", shared.server_id, name, exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                source, _, text = str(message["data"]).partition(" ")
                if source != shared.server_id:
                    try:
                        deliver(text)
                    except Exception:  # one bad message must not end the listening
                        log.exception("server %s: a %s message could not be delivered", shared.server_id, name)

    try:
        async with background(publisher(), f"{name}-publisher"), background(listener(), f"{name}-listener"):
            yield outgoing.put_nowait
    finally:
        await pubsub.aclose()
