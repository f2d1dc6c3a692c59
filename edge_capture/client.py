"""The edge's side of the server's public API (PROTOCOL.md §1 and §2), authenticated by the device credential."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from edge_capture.errors import ServerError

log = logging.getLogger(__name__)

# A call on a cut link is given up (and the agent's next poll tries afresh) rather than left waiting on TCP's
# retransmissions, which back off to tens of seconds.
CALL_SECONDS, CONNECT_SECONDS = 10.0, 3.0
CALL_TIMEOUT = aiohttp.ClientTimeout(total=CALL_SECONDS, sock_connect=CONNECT_SECONDS)
# The agent's session default, which only the signaling socket's opening uses (every other call gives its own): a
# TCP connection not made within a second is tried again with a fresh SYN (edge_capture/signaling.py).
SESSION_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=1.0)


class ServerClient:
    def __init__(self, base_url: str, credential: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.session = session
        self.headers = {"Authorization": f"Bearer {credential}"}

    async def _get(
        self, path: str, params: dict[str, str] | None = None, timeout: aiohttp.ClientTimeout = CALL_TIMEOUT
    ) -> Any:
        async with self.session.get(self.base + path, headers=self.headers, params=params, timeout=timeout) as response:
            data = await response.json(content_type=None)
            if response.status != 200:
                raise ServerError(response.status, data.get("error", "unknown"), data.get("message", ""))
            return data

    async def me(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._get("/api/v1/devices/me")
        return data

    async def open_consultations(self) -> list[dict[str, Any]]:
        data = await self._get("/api/v1/devices/me/consultations")
        return list(data["consultations"])

    async def wait_for_consultations(self, since: str | None, wait: float) -> tuple[list[dict[str, Any]], str | None]:
        """The open consultations and their version; while they are still at version `since`, the server holds the
        answer up to `wait` seconds (PROTOCOL.md §1, the device's long poll). A server without versions answers at
        once with None."""
        params = {"wait": f"{wait:g}", "since": since} if since else None
        held = aiohttp.ClientTimeout(total=wait + CALL_SECONDS, sock_connect=CONNECT_SECONDS)  # the server holds it
        data = await self._get("/api/v1/devices/me/consultations", params, held if since else CALL_TIMEOUT)
        version = data.get("version")
        return list(data["consultations"]), version if isinstance(version, str) else None

    async def ice_config(self) -> dict[str, Any]:
        """``GET /api/v1/config``: ICE servers with this device's TURN credential, and the transport policy."""
        data: dict[str, Any] = await self._get("/api/v1/config")
        return data

    async def signal(self, consultation_id: str, heartbeat: float = 20.0) -> aiohttp.ClientWebSocketResponse:
        """The room's socket; a ping after ``heartbeat`` s of silence, and closed when its pong is half that late.
        The connection's timeouts are the session's (the agent's: `SESSION_TIMEOUT`)."""
        url = f"{self.base}/api/v1/consultations/{consultation_id}/signal"
        try:
            return await self.session.ws_connect(url, headers=self.headers, heartbeat=heartbeat)
        except aiohttp.WSServerHandshakeError as exc:
            raise ServerError(exc.status, "refused", exc.message) from None
