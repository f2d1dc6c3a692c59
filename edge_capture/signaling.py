"""The edge's signaling socket to one consultation's room (PROTOCOL.md §2): join, typed messages, rejoin.

The messages are the server's own (signaling_server/signaling/messages.py): what arrives is decoded and
validated into a `ServerMessage` before anyone here looks at it, and what the edge sends is encoded from a
`ClientMessage`. A message that does not decode is logged and dropped; one that fails to be handled must not take
the edge out of the room either.

If the socket drops, the edge rejoins as a new peer (the `on_drop` callback closes every peer connection first:
aiortc has no ICE restart, so the pages get fresh offers; the server lets the new socket replace the old one at
once, PROTOCOL.md §2). The session ends when the consultation closes, or when the server refuses the edge for good
(401, 404, 409, or a revoked credential).

How fast it comes back after a cut link (docs/LIVE.md, Reconnection):

- a WebSocket ping every `HEARTBEAT_SECONDS` of silence, and the socket counted dead when its pong is
  `HEARTBEAT_SECONDS / 2` late: a stalled TCP connection (whose retransmissions back off to tens of seconds after
  a long cut) is never waited on for more than ~9 s; a shorter cut is ridden through by the calls themselves;
- a TCP connection not made within a second (the agent's session, edge_capture/client.py `SESSION_TIMEOUT`) is given
  up and tried again with a fresh SYN (the kernel's own SYN retries back off to 16 and 32 s), so a SYN goes out at
  least every ~1.25 s while the link is down; the whole opening, TLS and the upgrade included, may take
  `OPEN_SECONDS` on a slow link;
- between attempts, `LIVE_DELAYS` while the consultation is live, `RECONNECT_DELAYS` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from edge_capture.client import ServerClient
from edge_capture.errors import ServerError
from signaling_server.signaling.messages import (
    ClientMessage,
    Join,
    ServerMessage,
    SignalError,
    decode_server_message,
    encode_client_message,
)

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
LIVE_DELAYS = (0.1, 0.25)  # someone is watching: try again at once, and keep trying
HEARTBEAT_SECONDS = 6.0  # shorter risks taking a loaded server's late pong for a dead link
OPEN_SECONDS = 10.0  # the whole opening: TCP, TLS, the HTTP upgrade
CLOSE_GOING_AWAY = 4001  # the server closes with it when the device is revoked or the consultation ends
REFUSED_STATUSES = (401, 404, 409)

MessageHandler = Callable[[ServerMessage], Awaitable[None]]


class SignalingSession:
    def __init__(
        self,
        client: ServerClient,
        consultation_id: str,
        on_message: MessageHandler,
        on_drop: Callable[[], Awaitable[None]],
        live: Callable[[], bool] = lambda: False,
        heartbeat: float = HEARTBEAT_SECONDS,
        open_seconds: float = OPEN_SECONDS,
    ) -> None:
        self.client = client
        self.cid = consultation_id
        self._on_message = on_message
        self._on_drop = on_drop
        self._live = live  # whether the consultation is live (someone watches): reconnect without backing off
        self.heartbeat = heartbeat
        self.open_seconds = open_seconds
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.finished = False
        self.last_heard_ns: int | None = None  # time.monotonic_ns() of the last message from the server
        self.sessions = 0  # sockets that reached the room

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def run(self) -> None:
        """Stay in the room until the consultation closes; rejoin after drops."""
        attempt = 0
        while not self.finished:
            try:
                opening = self.client.signal(self.cid, heartbeat=self.heartbeat)
                self._ws = await asyncio.wait_for(opening, self.open_seconds)
                attempt = 0
                await self._session(self._ws)
            except ServerError as exc:
                if exc.status in REFUSED_STATUSES or exc.fatal:
                    log.info("consultation %s: the server refused the edge: %s", self.cid, exc)
                    return
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if attempt == 0:
                    log.info("consultation %s: signaling lost: %s", self.cid, exc or type(exc).__name__)
            finally:
                await self._on_drop()
            if not self.finished:
                delays = LIVE_DELAYS if self._live() else RECONNECT_DELAYS
                await asyncio.sleep(delays[min(attempt, len(delays) - 1)])
                attempt += 1

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(encode_client_message(Join()))
        self.sessions += 1
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            self.last_heard_ns = time.monotonic_ns()
            try:
                message = decode_server_message(frame.data)
            except SignalError as exc:
                log.warning("consultation %s: an undecodable message dropped: %s %s", self.cid, exc.code, exc.message)
                continue
            try:
                await self._on_message(message)
            except Exception:  # one bad message must not take the edge out of the room
                log.exception("consultation %s: failed to handle %s", self.cid, type(message).__name__)
        log.info("consultation %s: signaling closed (%s)", self.cid, ws.close_code)
        if ws.close_code == CLOSE_GOING_AWAY:
            log.info("consultation %s: closed by the server (%s)", self.cid, ws.close_code)
            with contextlib.suppress(ServerError, aiohttp.ClientError):
                still_open = {c["id"] for c in await self.client.open_consultations()}
                self.finished = self.cid not in still_open

    async def send(self, message: ClientMessage) -> None:
        """Send if the socket is up; a message lost with the socket is for the next session to redo."""
        try:
            text = encode_client_message(message)
        except ValueError:  # NaN or Infinity in a field: the server would refuse it, a page could not parse it
            log.error("consultation %s: not sent, not JSON: %r", self.cid, message)
            return
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def finish(self) -> None:
        """The consultation closed: leave the room and do not come back."""
        self.finished = True
        if self._ws is not None:
            await self._ws.close()
