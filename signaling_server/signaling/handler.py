"""The signaling WebSocket endpoint: admission, the message loop, relaying, chat."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from signaling_server import errors
from signaling_server.api.representations import chat_json, consultation_json, peer_json
from signaling_server.appkeys import CLOCK, DB
from signaling_server.auth.identity import WRITE, Caller, caller, check_origin, credential_ended
from signaling_server.consultations import service
from signaling_server.signaling import messages as m
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
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=m.MAX_MESSAGE_BYTES * 2)
    await ws.prepare(request)
    session = _Session(request, ws, who, consultation_id)
    try:
        await session.run()
    finally:
        await session.leave()
    return ws


class _Session:
    """One participant's socket, from join to leave."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, who: Caller, cid: str) -> None:
        self.app, self.ws, self.who, self.cid = request.app, ws, who, cid
        self.member: Member | None = None
        self.room: Room | None = None
        self.closing: asyncio.Task[bool] | None = None
        self.ended = False

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
            message = m.decode(text)
            await self._dispatch(message)
        except m.SignalError as exc:
            await self._reply_error(exc)
        except errors.TeleusError as exc:
            code = "consultation_closed" if isinstance(exc, errors.InvalidTransition) else "not_allowed"
            await self._reply_error(m.SignalError(code, exc.message))

    async def _reply_error(self, exc: m.SignalError) -> None:
        log.info("consultation %s: refused %s: %s", self.cid, exc.code, exc.message)
        reply = m.encode(m.ErrorReply(code=exc.code, message=exc.message, ref=exc.ref))
        if self.member is not None:
            self.member.deliver(reply)
        elif not self.ws.closed:
            await self.ws.send_str(reply)

    async def _dispatch(self, message: m.ClientMessage) -> None:
        if isinstance(message, m.Join):
            await self._join(message)
            return
        if self.member is None or self.room is None:
            raise m.SignalError("not_joined", "send 'join' first", message.type)
        me, room = self.member.peer, self.room
        if isinstance(message, m.Leave):
            await self.ws.close()
        elif isinstance(message, m.ChatSend):
            await self._chat(me, room, message.text)
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
        if peer_id not in room.members:
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
        rooms = self.app[ROOMS]
        others = rooms.peers(self.cid)
        self.member = Member(peer, self.ws, caller=self.who)
        self.room = rooms.add(self.cid, self.member)
        state = consultation_json(view, [peer_json(p) for p in self.room.peers()])
        self.member.deliver(m.encode(m.Welcome(you=peer, peers=tuple(others), consultation=state)))
        self.room.broadcast(m.PeerJoined(peer), exclude=peer.id)
        if view.consultation.state == "live" and role == "expert":
            self.room.broadcast(m.StateChanged(state), exclude=peer.id)

    async def _chat(self, me: m.Peer, room: Room, text: str) -> None:
        if me.role == "observer":
            raise m.SignalError("not_allowed", "observers follow the consultation view-only", "chat")
        async with self.app[DB]() as db:
            line = await service.add_chat(db, self.cid, me.role, me.user_id, me.name, text)
        data = chat_json(line)
        room.broadcast(m.ChatLine(data["id"], data["from"], data["name"], data["role"], text, data["at"]))

    async def leave(self) -> None:
        if self.member is None:
            return
        peer = self.member.peer
        rooms = self.app[ROOMS]
        await rooms.remove(self.cid, peer.id)
        room = rooms.existing(self.cid)
        if room is not None:
            room.broadcast(m.PeerLeft(peer.id))
        async with self.app[DB]() as db:
            await service.record_event(db, self.cid, "left", {"role": peer.role, **_who(self.who)})
        self.member = None


def _who(who: Caller) -> dict[str, str | None]:
    return {"user_id": who.user.id if who.user else None, "device_id": who.device.id if who.device else None}
