"""A live consultation across a cut link, with real parts: the edge agent (`teleus edge`) in a network namespace of
its own (bench/netlab.py), the real app and headless Chromium on this host, reaching the edge through the lab's link.

Every packet of the edge's namespace is dropped for longer than ICE consent freshness (30 s), then the link returns:
the expert's console decodes video again, voice comes back, chat goes both ways, a mark drawn after the cut reaches
the edge (which relays it to the sonographer and records it), and the session recording, uploaded whole, has the
link-lost span in its timeline. How fast is bench/reconnect.py's business, not this test's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import async_playwright

from bench.netlab import Lab
from recordings import timeline as tl
from recordings.session import segment_offsets
from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.conftest import PASSWORD, seed
from tests.databases import database
from tests.e2e.browser import ARGS, CHROMIUM
from tests.e2e.test_live_consultation import login, point_at, wait_for
from tests.waiting import eventually

pytestmark = [
    pytest.mark.browser,
    pytest.mark.netlab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="the network lab needs root and nft"),
]

TELEUS = str(Path(sys.executable).parent / "teleus")
CUT_SECONDS = 38.0  # longer than ICE consent freshness: both ends' calls have failed when the link returns


@pytest.mark.timeout(900)
async def test_a_cut_longer_than_consent_freshness_recovers_everything(aiohttp_server: Any, tmp_path: Path) -> None:
    async with database("sqlite", tmp_path) as url:
        app = create_app(Settings(data_dir=tmp_path, database_url=url))
        with Lab() as lab:
            clinic = lab.namespace("clinic")
            link = lab.link(clinic, None)
            server = await aiohttp_server(app, host=link.b_address)
            world = await seed(app)
            base = str(server.make_url("/"))
            log_path = tmp_path / "edge.log"
            with log_path.open("w") as edge_log:
                edge = await asyncio.create_subprocess_exec(
                    *clinic.argv([TELEUS, "edge", "--server", base, "--allow-insecure-http", "--ice-host",
                                  link.a_address, "--spool", str(tmp_path / "outbox"), "--recordings",
                                  str(tmp_path / "recordings")]),
                    stdin=asyncio.subprocess.DEVNULL, stdout=edge_log, stderr=edge_log,
                    env={**os.environ, "TELEUS_DEVICE_CREDENTIAL": world.device_a_credential},
                )  # fmt: skip
            # The pages reach the server at the lab's address, not localhost: the microphone needs the origin trusted.
            args = [*ARGS, f"--unsafely-treat-insecure-origin-as-secure={base.rstrip('/')}"]
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
                    try:
                        await _scenario(browser, base, clinic)
                    finally:
                        await browser.close()
            except BaseException:
                print(log_path.read_text()[-20000:])  # the edge's side of a failure
                raise
            finally:
                with contextlib.suppress(ProcessLookupError):
                    edge.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(edge.wait(), 30)
                if edge.returncode is None:
                    edge.kill()
                    await edge.wait()


async def _scenario(browser: Any, base: str, clinic: Any) -> None:
    sono = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    expert = await (await browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
    errors: list[str] = []
    for page in (sono, expert):
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    await login(sono, base, "sono_a")
    await sono.select_option("[data-testid=request-form] [name=exam_type]", "thyroid")
    await sono.fill("[data-testid=request-form] [name=patient_id]", "P-CUT")
    await sono.fill("[data-testid=request-form] [name=patient_name]", "Cut^Link")
    await sono.click("[data-testid=request-form] [type=submit]")
    await sono.wait_for_function("() => location.hash.startsWith('#/c/')")
    cid = (await sono.evaluate("() => location.hash")).split("/")[2].split("?")[0]
    await login(expert, base, "expert")
    row = expert.locator(f"[data-consultation-id='{cid}']")
    await row.wait_for()
    await row.locator("[data-action=join]").click()
    await wait_for(expert, "s => s.role === 'expert' && s.framesDecoded > 30 && s.audio.inboundEnergy > 0", 120)
    await _draw(expert, "arrow", (0.2, 0.25), (0.6, 0.5))
    await wait_for(sono, "s => s.marks.some(m => m.kind === 'arrow')")

    # The cut: the expert's page loses the edge (the server drops the edge's dead socket, or the call fails).
    clinic.cut()
    cut_at = time.monotonic()
    await wait_for(expert, "s => !s.edgeConnected", within=120)
    await asyncio.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    clinic.restore()

    # Video again, on a fresh call, and it keeps coming; the voice too; the marks drawn before the cut are there.
    e = await wait_for(expert, "s => s.edgeConnected && s.framesDecoded > 30", within=120)
    await wait_for(expert, f"s => s.framesDecoded > {e['framesDecoded'] + 30}", within=60)
    await wait_for(expert, "s => s.audio.inboundEnergy > 0 && s.marks.some(m => m.kind === 'arrow')", within=60)
    await wait_for(sono, "s => s.edgeConnected && s.framesDecoded > 30", within=120)

    # Chat both ways, and a mark drawn after the cut reaches the edge: it relays it to the sonographer.
    await expert.fill("[data-testid=chat-input]", "Back after the cut")
    await expert.click("[data-testid=chat-send]")
    await wait_for(sono, "s => s.chat.some(c => c.text === 'Back after the cut')")
    await sono.fill("[data-testid=chat-input]", "Picture is back here")
    await sono.press("[data-testid=chat-input]", "Enter")
    await wait_for(expert, "s => s.chat.some(c => c.text === 'Picture is back here')")
    await _draw(expert, "circle", (0.5, 0.5), (0.55, 0.5))
    await wait_for(sono, "s => s.marks.some(m => m.kind === 'circle')")

    await expert.evaluate("() => window.teleus.live.end()")
    events = await _recorded_timeline(base, cid)
    lost = [e for e in events if e["type"] == "link_lost"]
    assert [e["state"] for e in lost] == ["start", "end"], lost
    # From the last word the edge heard before the cut (stamped when its event loop handled it, which lags by
    # seconds on a loaded machine) to its return to the room after the cut.
    assert lost[1]["t"] - lost[0]["t"] > CUT_SECONDS / 2
    after = [e for e in events if e["t"] > lost[1]["t"]]
    assert any(e["type"] == "mark" and e["kind"] == "circle" for e in after)  # recorded by the edge itself
    assert any(e["type"] == "chat" and e["text"] == "Back after the cut" for e in after)
    assert errors == []


async def _draw(page: Any, tool: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    await page.click(f"[data-tool={tool}]")
    await page.mouse.move(*(await point_at(page, *start)))
    await page.mouse.down()
    await page.mouse.move(*(await point_at(page, *end)), steps=5)
    await page.mouse.up()


async def _recorded_timeline(base: str, cid: str) -> list[dict[str, Any]]:
    """The session recording's timeline once the edge has uploaded it whole (the recording is complete: every
    chunk made during and after the cut arrived and checked out)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(base + "api/v1/auth/login", json={"username": "expert", "password": PASSWORD}) as r:
            assert r.status == 200, await r.text()

        async def complete() -> dict[str, Any] | None:
            async with http.get(base + "api/v1/recordings") as r:
                found = [x for x in (await r.json())["recordings"] if x["consultation_id"] == cid]
            return found[0] if found and found[0]["state"] == "complete" else None

        recording = await eventually(complete, timeout=180, interval=0.5, what="the recording uploaded whole")
        timelines: list[dict[str, Any]] = []
        for segment in recording["segments"]:
            async with http.get(base + f"api/v1/recordings/{recording['id']}/timeline?segment={segment}") as r:
                assert r.status == 200, await r.text()
                timelines.append(await r.json())
        return on_the_session_clock(timelines)


def on_the_session_clock(timelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every segment's events with ``t`` on the session clock (recordings/RECORDINGS.md §2: a recording has several
    segments when its video goes from copied to encoded and back), a link-lost span that goes on into the next
    segment (its ``start`` repeated at that segment's top) as one span."""

    def decoded(t: dict[str, Any]) -> tl.Timeline:
        events = tuple(tl.EVENT_TYPES[x["type"]].from_dict(x) for x in t["events"])
        return tl.Timeline(tl.Header.from_dict(t["header"]), events)


    events: list[dict[str, Any]] = []
    link_lost = "end"
    for offset, timeline in zip(segment_offsets([decoded(t) for t in timelines]), timelines, strict=True):
        for event in timeline["events"]:
            if event["type"] == "link_lost":
                if event["state"] == link_lost:
                    continue  # the open span's start again, at the top of the next segment
                link_lost = event["state"]
            events.append({**event, "t": offset + event["t"]})
    return events
