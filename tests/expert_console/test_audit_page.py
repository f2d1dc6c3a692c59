"""The audit page (#/audit) in Chromium against the real server: an admin filters the trail, pages through it and
downloads the CSV of what the filters match; anyone else has no link to it, and the server refuses them."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.audit.test_middleware import get
from tests.signaling_server.dicomstore.objects import image

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROWS = "[data-testid=audit-list] tbody tr[data-seq]"


async def test_an_admin_filters_pages_and_exports_the_trail(
    server: Server, context: BrowserContext  # noqa: F811
) -> None:
    stored = await store_instance(server.app[DICOM_STORE], image(name="Zhang^San"), site_id=server.world.site_a,
                                  received_via="test")
    sono, other = await server.api("sono_a"), await server.api("sono_b")
    for _ in range(52):
        assert await get(sono, f"/api/v1/studies/{stored.study_id}") == 200
    assert await get(other, f"/api/v1/studies/{stored.study_id}") == 404

    await server.sign_in(context, "admin")
    page, problems = await open_console(context, "#/audit")
    await expect(page.locator("[data-nav=audit]")).to_be_visible()
    await expect(page.locator(ROWS).first).to_be_visible()

    await page.fill("input[name=study]", stored.study_id)
    await page.select_option("select[name=result]", "error")
    await page.click("[data-testid=audit-filters] [type=submit]")
    refused = page.locator(ROWS)
    await expect(refused).to_have_count(1)
    await expect(refused.locator("[data-field=who]")).to_have_text("sono_b (sonographer)")
    await expect(refused.locator("[data-field=result]")).to_have_text("404 not_found")
    await expect(refused.locator("[data-field=object]")).to_have_text(f"study {stored.study_id}")
    assert "result=error" in page.url
    href = await page.locator("[data-action=csv]").get_attribute("href")
    assert href == f"/api/v1/audit.csv?study={stored.study_id}&result=error"
    csv_text = await page.evaluate("async (url) => (await fetch(url)).text()", href)
    lines = csv_text.strip().splitlines()
    assert len(lines) == 2 and "not_found" in lines[1] and "sono_b" in lines[1]

    await page.click("text=Clear")
    await page.fill("input[name=user]", "sono_a")
    await page.fill("input[name=study]", stored.study_id)
    await page.click("[data-testid=audit-filters] [type=submit]")
    # The unfiltered list before it has 50 rows too: wait for the filtered one (every row sono_a's) before paging.
    await expect(page.locator(ROWS).locator("[data-field=who]")).to_have_text(["sono_a (sonographer)"] * 50)
    await expect(page.locator("[data-action=newer]")).to_be_disabled()
    await page.click("[data-action=older]")
    await expect(page.locator(ROWS)).to_have_count(2)
    await expect(page.locator("[data-action=older]")).to_be_disabled()
    await page.click("[data-action=newer]")
    await expect(page.locator(ROWS)).to_have_count(50)
    assert problems == []


async def test_others_have_no_audit_link_and_are_refused(server: Server, browser: Browser) -> None:  # noqa: F811
    expert = await browser.new_context(base_url=server.url)
    try:
        await server.sign_in(expert, "expert")
        page, _ = await open_console(expert, "#/audit")
        await expect(page.locator("[data-testid=audit-error]")).to_have_attribute("data-code", "forbidden")
        await expect(page.locator("[data-nav=audit]")).to_be_hidden()
        await expect(page.locator(ROWS)).to_have_count(0)
    finally:
        await expert.close()
