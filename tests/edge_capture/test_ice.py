"""The edge's ICE configuration: what aiortc is given (servers, credential, relay-only, which TURN URL), a fresh
credential for each peer connection from the real server, the fallback when it is out of reach, and relay-only
gathering against a real coturn."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCIceTransportPolicy, RTCPeerConnection
from aiortc.rtcicetransport import connection_kwargs

from edge_capture.client import ServerClient
from edge_capture.ice import IceConfig, IceSource, turn_transport
from signaling_server.appkeys import CLOCK
from tests.conftest import make_app, seed
from tests.turnserver import coturn

SECRET = "edge-test-secret"
URLS = ["turn:turn.example.cn:3478?transport=udp", "turn:turn.example.cn:3478?transport=tcp",
        "turns:turn.example.cn:443?transport=tcp"]  # fmt: skip
CONFIG = {
    "ice_servers": [{"urls": "stun:stun.example.cn:3478"}, {"urls": URLS, "username": "1796:d1", "credential": "pw"}],
    "ice_transport_policy": "relay",
    "expires_at": "2026-12-07T13:30:00+00:00",
}


def test_the_configuration_gives_aiortc_the_servers_the_credential_and_relay_only() -> None:
    config = IceConfig.from_json(CONFIG)
    rtc = config.rtc_configuration()
    assert rtc.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    assert config.expires_at == datetime(2026, 12, 7, 13, 30, tzinfo=UTC)
    used = connection_kwargs(rtc.iceServers or [])  # what aiortc hands aioice: one STUN and one TURN server
    assert used["stun_server"] == ("stun.example.cn", 3478)
    assert used["turn_server"] == ("turn.example.cn", 3478) and used["turn_transport"] == "udp"
    assert (used["turn_username"], used["turn_password"]) == ("1796:d1", "pw")
    all_policy = IceConfig.from_json({**CONFIG, "ice_transport_policy": "all"}).rtc_configuration()
    assert all_policy.iceTransportPolicy == RTCIceTransportPolicy.ALL


@pytest.mark.parametrize(("prefer", "server", "transport", "tls"), [
    ("udp", ("turn.example.cn", 3478), "udp", False),
    ("tcp", ("turn.example.cn", 3478), "tcp", False),
    ("tls", ("turn.example.cn", 443), "tcp", True),
])  # fmt: skip
def test_the_preferred_turn_transport_is_the_one_aiortc_uses(
    prefer: str, server: tuple[str, int], transport: str, tls: bool
) -> None:
    rtc = IceConfig.from_json(CONFIG, prefer=prefer).rtc_configuration()
    used = connection_kwargs(rtc.iceServers or [])
    assert (used["turn_server"], used["turn_transport"], used["turn_ssl"]) == (server, transport, tls)


def test_turn_transport_of_a_url() -> None:
    assert [turn_transport(u) for u in [*URLS, "stun:x:3478"]] == ["udp", "tcp", "tls", None]


async def test_each_peer_connection_gets_a_fresh_credential_and_the_last_one_when_the_server_is_away(
    aiohttp_server: Any, sqlite_url: str, tmp_path: Path
) -> None:
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    app = await make_app(sqlite_url, tmp_path, turn_urls=(URLS[0],), turn_secret=SECRET)
    app[CLOCK] = lambda: now[0]
    server = await aiohttp_server(app)
    world = await seed(app)
    async with aiohttp.ClientSession() as session:
        client = ServerClient(str(server.make_url("/")), world.device_a_credential, session)
        source = IceSource(client.ice_config)
        first = await source.configuration()
        now[0] += timedelta(hours=1)
        second = await source.configuration()
        names = [c.iceServers[0].username for c in (first, second) if c.iceServers]
        assert len(names) == 2 and names[0] != names[1]
        assert names[1].startswith(f"{int((now[0] + timedelta(hours=4)).timestamp())}:")
        assert source.last is not None and source.last.expires_at == now[0] + timedelta(hours=4)

        await server.close()
        fallback = await source.configuration()  # the server is gone: the last configuration is used
        assert fallback.iceServers and fallback.iceServers[0].username == names[1]


async def test_a_server_that_does_not_answer_does_not_hold_a_peer_connection_back() -> None:
    hung = asyncio.Event()
    answers = [CONFIG]

    async def fetch() -> dict[str, Any]:
        if not answers:
            await hung.wait()  # never set: the server accepted the request and went silent
        return answers.pop()

    source = IceSource(fetch, timeout=0.2)
    await source.refresh()
    config = await source.configuration()  # falls back to the last one after the timeout
    assert config.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    with pytest.raises(TimeoutError):
        await source.refresh()


async def test_relay_only_gathers_relayed_candidates_from_the_real_coturn(tmp_path: Path) -> None:
    from signaling_server import ice as server_ice

    with coturn(tmp_path / "coturn", ["127.0.0.1"], "127.0.0.1", SECRET) as turn_server:
        port = turn_server.port
        cred = server_ice.mint(SECRET, "d1", datetime.now(UTC), 600)
        servers = [{"urls": [f"turn:127.0.0.1:{port}?transport=udp"], "username": cred.username,
                    "credential": cred.credential}]  # fmt: skip
        for policy, kinds in (("relay", {"relay"}), ("all", {"host", "relay"})):
            source = IceSource.fixed(servers, policy)
            pc = RTCPeerConnection(await source.configuration())
            try:
                pc.createDataChannel("guidance")
                await pc.setLocalDescription(await pc.createOffer())
                sdp = pc.localDescription.sdp
                found = {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line}
                assert kinds <= found and (policy == "all" or found == {"relay"}), (policy, found)
            finally:
                await pc.close()
