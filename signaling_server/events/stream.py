"""`GET /api/v1/events`: the change notices of a signed-in user as Server-Sent Events (PROTOCOL.md §6).

Why Server-Sent Events and not the signaling WebSocket: the notices go one way, the browser's `EventSource`
reconnects by itself (`retry:`), the stream is plain HTTP through the same cookie, proxy and audit middleware as
every other GET, and a page that is not in a consultation has no WebSocket to ride.

The stream writes `retry:` and a `: ready` comment at once, then a `data:` line per pending topic
(`{"topic": ..., "version": n}`) when changes arrive (hub.py coalesces them), and a `: heartbeat` comment after
`HEARTBEAT_SECONDS` of silence, which keeps proxies from timing it out and finds a vanished client. Every
`SCOPE_SECONDS` the stream recomputes what its user may see and ends when their credential no longer holds; the
browser's reconnection then meets the 401 its other calls meet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

from aiohttp import web

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Scope
from signaling_server.appkeys import CLOCK, DB
from signaling_server.auth.identity import Caller, caller, credential_ended
from signaling_server.events.hub import CHANGES, COALESCE_SECONDS, Listener

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
MAX_STREAMS_PER_USER = 16  # a stream per open tab; more is a runaway script, refused with 429 too_many_streams


async def _scope(request: web.Request, who: Caller) -> Scope | None:
    """What `who` may see now, or None when their credential has ended (revoked since `caller` checked it)."""
    now = request.app[CLOCK]()
    async with request.app[DB]() as db:
        if await credential_ended(db, who, now):
            return None
        return await policy.scope_of(db, replace(who, at=now))


def notices(topics: list[tuple[str, list[str] | None]], versions: dict[str, int]) -> bytes:
    """A `data:` line per topic; a `consultations` notice names the changed consultations' ids when it can."""
    lines = []
    for topic, ids in topics:
        notice: dict[str, object] = {"topic": topic, "version": versions.get(topic, 0)}
        if ids is not None:
            notice["ids"] = ids
        lines.append(json.dumps(notice, separators=(",", ":")))
    return "".join(f"data: {line}\n\n" for line in lines).encode()


@routes.get("/api/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    user = who.require_user()
    hub = request.app[CHANGES]
    if hub.listening(user.id) >= MAX_STREAMS_PER_USER:
        raise errors.TooManyStreams(f"at most {MAX_STREAMS_PER_USER} event streams per user; close a tab")
    scope = await _scope(request, who)
    if scope is None:
        raise errors.Unauthenticated("the session or token has just ended")
    listener = hub.join(scope)  # before the first byte: a change after the client's `open` is never missed
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MILLISECONDS}\n: ready\n\n".encode())
        await _serve(request, response, who, listener)
    except ConnectionError:  # the browser went away (aiohttp's ClientConnectionResetError is one)
        pass
    finally:
        hub.leave(listener)
    log.debug("user %s: event stream ended", user.id)
    return response


async def _serve(request: web.Request, response: web.StreamResponse, who: Caller, listener: Listener) -> None:
    hub = request.app[CHANGES]
    while not hub.closed:
        await listener.wait(HEARTBEAT_SECONDS)
        if hub.closed or listener.ended:
            return
        if listener.scope_stale():
            scope = await _scope(request, who)
            if scope is None:
                return
            listener.rescope(scope)
        topics = listener.take()
        await response.write(notices(topics, hub.versions) if topics else b": heartbeat\n\n")
        if topics:
            await asyncio.sleep(COALESCE_SECONDS)
