"""The edge device's doorbell: a device waiting on its open consultations hears at once when they change.

An edge used to ask for its open consultations every second: a thousand clinics made a thousand requests a
second, each one authenticated, scoped and audited, to learn that nothing had changed. Now it asks with the
version of what it knows and a wait (`GET /api/v1/devices/me/consultations?since=V&wait=25`): when the list is
still at version V the server holds the request until the device's bell rings or the wait runs out, then
answers the list as it is then. Whatever changes a device's open consultations (a request, an end, a cancel, a
revoked or rotated device) rings its bell after its commit.

With several server processes (`TELEUS_REDIS_URL`), a device may wait on one server while its consultation is
requested on another: every ring is also published on the Redis channel `{prefix}doorbell` (events/relay.py),
and every process rings its own waiters for what it hears there.

A waiter takes its :meth:`Doorbell.ticket` *before* it reads the list, so a ring between the read and the wait is
not missed. :meth:`Doorbell.close` (at shutdown) answers every waiter at once, so that no request holds the
server's shutdown for the length of a wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from signaling_server.events.relay import relay

MAX_WAIT_SECONDS = 30.0


class Ticket:
    """One waiter's place at one device's door; `wait` returns True when the bell rang."""

    def __init__(self, bell: Doorbell, device_id: str) -> None:
        self._bell, self._device_id = bell, device_id
        self._rung = asyncio.get_running_loop().create_future()

    def ring(self) -> None:
        if not self._rung.done():
            self._rung.set_result(None)

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._rung), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.leave()

    def leave(self) -> None:
        self._bell._leave(self._device_id, self)


class Doorbell:
    """The waiters of this process; `publish` (set with Redis) tells the other processes of each ring."""

    def __init__(self, publish: Callable[[str], None] | None = None) -> None:
        self._tickets: defaultdict[str, set[Ticket]] = defaultdict(set)
        self._closed = False
        self.publish = publish

    def ticket(self, device_id: str) -> Ticket:
        ticket = Ticket(self, device_id)
        if self._closed:
            ticket.ring()
        else:
            self._tickets[device_id].add(ticket)
        return ticket

    def ring(self, device_id: str) -> None:
        self.ring_here(device_id)
        if self.publish is not None:
            self.publish(device_id)

    def ring_here(self, device_id: str) -> None:
        for ticket in self._tickets.pop(device_id, set()):
            ticket.ring()

    def waiting(self, device_id: str | None = None) -> int:
        if device_id is not None:
            return len(self._tickets.get(device_id, ()))
        return sum(len(t) for t in self._tickets.values())

    def close(self) -> None:
        self._closed = True
        for device_id in list(self._tickets):
            self.ring_here(device_id)

    def _leave(self, device_id: str, ticket: Ticket) -> None:
        tickets = self._tickets.get(device_id)
        if tickets is not None:
            tickets.discard(ticket)
            if not tickets:
                del self._tickets[device_id]


DOORBELL = web.AppKey("doorbell", Doorbell)


async def doorbell(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the cluster's): the app's doorbell, rung across processes when they share Redis
    (events/relay.py; closed at shutdown by :func:`close_doorbell`)."""
    bell = app[DOORBELL] = Doorbell()
    try:
        async with relay(app, "doorbell", bell.ring_here) as publish:
            bell.publish = publish
            yield
    finally:
        bell.close()


async def close_doorbell(app: web.Application) -> None:
    """on_shutdown: answer every waiting device now."""
    with contextlib.suppress(KeyError):
        app[DOORBELL].close()
