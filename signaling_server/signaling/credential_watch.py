"""The credential watch: every `credential_check_seconds`, each open signaling socket's credential is asked again,
and the sockets whose session or token expired or was revoked, or whose user or device was disabled, are closed
(code 4003, or 4001 for a device, PROTOCOL.md §2).

The REST calls that end a credential (logout, revoking a session or token, disabling a user, a password reset)
close the sockets themselves, at once, through the room registry. This watch is for what they cannot see: a
session that simply runs out, and changes made by the `teleus` command or by another server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from signaling_server.appkeys import CLOCK, DB, SETTINGS
from signaling_server.auth.identity import credential_ended
from signaling_server.signaling.rooms import CLOSE_CREDENTIALS_ENDED, CLOSE_GOING_AWAY, ROOMS

log = logging.getLogger(__name__)


async def check_sockets(app: web.Application) -> int:
    """Close the sockets whose credential ended; returns how many."""
    now = app[CLOCK]()
    closed = 0
    async with app[DB]() as db:
        for cid, member in app[ROOMS].members():
            if member.caller is None or member.ended:
                continue
            reason = await credential_ended(db, member.caller, now)
            if reason is not None:
                log.info("consultation %s: closing %s %s: %s", cid, member.peer.role, member.peer.id, reason)
                member.end(CLOSE_GOING_AWAY if member.caller.device else CLOSE_CREDENTIALS_ENDED, reason)
                closed += 1
    return closed


async def _watch(app: web.Application) -> None:
    interval = app[SETTINGS].credential_check_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await check_sockets(app)
        except Exception:  # a database hiccup must not end the watch
            log.exception("checking the open sockets' credentials failed; trying again in %s s", interval)


async def credential_watch(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_watch(app), name="credential-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
