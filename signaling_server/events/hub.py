"""This process's listeners to change notices, each judged by the access policy, each told at most twice a second.

`Hub.changed(change)` is called after the commit of whatever changed (a route, a worker). The hub counts the
topic's version, offers the change to every listener here, and passes it to the other server processes through the
relay (`{prefix}changes`), whose hubs offer it to theirs. A listener that may hear it (changes.py) marks the topic
pending and wakes its stream; the stream writes every pending topic at once and then waits `COALESCE_SECONDS`
before the next write, so a burst of changes costs each page one refetch, not one per change.

A listener's scope (the sites and grants the policy reads) is computed when its stream opens and again every
`SCOPE_SECONDS`, or sooner when a change names its user (a new grant), by the stream (stream.py), which also ends
the stream once the credential no longer holds. The calls that end a credential (signing out, revoking a session or
token, disabling a user, a password reset, a new role or site) end its streams at once through `Hub.end`, in every
process, as they close its signaling sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web

from signaling_server.access.policy import Scope
from signaling_server.events.changes import Change, Subject
from signaling_server.events.relay import Publish, relay

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.5
SCOPE_SECONDS = 30.0
ENDING = ("user", "session", "token")  # what `Hub.end` ends the streams of


class Listener:
    """One open stream: its scope, the topics it has yet to be told, and the event that wakes it."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.scope_made = time.monotonic()
        self.pending: set[str] = set()
        self.woken = asyncio.Event()
        self.ended = False  # its credential ended: the stream closes

    def offer(self, subject: Subject) -> None:
        change = subject.change
        if self.scope.user_id is not None and self.scope.user_id in change.user_ids:
            self.scope_made = float("-inf")  # their grants changed: the stream recomputes the scope before writing
        if change.topic not in self.pending and subject.heard_by(self.scope):
            self.pending.add(change.topic)
            self.woken.set()

    def rescope(self, scope: Scope) -> None:
        self.scope, self.scope_made = scope, time.monotonic()

    def scope_stale(self) -> bool:
        return time.monotonic() - self.scope_made >= SCOPE_SECONDS

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)

    def take(self) -> list[str]:
        topics = sorted(self.pending)
        self.pending.clear()
        self.woken.clear()
        return topics


class Hub:
    def __init__(self, publish: Publish | None = None) -> None:
        self._listeners: set[Listener] = set()
        self.versions: Counter[str] = Counter()
        self.publish = publish
        self.closed = False

    def changed(self, change: Change) -> None:
        """Tell every listener of every process that may hear it (call after the change is committed)."""
        self.hear(change)
        if self.publish is not None:
            self.publish(change.encode())

    def hear(self, change: Change) -> None:
        self.versions[change.topic] += 1
        subject = Subject(change)
        for listener in list(self._listeners):
            listener.offer(subject)

    def end(self, kind: str, ids: list[str]) -> None:
        """End the streams of these users, sessions or tokens (`kind`), here and in every other process."""
        self.end_here(kind, ids)
        if self.publish is not None:
            self.publish(json.dumps({"end": kind, "ids": ids}, separators=(",", ":")))

    def end_here(self, kind: str, ids: list[str]) -> None:
        wanted = set(ids)
        for listener in self._listeners:
            who = listener.scope.caller
            held = {"user": who.user.id if who.user else None, "session": who.session_id, "token": who.token_id}
            if held.get(kind) in wanted:
                listener.ended = True
                listener.woken.set()

    def hear_relayed(self, text: str) -> None:
        try:
            data = json.loads(text)
            if isinstance(data, dict) and data.get("end") in ENDING and isinstance(data.get("ids"), list):
                self.end_here(str(data["end"]), [str(i) for i in data["ids"]])
                return
            change = Change.decode(text)
        except ValueError as exc:
            log.warning("a change notice from another server was not understood: %s", exc)
            return
        self.hear(change)

    def join(self, scope: Scope) -> Listener:
        listener = Listener(scope)
        self._listeners.add(listener)
        if self.closed:
            listener.woken.set()
        return listener

    def leave(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def listening(self, user_id: str | None = None) -> int:
        """How many streams are open here (of `user_id`, when given)."""
        if user_id is None:
            return len(self._listeners)
        return sum(1 for listener in self._listeners if listener.scope.user_id == user_id)

    def close(self) -> None:
        """Every stream ends now (shutdown) rather than hold the server for its heartbeat."""
        self.closed = True
        for listener in self._listeners:
            listener.woken.set()


CHANGES = web.AppKey("changes", Hub)


async def change_hub(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the cluster's): the hub, hearing the other processes' changes when they share Redis."""
    hub = app[CHANGES] = Hub()
    try:
        async with relay(app, "changes", hub.hear_relayed) as publish:
            hub.publish = publish
            yield
    finally:
        hub.close()


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every open event stream."""
    with contextlib.suppress(KeyError):
        app[CHANGES].close()
