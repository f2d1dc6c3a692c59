"""The ICE configuration of the edge's peer connections: the server's STUN/TURN servers with a TURN credential
minted for this device, and the ICE transport policy (``relay`` for a site whose firewall allows only its TURN
server), fetched from ``GET /api/v1/config`` afresh for each new peer connection, so a credential never
outlives the call it was fetched for by more than its lifetime (PROTOCOL.md "Configuration").

aiortc 1.16 takes both from ``RTCConfiguration`` (``iceServers``, ``iceTransportPolicy``; aioice's
``TransportPolicy.RELAY`` then gathers relayed candidates only), but it uses only the first TURN URL it can
speak. The server lists its URLs in its preferred order; ``prefer`` (``teleus edge --turn-transport``) moves one
kind first: ``udp``, ``tcp`` or ``tls`` (``turns:``, e.g. on port 443 through a firewall that allows nothing else).

Tested by tests/edge_capture/test_ice.py and tests/e2e/test_turn_relay.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from edge_capture.errors import ServerError

log = logging.getLogger(__name__)

TURN_TRANSPORTS = ("udp", "tcp", "tls")


def turn_transport(url: str) -> str | None:
    """``udp``, ``tcp`` or ``tls`` for a TURN URL (None for anything else)."""
    scheme, _, rest = url.partition(":")
    if scheme == "turns":
        return "tls"
    if scheme != "turn":
        return None
    return "tcp" if "transport=tcp" in rest.lower() else "udp"


@dataclass(frozen=True)
class IceConfig:
    servers: tuple[RTCIceServer, ...]
    policy: str  # "all" | "relay"
    expires_at: datetime | None  # when its TURN credential ends; None without one

    @classmethod
    def from_json(cls, data: dict[str, Any], prefer: str | None = None) -> IceConfig:
        servers = []
        for entry in data.get("ice_servers", []):
            urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
            if prefer is not None:
                urls = sorted(urls, key=lambda url: turn_transport(url) != prefer)  # stable: the rest keep order
            servers.append(RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential")))
        expires = data.get("expires_at")
        policy = data.get("ice_transport_policy", "all")
        return cls(tuple(servers), policy, datetime.fromisoformat(expires) if expires else None)

    def rtc_configuration(self) -> RTCConfiguration:
        policy = RTCIceTransportPolicy.RELAY if self.policy == "relay" else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=list(self.servers), iceTransportPolicy=policy)


class IceSource:
    """Where each new peer connection gets its configuration. A failed fetch falls back to the last one fetched
    (the server may be out of reach for a moment while a page is still connected to the edge)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        prefer: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = 10.0,
    ) -> None:
        self._fetch = fetch
        self._timeout = timeout  # a page waits for its offer meanwhile: a hung server must not hold it for long
        self._prefer = prefer
        self._clock = clock
        self.last: IceConfig | None = None

    @classmethod
    def fixed(cls, ice_servers: list[dict[str, Any]] | None = None, policy: str = "all") -> IceSource:
        """A configuration that never changes (tests, and peers on one LAN)."""
        data = {"ice_servers": ice_servers or [], "ice_transport_policy": policy}

        async def same() -> dict[str, Any]:
            return data

        return cls(same)

    async def refresh(self) -> IceConfig:
        """Fetch now; raises what the fetch raises, or TimeoutError."""
        async with asyncio.timeout(self._timeout):
            data = await self._fetch()
        self.last = IceConfig.from_json(data, self._prefer)
        return self.last

    async def configuration(self) -> RTCConfiguration:
        """A fresh configuration for a new peer connection (the last one if the server cannot be reached)."""
        try:
            config = await self.refresh()
        except (ServerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            if self.last is None:
                raise
            config = self.last
            expired = config.expires_at is not None and config.expires_at <= self._clock()
            log.warning("ICE configuration not refreshed (%s); using the last one%s", exc,
                        ", whose TURN credential has expired" if expired else "")  # fmt: skip
        return config.rtc_configuration()
