"""The signaling WebSocket endpoint: admission, the message loop, relaying, chat.

No exception leaves the handler once the socket is upgraded (an HTTP answer can no longer follow): a message that
fails unexpectedly is answered `internal` and logged; the session always leaves the room with `peer-left`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from signaling_server import errors
from signaling_server.api.representations import chat_json, consultation_json, peer_json
from signaling_server.appkeys import CLOCK, DB
from signaling_server.auth.identity import WRITE, Caller, caller, check_origin, credential_ended
from signaling_server.consultations import service
from signaling_server.events import changes
from signaling_server.events.changes import Change
from signaling_server.events.hub import CHANGES
from signaling_server.signaling import messages as m
from signaling_server.signaling.limits import SIGNAL_LIMITS, LogThrottle
from signaling_server.signaling.rooms import CLOSE_CREDENTIALS_ENDED, ROOMS, Member, Room, new_peer_id

log = logging.getLogger(__name__)


async def signal(request: web.Request) -> web.WebSocketResponse:
    consultation_id = request.match_info["id"]
    who = await caller(request)
    if who.via == "cookie":
        check_origin(request, required=True)
    if who.scope != WRITE:
        raise errors.ScopeForbidden("a read-only API token cannot take part in a consultation")
    async with request.app[DB]() as db:  # refuse before the upgrade (PROTOCOL.md §2)
        await service.admissible(db, who, consultation_id)
    async with request.app[SIGNAL_LIMITS].sockets.hold(who):  # 429 too_many_sockets, before the upgrade too
        # A frame over the limit (UTF-8 bytes) closes the socket with 1009, one that is not UTF-8 with 1007.
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=m.MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        session = _Session(request, ws, who, consultation_id)
        try:
            await session.run()
        except Exception:
            log.exception("consultation %s: the signaling session failed", consultation_id)
            await ws.close(code=1011, message=b"server error")
        finally:
            await _to_the_end(session.leave())
    return ws


async def _to_the_end(leaving: Coroutine[Any, Any, None]) -> None:
    """Run `leaving` to its end even if this handler is cancelled meanwhile (the test server cancels handlers when
    their connection drops): a member half taken out of its room would be a ghost. The cancellation is passed on
    once it is over."""
    task = asyncio.ensure_future(leaving)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


class _Session:
    """One participant's socket, from join to leave."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, who: Caller, cid: str) -> None:
        self.app, self.ws, self.who, self.cid = request.app, ws, who, cid
        self.member: Member | None = None
        self.site_id: str | None = None  # the consultation's, once joined: what its change notices carry
        self.room: Room | None = None
        self.closing: asyncio.Task[bool] | None = None
        self.ended = False
        limits = self.app[SIGNAL_LIMITS]
        self.messages = limits.message_bucket()
        self.limits = limits
        self.refusals = LogThrottle(log, clock=limits.now)

    async def run(self) -> None:
        async for frame in self.ws:
            if frame.type == WSMsgType.TEXT:
                await self._handle_text(frame.data)
            elif frame.type == WSMsgType.BINARY:
                await self._reply_error(m.SignalError("bad_json", "send JSON text frames"))
            elif frame.type == WSMsgType.ERROR:
                break

    async def _handle_text(self, text: str) -> None:
        if self.ended or (self.member is not None and self.member.ended):
            return  # told to close (signed out, disabled…): nothing it sends now is acted on
        expires = self.who.expires_at
        if expires is not None and self.app[CLOCK]() >= expires:
            self._end("session expired" if self.who.session_id else "token expired")
            return
        try:
            if not self.messages.take():
                raise m.SignalError("rate_limited", "too many messages: slow down")
            message = m.decode(text)
            await self._dispatch(message)
        except m.SignalError as exc:
            await self._reply_error(exc)
        except errors.TeleusError as exc:
            code = "consultation_closed" if isinstance(exc, errors.InvalidTransition) else "not_allowed"
            await self._reply_error(m.SignalError(code, exc.message))
        except Exception:  # one message must not end the socket, nor leave the handler (see the module's docstring)
            log.exception("consultation %s: failed to handle a message", self.cid)
            await self._reply_error(m.SignalError("internal", "the server failed to handle this message"))

    async def _reply_error(self, exc: m.SignalError) -> None:
        self.refusals.event(logging.INFO, exc.code, "consultation %s: refused %s: %s", self.cid, exc.code, exc.message)
        await self._reply(m.encode(m.ErrorReply(code=exc.code, message=exc.message[:2000], ref=exc.ref)))

    async def _reply(self, reply: str) -> None:
        """To this socket only: through the member's outbox once joined, in order with everything else."""
        if self.member is not None:
            self.member.deliver(reply)
        elif not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):  # gone meanwhile: the read loop ends next
                await self.ws.send_str(reply)

    async def _dispatch(self, message: m.ClientMessage) -> None:
        if isinstance(message, m.Join):
            await self._join(message)
            return
        if isinstance(message, m.Ping):  # before join too: it asks about the socket, not the room
            await self._reply(m.encode(m.Pong()))
            return
        if self.member is None or self.room is None:
            raise m.SignalError("not_joined", "send 'join' first", message.type)
        me, room = self.member.peer, self.room
        if isinstance(message, m.Leave):
            await self.ws.close()
        elif isinstance(message, m.ChatSend):
            await self._chat(me, room, message.text)
        elif isinstance(message, m.ChatHistoryRequest):
            await self._chat_history(message)
        elif isinstance(message, m.Offer):
            if me.role != "edge":
                raise m.SignalError("not_allowed", "only the edge offers: it sends the media", "offer")
            self._target(room, message.to, "offer")
            room.negotiations.offer(me.id, message.to)
            room.send(message.to, m.RelayedOffer(me.id, message.sdp))
        elif isinstance(message, m.Answer):
            self._target(room, message.to, "answer")
            room.negotiations.answer(me.id, message.to)
            room.send(message.to, m.RelayedAnswer(me.id, message.sdp))
        elif isinstance(message, m.Ice):
            self._target(room, message.to, "ice")
            room.send(message.to, m.RelayedIce(me.id, message.candidate))
        elif isinstance(message, m.Captured | m.CaptureFailed):
            if me.role != "edge":
                raise m.SignalError("not_allowed", "only the edge reports captures", message.type)
            if isinstance(message, m.Captured):
                detail: dict[str, object] = {"frames": message.frames, "frame_capture_ms": message.frame_capture_ms}
                room.broadcast(m.CaptureStatus(message.id, "captured", message.sop_uid, detail))
            else:
                detail = {"code": message.code, "message": message.message}
                room.broadcast(m.CaptureStatus(message.id, "failed", None, detail))

    @staticmethod
    def _target(room: Room, peer_id: str, ref: str) -> None:
        if not room.has(peer_id):
            raise m.SignalError("unknown_peer", f"no peer {peer_id[:64]!r} in this room", ref)

    def _end(self, reason: str) -> None:
        self.ended = True
        if self.member is not None:
            self.member.end(CLOSE_CREDENTIALS_ENDED, reason)
        elif self.closing is None:
            self.closing = asyncio.create_task(self.ws.close(code=CLOSE_CREDENTIALS_ENDED, message=reason.encode()))

    async def _join(self, join: m.Join) -> None:
        if self.member is not None:
            raise m.SignalError("already_joined", "this socket has already joined", "join")
        async with self.app[DB]() as db:
            # The credential may have ended since the upgrade (a logout in another tab): asked again here, after
            # which the room registry closes the socket the moment it ends.
            ended = await credential_ended(db, self.who, self.app[CLOCK]())
            if ended is not None:
                self._end(ended)
                return
            role, view = await service.admit(db, self.who, self.cid, join.observe)
            await service.record_event(db, self.cid, "joined", {"role": role, **_who(self.who)})
        user, device = self.who.user, self.who.device
        peer = m.Peer(
            id=new_peer_id(),
            role=role,
            name=user.name if user else (device.name if device else "edge"),
            user_id=user.id if user else None,
            device_id=device.id if device else None,
        )
        if device is not None:  # the device is back after a drop the server has not noticed yet: no ghost edge
            await self.app[ROOMS].replace_device(self.cid, device.id)
        self.member = Member(peer, self.ws, caller=self.who)
        self.room = await self.app[ROOMS].add(self.cid, self.member)
        self.site_id = view.consultation.site_id
        self.app[CHANGES].changed(changes.of_consultation(view.consultation))  # taken (live), or who is in it
        everyone = self.room.peers()
        others = tuple(p for p in everyone if p.id != peer.id)
        state = consultation_json(view, [peer_json(p) for p in everyone])
        self.member.deliver(m.encode(m.Welcome(you=peer, peers=others, consultation=state)))
        self.room.broadcast(m.PeerJoined(peer), exclude=peer.id)
        if view.consultation.state == "live" and role == "expert":
            self.room.broadcast(m.StateChanged(state), exclude=peer.id)

    async def _chat(self, me: m.Peer, room: Room, text: str) -> None:
        if me.role == "observer":
            raise m.SignalError("not_allowed", "observers follow the consultation view-only", "chat")
        if not await self.limits.chat_line(self.who):
            raise m.SignalError("rate_limited", "too many chat lines: slow down", "chat")
        async with self.app[DB]() as db:
            line = await service.add_chat(db, self.cid, me.role, me.user_id, me.name, text)
        room.broadcast(m.ChatLine(**_chat_fields(chat_json(line))))

    async def _chat_history(self, ask: m.ChatHistoryRequest) -> None:
        async with self.app[DB]() as db:
            try:  # the same decision as GET .../chat: the consultation's people, never the device that streams it
                await service.chat_readable(db, self.who, self.cid)
            except errors.TeleusError as exc:
                raise m.SignalError(exc.code, exc.message, "chat-history") from None
            lines, next_before = await service.chat_page(db, self.cid, before=ask.before, limit=ask.limit)
        page = tuple(m.ChatLine(**_chat_fields(chat_json(line))) for line in lines)
        assert self.member is not None
        self.member.deliver(m.encode(m.ChatHistory(page, next_before)))

    async def leave(self) -> None:
        self.refusals.flush()
        if self.member is None:
            return
        peer, self.member = self.member.peer, None
        rooms = self.app[ROOMS]
        removed = await rooms.remove(self.cid, peer.id)
        room = rooms.existing(self.cid)
        if room is not None and removed is not None:  # None: replaced by its device's new socket, already told
            room.broadcast(m.PeerLeft(peer.id))
        if self.site_id is not None:
            self.app[CHANGES].changed(Change(changes.CONSULTATIONS, self.site_id, consultation_id=self.cid))
        try:
            async with self.app[DB]() as db:
                await service.record_event(db, self.cid, "left", {"role": peer.role, **_who(self.who)})
        except Exception:  # the peer has left all the same; only the event row is missing
            log.exception("consultation %s: could not record that %s left", self.cid, peer.id)


def _who(who: Caller) -> dict[str, str | None]:
    return {"user_id": who.user.id if who.user else None, "device_id": who.device.id if who.device else None}


def _chat_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A stored chat line as ChatLine's fields (`from` is `from_` there)."""
    return {("from_" if key == "from" else key): value for key, value in data.items()}
