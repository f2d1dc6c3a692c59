"""A live consultation through a real TURN relay (coturn), between two networks that cannot reach each other.

The lab (bench/netlab.py): the clinic (the edge agent, a real ``python -m edge_capture``, and the sonographer's
Chromium) in one network namespace, the expert's Chromium in another. Each reaches the host, where the teleus
server and coturn listen on one address (the host's end of the clinic's link; the expert has a route to that one
address only), and neither can reach the other. With TURN credentials minted by the server, video and the expert's
pointer flow through the relay; without them the expert's page never connects. The clinic's site is relay-only
(TELEUS_ICE_RELAY_SITES): its edge and sonographer use relayed candidates although they share a LAN.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.databases import database
from tests.e2e.relaylab import (
    SECRET,
    SELECTED_PAIR,
    Net,
    browser_in,
    edge_in,
    join_as_expert,
    relay_lab,
    request_consultation,
    selected_pair,
)
from tests.e2e.test_live_consultation import point_at, wait_for
from tests.turnserver import coturn

pytestmark = [
    pytest.mark.browser,
    pytest.mark.netlab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the network lab needs root"),
]


@pytest.fixture
def net() -> Iterator[Net]:
    with relay_lab() as net:
        yield net


@asynccontextmanager
async def consultation_world(
    net: Net, tmp_path: Path, aiohttp_server: Any, turn_port: int | None
) -> AsyncIterator[tuple[str, Any]]:
    """The teleus server on the hub address (with TURN when a coturn port is given), seeded, and the edge in the
    clinic."""
    async with database("sqlite", tmp_path) as url:
        turn: dict[str, Any] = {}
        if turn_port is not None:
            turn = {
                "turn_urls": (f"turn:{net.hub}:{turn_port}?transport=udp",),
                "turn_secret": SECRET,
                "relay_sites": ("north",),
            }
        app = create_app(Settings(data_dir=tmp_path, database_url=url, **turn))
        server = await aiohttp_server(app, host=net.hub)
        world = await seed(app)
        base = str(server.make_url("/"))
        async with edge_in(net.clinic, base, world.device_a_credential, tmp_path / "edge"):
            yield base, world


async def test_video_and_guidance_flow_through_the_relay(net: Net, tmp_path: Path, aiohttp_server: Any) -> None:
    with coturn(tmp_path / "coturn", [net.hub], net.hub, SECRET) as turn_server:
        turn_port = turn_server.port
        async with (
            consultation_world(net, tmp_path, aiohttp_server, turn_port) as (base, _),
            browser_in(net.clinic) as clinic_browser,
            browser_in(net.expert) as expert_browser,
        ):
            sono = await (await clinic_browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
            expert = await (await expert_browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
            cid = await request_consultation(sono, base)
            await wait_for(sono, "s => s.framesDecoded > 10", within=90)
            await join_as_expert(expert, base, cid)
            await wait_for(expert, "s => s.framesDecoded > 30 && s.role === 'expert'", within=90)

            # The expert's video arrives through the relay: the edge is relay-only (its site's policy), so the
            # candidate it answers from is coturn's.
            pair = await selected_pair(expert)
            assert pair["remote"] == "relay", pair  # (the video itself: the frames decoded above)
            # The sonographer shares the clinic's LAN with the edge, yet relays too: the site requires it.
            pair = await selected_pair(sono)
            assert pair["local"] == "relay" and pair["remote"] == "relay", pair

            # Guidance: the expert's pointer reaches the edge over the relayed data channel, and the edge relays it
            # to the sonographer's screen.
            await expert.click("[data-tool=pointer]")
            await expert.mouse.move(*(await point_at(expert, 0.30, 0.40)))
            await expert.mouse.move(*(await point_at(expert, 0.33, 0.44)))
            near = "Math.abs(s.remotePointer.x - 0.33) < 0.01 && Math.abs(s.remotePointer.y - 0.44) < 0.01"
            s = await wait_for(sono, f"s => s.remotePointer && {near}", within=60)
            assert s["remotePointer"]["role"] == "expert"


async def test_without_turn_the_two_networks_cannot_connect(net: Net, tmp_path: Path, aiohttp_server: Any) -> None:
    async with (
        consultation_world(net, tmp_path, aiohttp_server, None) as (base, _),
        browser_in(net.clinic) as clinic_browser,
        browser_in(net.expert) as expert_browser,
    ):
        sono = await (await clinic_browser.new_context()).new_page()
        expert = await (await expert_browser.new_context()).new_page()
        cid = await request_consultation(sono, base)
        # On the clinic's LAN the edge and the sonographer connect directly (host candidates)...
        await wait_for(sono, "s => s.framesDecoded > 10", within=90)
        # ...but the expert's network has no route to the clinic's: ICE checks fail (Chromium reports the
        # connection `disconnected` or `failed` once its checks time out), and no frame is ever decoded.
        await join_as_expert(expert, base, cid)
        s = await wait_for(expert, "s => ['failed', 'disconnected'].includes(s.iceState)", within=120)
        assert s["framesDecoded"] == 0 and not s["edgeConnected"]
        assert await expert.evaluate(SELECTED_PAIR) is None
