"""The relay lab shared by tests/e2e/test_turn_relay.py and bench/turn_relay.py: two network namespaces (the
clinic, the expert) that reach one host address (the teleus server, coturn) and not each other; Chromium and the
real edge agent inside them; the steps of a consultation and the page's selected ICE candidate pair."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench.netlab import Lab, Namespace
from tests.e2e.browser import ARGS
from tests.e2e.test_live_consultation import login

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


@contextmanager
def relay_lab() -> Iterator[Net]:
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
async def edge_in(
    ns: Namespace, base: str, credential: str, tmp: Path, extra: tuple[str, ...] = ()
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The real edge agent as a process in the clinic's namespace (``extra``: more `teleus edge` options)."""
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    cred = tmp / "device.cred"
    cred.write_text(credential)
    cred.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    log = (tmp / "edge.log").open("wb")
    proc = ns.popen(
        [sys.executable, "-m", "edge_capture", "--server", base, "--allow-insecure-http", "--credential-file",
         str(cred), "--spool", str(tmp / "spool"), "--recordings", str(tmp / "recordings"), "--no-record",
         "--no-live-qc", "--source", "synthetic:thyroid", *extra],
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


