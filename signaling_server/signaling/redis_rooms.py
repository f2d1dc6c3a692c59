"""Rooms across several server processes: `RedisRoomRegistry`, the same interface as `rooms.RoomRegistry`.

Each process still holds its own members' sockets (a `Member` with its outbox and writer, as in one process). What
it shares through Redis (keys under the cluster's prefix, `cluster.py`):

- membership: the hash `members:{consultation}` (peer id → the peer and the server process holding it) and the set
  `rooms` of consultations with members. A process whose heartbeat key expired is gone: the first live process
  whose sweep (every `SWEEP_SECONDS`) finds its members removes them (`HDEL`, so once) and tells the room
  `peer-left`. Each process keeps a directory of every room's members, refreshed by the sweep and by the
  joins and leaves it hears, so `peers()` and `has()` stay synchronous.
- messages: one pub/sub channel per consultation, `room:{consultation}`. A broadcast or a message to one peer is
  delivered at once to this process's members and published, in order (one publisher task), as an envelope
  ``{"src", "text", "to"?, "exclude"?, "joined"?, "left"?, "link"?, "close"?}``; every other process delivers it
  to its own members. `link` carries a negotiation move (offer, answer) so that both ends' processes agree on the
  link's state; `close` closes the room's sockets after the final message.
- commands to every process: the channel `control` (end a user's, session's or token's sockets; disconnect a device).

A member whose own process finds it missing from Redis (its heartbeat lapsed while Redis was away, and another
process removed it) is closed with 1012 so that its client joins again and the room learns of it afresh; one whose
device is listed again through another process was replaced by it and is closed with 4002, as the other
process's command would close it (whichever comes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from signaling_server.cluster import Cluster
from signaling_server.signaling.messages import (
    Peer,
    PeerJoined,
    PeerLeft,
    RelayedAnswer,
    RelayedOffer,
    ServerMessage,
    encode,
)
from signaling_server.signaling.negotiation import LinkState
from signaling_server.signaling.rooms import CLOSE_REPLACED, Member, Room, RoomRegistry, credential_in

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
CLOSE_SERVICE_RESTART = 1012


@dataclasses.dataclass(frozen=True)
class Listed:
    """A member as Redis lists it: the peer, and the server process that holds its socket."""

    peer: Peer
    server: str

    def dumps(self) -> str:
        return json.dumps({"peer": dataclasses.asdict(self.peer), "server": self.server})

    @classmethod
    def loads(cls, text: str) -> Listed:
        data = json.loads(text)
        return cls(Peer(**data["peer"]), data["server"])


class RedisRoom(Room):
    """A room whose members may be on other server processes too."""

    def __init__(self, consultation_id: str, registry: RedisRoomRegistry) -> None:
        super().__init__(consultation_id)
        self._registry = registry

    def _remote(self) -> dict[str, Listed]:
        listed = self._registry.directory.get(self.consultation_id, {})
        return {pid: entry for pid, entry in listed.items() if pid not in self.members}

    def peers(self) -> list[Peer]:
        return [*super().peers(), *(entry.peer for entry in self._remote().values())]

    def edge(self) -> Peer | None:
        return next((p for p in self.peers() if p.role == "edge"), None)

    def has(self, peer_id: str) -> bool:
        return peer_id in self.members or peer_id in self._remote()

    def send(self, peer_id: str, message: ServerMessage) -> bool:
        if super().send(peer_id, message):
            return True
        if peer_id not in self._remote():
            return False
        envelope: dict[str, Any] = {"to": peer_id, "text": encode(message)}
        if isinstance(message, RelayedOffer):
            envelope["link"] = [LinkState.HAVE_OFFER.value, message.from_, peer_id]
        elif isinstance(message, RelayedAnswer):
            envelope["link"] = [LinkState.STABLE.value, peer_id, message.from_]
        self._registry.publish(self.consultation_id, envelope)
        return True

    def broadcast(self, message: ServerMessage, *, exclude: str | None = None) -> None:
        super().broadcast(message, exclude=exclude)
        envelope: dict[str, Any] = {"text": encode(message), "exclude": exclude}
        if isinstance(message, PeerJoined):
            envelope["joined"] = dataclasses.asdict(message.peer)
        elif isinstance(message, PeerLeft):
            envelope["left"] = message.peer_id
        self._registry.publish(self.consultation_id, envelope)


class RedisRoomRegistry(RoomRegistry):
    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.directory: dict[str, dict[str, Listed]] = {}  # every room's members, this process's included
        self._outgoing: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- keys and start/stop -------------------------------------------------------------------------------------

    def _members_key(self, cid: str) -> str:
        return self.cluster.key("members", cid)

    def _channel(self, cid: str) -> str:
        return self.cluster.key("room", cid)

    async def start(self) -> None:
        self._pubsub = self.cluster.redis.pubsub()
        await self._pubsub.psubscribe(self._channel("*"))
        await self._pubsub.subscribe(self.cluster.key("control"))
        for _ in range(2):  # both subscriptions confirmed before anyone joins: nothing published after is missed
            if await self._pubsub.get_message(timeout=10.0) is None:
                raise RuntimeError("Redis did not confirm the room subscriptions")
        await self.sweep()
        self._tasks = [
            asyncio.create_task(self._publisher(), name="rooms-publisher"),
            asyncio.create_task(self._reader(), name="rooms-reader"),
            asyncio.create_task(self._sweeper(), name="rooms-sweeper"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            await self._pubsub.aclose()

    # ---- the registry's interface --------------------------------------------------------------------------------

    def _new_room(self, consultation_id: str) -> Room:
        return RedisRoom(consultation_id, self)

    def existing(self, consultation_id: str) -> Room | None:
        found = self._rooms.get(consultation_id)
        if found is None and self.directory.get(consultation_id):
            return RedisRoom(consultation_id, self)  # members on other processes only: a room to send through
        return found

    def peers(self, consultation_id: str) -> list[Peer]:
        room = self.existing(consultation_id)
        return room.peers() if room else []

    async def add(self, consultation_id: str, member: Member) -> Room:
        redis, listed = self.cluster.redis, Listed(member.peer, self.cluster.server_id)
        await redis.hset(self._members_key(consultation_id), member.peer.id, listed.dumps())
        await redis.sadd(self.cluster.key("rooms"), consultation_id)
        await self._refresh(consultation_id)
        return await super().add(consultation_id, member)

    async def remove(self, consultation_id: str, peer_id: str) -> Member | None:
        member = await super().remove(consultation_id, peer_id)
        self.directory.get(consultation_id, {}).pop(peer_id, None)
        try:
            await self.cluster.redis.hdel(self._members_key(consultation_id), peer_id)
        except (RedisError, OSError) as exc:  # the sweep of another process removes it once our heartbeat stops
            log.warning("consultation %s: could not remove %s from Redis: %s", consultation_id, peer_id, exc)
        return member

    async def close_room(self, consultation_id: str, final: ServerMessage | None = None) -> None:
        room = self.existing(consultation_id)
        if room is None:
            return
        if final is not None:
            room.broadcast(final)
        self.publish(consultation_id, {"close": True})
        await self._close_local(consultation_id)

    async def disconnect_device(self, device_id: str) -> None:
        self._command({"op": "disconnect_device", "device_id": device_id})
        await super().disconnect_device(device_id)

    async def replace_device(self, consultation_id: str, device_id: str, *, announce: bool = True) -> list[Member]:
        """The device's ghosts here go at once; those on other processes are unlisted now (so the new socket's
        welcome does not name them) and closed by their process when it hears the command."""
        ghosts = await super().replace_device(consultation_id, device_id, announce=announce)
        listed = self.directory.get(consultation_id, {})
        elsewhere = [pid for pid, entry in listed.items() if entry.peer.device_id == device_id]
        await self._unlist(consultation_id, [g.peer.id for g in ghosts] + elsewhere)
        room = self.existing(consultation_id)
        for peer_id in elsewhere:  # told here, once, even when the process that held it is dead
            if room is not None:
                room.broadcast(PeerLeft(peer_id))
        self._command({"op": "replace_device", "cid": consultation_id, "device_id": device_id})
        return ghosts

    async def _unlist(self, consultation_id: str, peer_ids: list[str]) -> None:
        """Members taken out without `remove` (replaced ghosts): out of the directory and of Redis."""
        for peer_id in peer_ids:
            self.directory.get(consultation_id, {}).pop(peer_id, None)
        if peer_ids:
            await self._hdel(consultation_id, peer_ids)

    async def _hdel(self, consultation_id: str, peer_ids: list[str]) -> None:
        try:
            await self.cluster.redis.hdel(self._members_key(consultation_id), *peer_ids)
        except (RedisError, OSError) as exc:  # the owner's sweep cannot help (it is alive): logged, retried by nobody
            log.warning("consultation %s: could not unlist %s from Redis: %s", consultation_id, peer_ids, exc)

    def _end(self, by: str, ids: list[str], reason: str, code: int) -> int:
        self._command({"op": "end", "by": by, "ids": ids, "reason": reason, "code": code})
        return super()._end(by, ids, reason, code)

    # ---- publishing ----------------------------------------------------------------------------------------------

    def publish(self, consultation_id: str, envelope: dict[str, Any]) -> None:
        """Send `envelope` to the room's members on the other processes (in order, by the publisher task)."""
        envelope["src"] = self.cluster.server_id
        self._outgoing.put_nowait((self._channel(consultation_id), json.dumps(envelope)))

    def _command(self, command: dict[str, Any]) -> None:
        command["src"] = self.cluster.server_id
        self._outgoing.put_nowait((self.cluster.key("control"), json.dumps(command)))

    async def _publisher(self) -> None:
        while True:
            channel, payload = await self._outgoing.get()
            try:
                await self.cluster.redis.publish(channel, payload)
            except (RedisError, OSError) as exc:
                log.warning("a room message to the other servers was lost (%s): %s", channel, exc)

    # ---- receiving -----------------------------------------------------------------------------------------------

    async def _reader(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("server %s: room messages from Redis interrupted: %s", self.cluster.server_id, exc)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            try:
                data = json.loads(message["data"])
                if data.get("src") == self.cluster.server_id:
                    continue
                if message["channel"] == self.cluster.key("control"):
                    await self._on_command(data)
                else:
                    self._on_room_message(message["channel"].removeprefix(self._channel("")), data)
            except Exception:  # one odd envelope must not stop the room messages
                log.exception("server %s: could not handle a message from Redis", self.cluster.server_id)

    def _on_room_message(self, cid: str, data: dict[str, Any]) -> None:
        listed = self.directory.setdefault(cid, {})
        if "joined" in data:
            peer = Peer(**data["joined"])
            listed[peer.id] = Listed(peer, data["src"])
        if "left" in data:
            listed.pop(data["left"], None)
        room = self._rooms.get(cid)
        if room is None:
            return
        if "left" in data:
            room.negotiations.forget(data["left"])
        if "link" in data:
            state, offerer, answerer = data["link"]
            room.negotiations.mirror(offerer, answerer, LinkState(state))
        text, to, exclude = data.get("text"), data.get("to"), data.get("exclude")
        if text is not None:
            for peer_id, member in list(room.members.items()):
                if (to is None or peer_id == to) and peer_id != exclude:
                    member.deliver(text)
        if data.get("close"):
            asyncio.create_task(self._close_local(cid), name=f"close-room-{cid}")  # noqa: RUF006 (ends by itself)

    async def _on_command(self, data: dict[str, Any]) -> None:
        if data.get("op") == "end":
            self.end_where(credential_in(data["by"], set(data["ids"])), data["reason"], int(data["code"]))
        elif data.get("op") == "disconnect_device":
            await super().disconnect_device(data["device_id"])
        elif data.get("op") == "replace_device":
            # closed quietly: the process the device joined again on has told the room already
            ghosts = await RoomRegistry.replace_device(self, data["cid"], data["device_id"], announce=False)
            await self._unlist(data["cid"], [g.peer.id for g in ghosts])

    # ---- membership: the directory and the sweep -----------------------------------------------------------------

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except (RedisError, OSError) as exc:
                log.warning("server %s: the room sweep failed: %s", self.cluster.server_id, exc)

    async def sweep(self) -> None:
        """Refresh every room's directory; remove the members of servers that stopped beating (`peer-left`)."""
        redis = self.cluster.redis
        if self._rooms:  # ours are listed even if another process dropped the name after a race with our join
            await redis.sadd(self.cluster.key("rooms"), *self._rooms)
        cids = {str(cid) for cid in await redis.smembers(self.cluster.key("rooms"))}
        for cid in cids:
            await self._refresh(cid, reap=True)
            if not self.directory.get(cid) and cid not in self._rooms:
                self.directory.pop(cid, None)
                await redis.srem(self.cluster.key("rooms"), cid)

    async def _refresh(self, cid: str, *, reap: bool = False) -> None:
        room = self._rooms.get(cid)
        ours_before = set(room.members) if room is not None else set()  # listed in Redis before the read below
        heard_before = set(self.directory.get(cid, {}))
        raw = await self.cluster.redis.hgetall(self._members_key(cid))
        listed = {str(pid): Listed.loads(str(text)) for pid, text in raw.items()}
        alive = await self.cluster.alive(entry.server for entry in listed.values())
        for pid, entry in list(listed.items()):
            if entry.server in alive:
                continue
            del listed[pid]
            if reap and await self.cluster.redis.hdel(self._members_key(cid), pid) == 1:  # once, by one process
                log.info("consultation %s: %s %s left with its server %s", cid, entry.peer.role, pid, entry.server)
                told = self.existing(cid)
                if told is not None:
                    told.negotiations.forget(pid)
                    told.broadcast(PeerLeft(pid))
        heard = self.directory.get(cid, {})  # joins heard while Redis was read are kept (the read may predate them)
        listed.update({pid: entry for pid, entry in heard.items() if pid not in heard_before})
        self.directory[cid] = listed
        if reap and room is not None:
            for pid, member in list(room.members.items()):
                # removed by another process while our heartbeat lapsed (Redis away): rejoin to be listed again
                if pid in ours_before and pid not in listed and not member.ended:
                    device = member.peer.device_id
                    if device is not None and any(e.peer.device_id == device for e in listed.values()):
                        # its device joined again through another server, which took it out: a ghost replaced
                        # (the same close as the other server's command, which may come after this read)
                        member.end(CLOSE_REPLACED, "replaced")
                        continue
                    log.warning("consultation %s: %s is no longer listed in Redis; closing it to rejoin", cid, pid)
                    member.end(CLOSE_SERVICE_RESTART, "rejoin")
