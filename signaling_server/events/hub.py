"""This process's listeners to change notices, each judged by the access policy, each told at most twice a second.

`Hub.changed(change)` is called after the commit of whatever changed (a route, a worker). The hub counts the
topic's version, offers the change to every listener here, and passes it to the other server processes through the
relay (`{prefix}changes`), whose hubs offer it to theirs. A listener that may hear it (changes.py) marks the topic
pending and wakes its stream; the stream writes every pending topic at once and then waits `COALESCE_SECONDS`
before the next write, so a burst of changes costs each page one refetch, not one per change. A `consultations`
change names its consultation: the listener keeps the ids it was not yet told of (at most `MAX_IDS`; more, or a
change without an id, and the notice names none), so that a page asks for just those rows, not its whole list.

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
MAX_IDS = 50  # ids one notice names at most; beyond, it names none and the page refetches its whole list
SCOPE_SECONDS = 30.0
ENDING = ("user", "session", "token")  # what `Hub.end` ends the streams of


class Listener:
    """One open stream: its scope, the topics it has yet to be told (with the ids of the changed consultations,
    or None: the whole topic), and the event that wakes it."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.scope_made = time.monotonic()
        self.pending: dict[str, set[str] | None] = {}
        self.woken = asyncio.Event()
        self.ended = False  # its credential ended: the stream closes
        self.must_rescope = False  # what the user may see changed: judge nothing until the scope is recomputed
        self.held: list[Subject] = []  # changes offered meanwhile, judged by the new scope

    def offer(self, subject: Subject) -> None:
        change = subject.change
        if self.scope.user_id is not None and self.scope.user_id in change.user_ids:
            self.stale()  # their grants changed: the stream recomputes the scope before writing
        if self.must_rescope:
            self.held.append(subject)
            self.woken.set()
            return
        self.judge(subject)

    def judge(self, subject: Subject) -> None:
        change = subject.change
        if change.topic in self.pending and self.pending[change.topic] is None:
            return  # the whole topic is pending already
        if not subject.heard_by(self.scope):
            return
        ids = self.pending.get(change.topic, set())
        if ids is None or change.consultation_id is None or len(ids) >= MAX_IDS or not subject.ids_told_to(self.scope):
            self.pending[change.topic] = None
        else:
            ids.add(change.consultation_id)
            self.pending[change.topic] = ids
        self.woken.set()

    def stale(self) -> None:
        """What the user may see changed (a grant, the sites they serve): the changes offered from now on wait
        for the scope the stream recomputes before its next write, and are judged by it."""
        self.must_rescope = True
        self.woken.set()

    def rescope(self, scope: Scope) -> None:
        self.scope, self.scope_made, self.must_rescope = scope, time.monotonic(), False
        held, self.held = self.held, []
        for subject in held:
            self.judge(subject)

    def scope_stale(self) -> bool:
        return self.must_rescope or time.monotonic() - self.scope_made >= SCOPE_SECONDS

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)

    def take(self) -> list[tuple[str, list[str] | None]]:
        """The pending topics, each with the sorted ids of its changed consultations (None: the whole topic)."""
        topics = [(t, None if ids is None else sorted(ids)) for t, ids in sorted(self.pending.items())]
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

    def rescope(self, user_ids: list[str]) -> None:
        """The sites these users serve changed: their streams, here and in every other process, recompute their
        scope before they write again (a notice never names a consultation by a site they no longer serve)."""
        self.rescope_here(user_ids)
        if self.publish is not None:
            self.publish(json.dumps({"rescope": "user", "ids": user_ids}, separators=(",", ":")))

    def rescope_here(self, user_ids: list[str]) -> None:
        wanted = set(user_ids)
        for listener in self._listeners:
            if listener.scope.user_id in wanted:
                listener.stale()

    def hear_relayed(self, text: str) -> None:
        try:
            data = json.loads(text)
            if isinstance(data, dict) and data.get("end") in ENDING and isinstance(data.get("ids"), list):
                self.end_here(str(data["end"]), [str(i) for i in data["ids"]])
                return
            if isinstance(data, dict) and data.get("rescope") == "user" and isinstance(data.get("ids"), list):
                self.rescope_here([str(i) for i in data["ids"]])
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
