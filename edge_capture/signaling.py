"""The edge's signaling socket to one consultation's room (PROTOCOL.md §2): join, typed messages, rejoin.

The messages are the server's own (signaling_server/signaling/messages.py): what arrives is decoded and
validated into a `ServerMessage` before anyone here looks at it, and what the edge sends is encoded from a
`ClientMessage`. A message that does not decode is logged and dropped; one that fails to be handled must not take
the edge out of the room either.

If the socket drops, the edge rejoins as a new peer after a short backoff (the `on_drop` callback closes every
peer connection first: aiortc has no ICE restart, so the pages get fresh offers). The session ends when the
consultation closes, or when the server refuses the edge for good (401, 404, 409, or a revoked credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    ) -> None:
        self.client = client
        self.cid = consultation_id
        self._on_message = on_message
        self._on_drop = on_drop
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.finished = False

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def run(self) -> None:
        """Stay in the room until the consultation closes; rejoin after drops."""
        attempt = 0
        while not self.finished:
            try:
                self._ws = await self.client.signal(self.cid)
                attempt = 0
                await self._session(self._ws)
            except ServerError as exc:
                if exc.status in REFUSED_STATUSES or exc.fatal:
                    log.info("consultation %s: the server refused the edge: %s", self.cid, exc)
                    return
            except (aiohttp.ClientError, OSError) as exc:
                log.info("consultation %s: signaling lost: %s", self.cid, exc)
            finally:
                await self._on_drop()
            if not self.finished:
                await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(encode_client_message(Join()))
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                message = decode_server_message(frame.data)
            except SignalError as exc:
                log.warning("consultation %s: an undecodable message dropped: %s %s", self.cid, exc.code, exc.message)
                continue
            try:
                await self._on_message(message)
            except Exception:  # one bad message must not take the edge out of the room
                log.exception("consultation %s: failed to handle %s", self.cid, type(message).__name__)
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
