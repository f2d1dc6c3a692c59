"""The admin's DICOM page (#/dicom) in Chromium against the real server: the peers (add one with a pasted
fingerprint, a refused network with its code, disable and enable), and the forward jobs that failed against a PACS
that is not there, re-queued one by one and then all at once (signaling_server/dicomstore/DICOMWEB.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.models import DicomPeer, ForwardJob
from signaling_server.dicomstore.forward import FORWARDER
from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.databases import database
from tests.expert_console.test_app import Server, open_console
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.dicomstore.orthanc import free_port
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

JOBS = "[data-testid=job-list] tr[data-job]"
FINGERPRINT = "AB:" * 31 + "CD"


@pytest_asyncio.fixture(loop_scope="session")
async def forwarding(tmp_path: Path) -> AsyncIterator[Server]:
    """The real app forwarding to a PACS that is not there, one attempt per job: every forward fails."""
    async with database("sqlite", tmp_path) as url:
        settings = Settings(data_dir=tmp_path, database_url=url).with_overrides(
            pacs=f"NOBODY@127.0.0.1:{free_port()}", forward_max_attempts=1, forward_backoff_seconds=0.05
        )
        client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
        await client.start_server()
        try:
            app = client.server.app
            running = Server(app, client, await seed(app), str(client.make_url("")).rstrip("/"))
            yield running
            for api in running.opened:
                await api.close()
        finally:
            await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def admin_context(browser: Browser, forwarding: Server) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=forwarding.url)
    yield context
    await context.close()


async def _states(server: Server) -> list[str]:
    async with server.app[DB]() as db:
        return [j.state for j in await db.scalars(select(ForwardJob).order_by(ForwardJob.id))]


async def test_an_admin_manages_peers_and_requeues_failed_forwards(
    forwarding: Server, admin_context: BrowserContext
) -> None:
    server = forwarding
    for n in range(3):
        await store_instance(server.app[DICOM_STORE], image(modality="CR", seed=n), site_id=server.world.site_a,
                             received_via="test")

    async def all_failed() -> bool:
        return await _states(server) == ["failed"] * 3

    await eventually(all_failed, what="3 failed forward jobs")
    server.app[FORWARDER].max_attempts = 100  # from now on a re-queued job stays pending, retried much later
    server.app[FORWARDER].backoff = server.app[FORWARDER].backoff * 100_000

    await server.sign_in(admin_context, "admin")
    page, problems = await open_console(admin_context, "#/dicom")
    page.on("dialog", lambda dialog: dialog.accept())
    await expect(page.locator("[data-nav=dicom]")).to_be_visible()
    await expect(page.locator("[data-nav=patients]")).to_be_hidden()

    north = page.locator('tr[data-ae="NORTH_CR"]')
    await expect(north.locator("[data-field=networks]")).to_have_text("127.0.0.1/32")
    form = page.locator("[data-testid=create-peer]")
    await form.locator("[name=ae_title]").fill("RIVER_US")
    await form.locator("[name=site_id]").select_option(label="river · Riverside Community Health Centre")
    await form.locator("[name=networks]").fill("10.1.3.0/24, 10.1.4.7")
    await form.locator("[name=tls_client_sha256]").fill(f"SHA256 Fingerprint={FINGERPRINT}")
    await form.locator("[name=max_mib]").fill("64")
    await form.locator("[type=submit]").click()
    river = page.locator('tr[data-ae="RIVER_US"]')
    await expect(river.locator("[data-field=site]")).to_have_text("river")
    await expect(river.locator("[data-field=networks]")).to_have_text("10.1.3.0/24, 10.1.4.7/32")  # as kept
    await expect(river.locator("[data-field=certificate]")).to_have_text("ab" * 31 + "cd")
    await expect(river.locator("[data-field=limits]")).to_have_text("64 MiB · 4 at once")

    await form.locator("[name=ae_title]").fill("RIVER_CT")
    await form.locator("[name=networks]").fill("10.1.2.3/24")  # host bits set
    await form.locator("[type=submit]").click()
    await expect(page.locator("[data-testid=dicom-error]")).to_have_attribute("data-code", "invalid_dicom_peer")
    await expect(page.locator('tr[data-ae="RIVER_CT"]')).to_have_count(0)

    await north.locator("[data-action=disable]").click()
    await expect(north.locator("[data-field=state]")).to_have_text("disabled")
    async with server.app[DB]() as db:
        peer = await db.scalar(select(DicomPeer).where(DicomPeer.ae_title == "NORTH_CR"))
        assert peer is not None and not peer.enabled
    await north.locator("[data-action=enable]").click()
    await expect(north.locator("[data-field=state]")).to_have_text("enabled")

    jobs = page.locator(JOBS)
    await expect(jobs).to_have_count(3)
    await expect(jobs.first.locator("[data-field=attempts]")).to_have_text("1")
    await expect(jobs.first.locator("[data-field=last_error]")).to_contain_text("association")
    await jobs.first.locator("[data-action=requeue]").click()
    await expect(jobs).to_have_count(2)
    assert (await _states(server))[0] == "pending"
    await page.locator("[data-action=requeue-all]").click()
    await expect(page.locator("[data-testid=dicom-notice]")).to_have_text("2 jobs re-queued.")
    await expect(jobs).to_have_count(0)
    await expect(page.locator("[data-action=requeue-all]")).to_be_disabled()
    assert await _states(server) == ["pending"] * 3
    assert problems == []
