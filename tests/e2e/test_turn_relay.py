"""A live consultation through a real TURN relay (coturn), between two networks that cannot reach each other.

The lab (bench/netlab.py): the clinic (the edge agent, a real ``python -m edge_capture``, and the sonographer's
Chromium) in one network namespace, the expert's Chromium in another. Each reaches the host, where the teleus
server and coturn listen on one address (the host's end of the clinic's link; the expert has a route to that one
address only), and neither can reach the other. With TURN credentials minted by the server, video and the expert's
pointer flow through the relay; without them the expert's page never connects. The clinic's site is relay-only
(TELEUS_ICE_RELAY_SITES): its edge and sonographer use relayed candidates although they share a LAN.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from bench.netlab import Lab, Namespace
from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.databases import database
from tests.e2e.browser import ARGS
from tests.e2e.test_live_consultation import login, point_at, wait_for
from tests.turnserver import coturn

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.geteuid() != 0, reason="the network lab needs root"),
]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "lab-turn-secret-0123456789"

# The selected candidate pair of the page's peer connection: its local and remote candidate types.
SELECTED_PAIR = """async () => {
  const pc = window.teleus && window.teleus.live && window.teleus.live.pc;
  if (!pc) return null;
  const stats = [...(await pc.getStats()).values()];
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const pair = transport ? stats.find((s) => s.id === transport.selectedCandidatePairId)
                         : stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
  if (!pair) return null;
  const byId = (id) => stats.find((s) => s.id === id);
  return {local: byId(pair.localCandidateId).candidateType, remote: byId(pair.remoteCandidateId).candidateType,
          bytesReceived: pair.bytesReceived};
}"""


@dataclass
class Net:
    lab: Lab
    clinic: Namespace
    expert: Namespace
    hub: str  # the host's address both namespaces reach: the teleus server and coturn listen here


@pytest.fixture
def net() -> Iterator[Net]:
    with Lab() as lab:
        clinic, expert = lab.namespace("clinic"), lab.namespace("expert")
        clinic_up, expert_up = lab.link(clinic, None), lab.link(expert, None)
        expert.route(clinic_up.b_address, via=expert_up.b_address)  # the host's one address, not the clinic
        yield Net(lab, clinic, expert, clinic_up.b_address)


@asynccontextmanager
async def browser_in(ns: Namespace) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(ns.chromium()), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def edge_in(ns: Namespace, base: str, credential: str, tmp: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The real edge agent as a process in the clinic's namespace."""
    cred = tmp / "device.cred"
    cred.write_text(credential)
    cred.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    log = (tmp / "edge.log").open("wb")
    proc = ns.popen(
        [sys.executable, "-m", "edge_capture", "--server", base, "--allow-insecure-http", "--credential-file",
         str(cred), "--spool", str(tmp / "spool"), "--recordings", str(tmp / "recordings"), "--no-record",
         "--no-live-qc", "--source", "synthetic:thyroid"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        log.close()


async def request_consultation(page: Page, base: str) -> str:
    await login(page, base, "sono_a")
    await page.select_option("[data-testid=request-form] [name=exam_type]", "thyroid")
    await page.fill("[data-testid=request-form] [name=patient_id]", "P-TURN")
    await page.fill("[data-testid=request-form] [name=patient_name]", "李^四")
    await page.click("[data-testid=request-form] [type=submit]")
    await page.wait_for_function("() => location.hash.startsWith('#/c/')")
    return str(await page.evaluate("() => location.hash")).split("/")[2].split("?")[0]


async def join_as_expert(page: Page, base: str, cid: str) -> None:
    await login(page, base, "expert")
    row = page.locator(f"[data-consultation-id='{cid}']")
    await row.wait_for(timeout=60_000)
    await row.locator("[data-action=join]").click()


async def selected_pair(page: Page) -> dict[str, Any]:
    pair: dict[str, Any] | None = None
    for _ in range(100):
        pair = await page.evaluate(SELECTED_PAIR)
        if pair:
            return pair
        await asyncio.sleep(0.2)
    raise AssertionError("no selected candidate pair")


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
    with coturn(tmp_path / "coturn", [net.hub], net.hub, SECRET) as (turn_port, _):
        (tmp_path / "edge").mkdir()
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
            assert pair["remote"] == "relay", pair
            assert pair["bytesReceived"] > 0
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
    (tmp_path / "edge").mkdir()
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
