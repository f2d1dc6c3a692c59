"""Rooms: who is connected to which consultation, and delivery of messages to them.

`RoomRegistry` is the one seam for room messaging. This one keeps every room in this process (one server, no
Redis); `signaling/redis_rooms.py` `RedisRoomRegistry`, the same interface, spans several server processes
through Redis (pub/sub per consultation, heartbeated membership). The app factory picks one from the settings.
Each member has a bounded outbox drained by its own writer task, so one slow socket never holds up the room; a
member that does not read is closed with 1008, one whose socket fails with 1011 (and leaves with `peer-left`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from signaling_server.auth.identity import Caller
from signaling_server.signaling.limits import LogThrottle
from signaling_server.signaling.messages import Peer, PeerLeft, ServerMessage, encode
from signaling_server.signaling.negotiation import Negotiations

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 256
CLOSE_GOING_AWAY = 4001
CLOSE_REPLACED = 4002  # the same device joined the room again on a new socket: this one is a ghost
CLOSE_CREDENTIALS_ENDED = 4003  # signed out, session revoked or expired, token revoked, account disabled or reset


def new_peer_id() -> str:
    return "p" + secrets.token_hex(6)


@dataclass(eq=False)
class Member:
    peer: Peer
    ws: web.WebSocketResponse
    outbox: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    writer: asyncio.Task[None] | None = None
    closing: asyncio.Task[bool] | None = None
    caller: Caller | None = None  # whose credential opened the socket
    ended: bool = False  # set the moment the socket is told to close: nothing it sends after is acted on
    drops: LogThrottle = field(default_factory=lambda: LogThrottle(log))

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.peer.id}")

    async def _write(self) -> None:
        """Send the outbox in order until `stop`. One message that cannot be sent (text that is not UTF-8, say) is
        logged and dropped, and the next ones still go. When the socket itself fails, the writer ends and closes
        it: the handler's read loop then ends and the member leaves the room with `peer-left`, never a ghost."""
        while (text := await self.outbox.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.info("peer %s: its socket failed (%s); closing it", self.peer.id, exc)
                self._close(1011, b"send failed")
                return
            except Exception as exc:
                self.drops.event(
                    logging.ERROR,
                    "unsendable",
                    "peer %s: dropped a message that could not be sent: %r",
                    self.peer.id,
                    exc,
                )

    def deliver(self, text: str) -> None:
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.drops.event(
                logging.WARNING, "dropped for a full outbox", "peer %s is not reading; closing its socket", self.peer.id
            )
            self._close(1008, b"slow consumer")

    def _close(self, code: int, reason: bytes) -> None:
        if self.closing is None:
            self.closing = asyncio.create_task(self.ws.close(code=code, message=reason))

    def end(self, code: int, reason: str) -> None:
        """Close the socket now, without waiting for the other side's close frame; drop whatever it sends next."""
        self.ended = True
        if self.closing is None:
            message = reason.encode()[:120]
            self.closing = asyncio.create_task(self.ws.close(code=code, message=message))

    def abandon(self) -> None:
        """Stop writing at once, whatever is left in the outbox (the socket is dead or being closed)."""
        if self.writer is not None:
            self.writer.cancel()
        self.drops.flush()

    async def stop(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)
        if self.writer is not None:
            done, _ = await asyncio.wait({self.writer}, timeout=2)
            if not done:
                self.writer.cancel()
        self.drops.flush()


class Room:
    def __init__(self, consultation_id: str) -> None:
        self.consultation_id = consultation_id
        self.members: dict[str, Member] = {}
        self.negotiations = Negotiations(consultation_id)

    def peers(self) -> list[Peer]:
        return [m.peer for m in self.members.values()]

    def edge(self) -> Peer | None:
        return next((m.peer for m in self.members.values() if m.peer.role == "edge"), None)

    def has(self, peer_id: str) -> bool:
        return peer_id in self.members

    def send(self, peer_id: str, message: ServerMessage) -> bool:
        member = self.members.get(peer_id)
        if member is None:
            return False
        member.deliver(encode(message))
        return True

    def broadcast(self, message: ServerMessage, *, exclude: str | None = None) -> None:
        text = encode(message)
        for peer_id, member in self.members.items():
            if peer_id != exclude:
                member.deliver(text)


class RoomRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def room(self, consultation_id: str) -> Room:
        found = self._rooms.get(consultation_id)
        if found is None:
            found = self._rooms[consultation_id] = self._new_room(consultation_id)
        return found

    def _new_room(self, consultation_id: str) -> Room:
        return Room(consultation_id)

    def existing(self, consultation_id: str) -> Room | None:
        return self._rooms.get(consultation_id)

    def peers(self, consultation_id: str) -> list[Peer]:
        room = self._rooms.get(consultation_id)
        return room.peers() if room else []

    async def add(self, consultation_id: str, member: Member) -> Room:
        room = self.room(consultation_id)
        room.members[member.peer.id] = member
        member.start()
        log.info("consultation %s: %s %s joined", consultation_id, member.peer.role, member.peer.id)
        return room

    async def remove(self, consultation_id: str, peer_id: str) -> Member | None:
        room = self._rooms.get(consultation_id)
        member = room.members.pop(peer_id, None) if room else None
        if room is None or member is None:
            return None
        room.negotiations.forget(peer_id)
        await member.stop()
        if not room.members:
            self._rooms.pop(consultation_id, None)  # two sockets may close together
        log.info("consultation %s: %s %s left", consultation_id, member.peer.role, peer_id)
        return member

    async def replace_device(self, consultation_id: str, device_id: str, *, announce: bool = True) -> list[Member]:
        """Take out of the room every member opened by ``device_id`` and close its socket (4002): the device is
        joining again, so those sockets died without the server noticing yet (a cut link: the heartbeat takes up
        to 30 s). The pages are told at once (``peer-left``), before the new socket's ``peer-joined``, so they
        close the dead call and answer the fresh offer. The ghost's own handler, when its read loop ends, finds
        it gone and says nothing more (`remove` returns None). Returns the members taken out."""
        room = self._rooms.get(consultation_id)
        if room is None:
            return []
        ghosts = [m for m in room.members.values() if m.peer.device_id == device_id]
        for ghost in ghosts:
            log.info("consultation %s: %s %s replaced by a new socket of its device", consultation_id,
                     ghost.peer.role, ghost.peer.id)  # fmt: skip
            ghost.end(CLOSE_REPLACED, "replaced by a new socket of the same device")
            ghost.abandon()  # a dead socket's writer may be stuck on a full send buffer: not waited for
            room.members.pop(ghost.peer.id, None)
            room.negotiations.forget(ghost.peer.id)
            if announce:  # (several processes: the process the device joined again on tells the room)
                room.broadcast(PeerLeft(ghost.peer.id))
        return ghosts

    async def close_room(self, consultation_id: str, final: ServerMessage | None = None) -> None:
        room = self._rooms.get(consultation_id)
        if room is None:
            return
        if final is not None:
            room.broadcast(final)
        await self._close_local(consultation_id)

    async def _close_local(self, consultation_id: str) -> None:
        room = self._rooms.get(consultation_id)
        for member in list(room.members.values()) if room else []:
            await member.stop()  # flush the final message first
            await member.ws.close(code=CLOSE_GOING_AWAY, message=b"consultation closed")

    async def disconnect_device(self, device_id: str) -> None:
        for room in list(self._rooms.values()):
            for member in list(room.members.values()):
                if member.peer.device_id == device_id:
                    await member.ws.close(code=CLOSE_GOING_AWAY, message=b"device revoked")

    def members(self) -> list[tuple[str, Member]]:
        """Every member of every room, with its consultation id."""
        return [(cid, member) for cid, room in self._rooms.items() for member in room.members.values()]

    def end_where(self, match: Callable[[Caller], bool], reason: str, code: int = CLOSE_CREDENTIALS_ENDED) -> int:
        """Close, at once, every socket whose credential `match`es; returns how many."""
        ended = 0
        for cid, member in self.members():
            if member.caller is not None and not member.ended and match(member.caller):
                log.info("consultation %s: closing %s %s: %s", cid, member.peer.role, member.peer.id, reason)
                member.end(code, reason)
                ended += 1
        return ended

    def end_user(self, user_id: str, reason: str, code: int = CLOSE_CREDENTIALS_ENDED) -> int:
        return self._end("user", [user_id], reason, code)

    def end_sessions(self, session_ids: list[str], reason: str) -> int:
        return self._end("sessions", session_ids, reason, CLOSE_CREDENTIALS_ENDED)

    def end_token(self, token_id: str, reason: str) -> int:
        return self._end("token", [token_id], reason, CLOSE_CREDENTIALS_ENDED)

    def _end(self, by: str, ids: list[str], reason: str, code: int) -> int:
        """Close this process's sockets of the users (`by` "user"), sessions or tokens `ids`; how many.
        (The Redis registry also tells the other processes: the names are the wire between them.)"""
        return self.end_where(credential_in(by, set(ids)), reason, code)

    async def close_all(self) -> None:
        for room in list(self._rooms.values()):
            for member in list(room.members.values()):
                await member.ws.close(code=1001, message=b"server shutdown")


def credential_in(by: str, ids: set[str]) -> Callable[[Caller], bool]:
    """Whether a socket's credential is one of the users, sessions or tokens `ids` (`by`: which of the three)."""
    if by == "user":
        return lambda who: who.user is not None and who.user.id in ids
    if by == "sessions":
        return lambda who: who.session_id in ids
    if by == "token":
        return lambda who: who.token_id in ids
    raise ValueError(f"no such credential kind {by!r}")


ROOMS = web.AppKey("rooms", RoomRegistry)
