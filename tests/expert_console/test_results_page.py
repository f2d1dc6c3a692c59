"""The community's results page (#/results) in Chromium, in Chinese, against the real server: the sonographer
sees their exams in the district's states, downloads the approved report's PDF and the images as a DICOM zip
(their content checked), opens the report as printed, and sees an exam turn 已审核 when the centre approves it,
told by the server's change notice (docs/RESULTS.md)."""

from __future__ import annotations

import asyncio
import os
import re
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from pypdf import PdfReader

from tests.expert_console.test_app import Server, server  # noqa: F401  (fixtures)
from tests.signaling_server.results.exams import examined, reported

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def _chinese_context(browser: Browser, server: Server, username: str) -> tuple[BrowserContext, Any]:  # noqa: F811
    context = await browser.new_context(base_url=server.url, locale="zh-CN", accept_downloads=True)
    api = await server.sign_in(context, username)
    return context, api


async def _downloaded(page: Page, locator: Any) -> bytes:
    async with page.expect_download() as waiting:
        await locator.click()
    download = await waiting.value
    path = await download.path()
    return await asyncio.to_thread(Path(path).read_bytes)


async def test_the_community_opens_prints_and_downloads_and_hears_of_an_approval(
    browser: Browser,
    server: Server,  # noqa: F811
) -> None:
    reader, senior = await server.api("expert"), await server.api("expert2")
    done, sops = await examined(server.app, server.world.site_a, name="张^三", accession="A1")
    approved = await reported(reader, done, sops)
    status, _ = await senior.post(f"/api/v1/reports/{approved}/approve")
    assert status == 200
    waiting, sops_b = await examined(server.app, server.world.site_a, name="李^四", accession="B2", images=1)
    pending = await reported(reader, waiting, sops_b)
    await examined(server.app, server.world.site_b, name="王^五", accession="C3", images=1)  # another site's

    context, _ = await _chinese_context(browser, server, "sono_a")
    problems: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto("/#/results")
    rows = page.locator("[data-testid=results-table] tbody tr")
    await expect(rows).to_have_count(2)
    row_a, row_b = page.locator('tr[data-accession="A1"]'), page.locator('tr[data-accession="B2"]')
    await expect(row_a.locator("[data-testid=result-state]")).to_have_text("已审核")
    await expect(row_b.locator("[data-testid=result-state]")).to_have_text("已报告")
    await expect(row_a.locator("td").first).to_have_text("张三")
    await expect(page.locator("[data-nav=results]")).to_be_visible()
    await expect(page.locator("h1")).to_have_text("检查结果")
    await expect(row_b.locator("[data-testid=result-pdf]")).to_have_count(0)

    pdf = await _downloaded(page, row_a.locator("[data-testid=result-pdf]"))
    text = re.sub(r"\s+", "", "".join(p.extract_text() or "" for p in PdfReader(BytesIO(pdf)).pages))
    assert pdf.startswith(b"%PDF-") and "张三" in text and "审核医师" in text and "Expert2" in text
    archive = zipfile.ZipFile(BytesIO(await _downloaded(page, row_a.locator("[data-testid=result-dicom]"))))
    leaves = sorted(name.rsplit("/", 1)[-1][:2] for name in archive.namelist() if name != "DICOMDIR")
    assert "DICOMDIR" in archive.namelist() and leaves == ["IM", "IM", "SR"]  # the two images and the report's SR
    jpegs = zipfile.ZipFile(BytesIO(await _downloaded(page, row_a.locator("[data-testid=result-jpeg]"))))
    assert len(jpegs.namelist()) == 2

    if os.environ.get("TELEUS_SCREENS"):
        await page.screenshot(path=str(Path(os.environ["TELEUS_SCREENS"]) / "results-zh.png"), full_page=True)

    heard = await page.evaluate("window.teleus.events.received")
    status, _ = await senior.post(f"/api/v1/reports/{pending}/approve")  # the centre approves the second one
    assert status == 200
    await expect(row_b.locator("[data-testid=result-state]")).to_have_text("已审核")
    await expect(row_b.locator("[data-testid=result-pdf]")).to_be_visible()
    assert await page.evaluate("window.teleus.events.received") > heard  # pushed: a notice, not a poll

    await row_a.locator("[data-testid=result-open]").click()
    await expect(page).to_have_url(re.compile(f"#/results/{approved}$"))
    frame = page.frame_locator("[data-testid=printed-report]")
    await expect(frame.locator("h1")).to_have_text("甲状腺超声检查报告")
    await expect(frame.locator("table.facts")).to_contain_text("张三")
    await expect(page.locator("[data-testid=result-print]")).to_have_text("打印")
    if os.environ.get("TELEUS_SCREENS"):
        await page.screenshot(path=str(Path(os.environ["TELEUS_SCREENS"]) / "result-report-zh.png"), full_page=True)
    assert problems == []
    await context.close()


async def test_another_sites_user_sees_none_of_it(browser: Browser, server: Server) -> None:  # noqa: F811
    reader, senior = await server.api("expert"), await server.api("expert2")
    done, sops = await examined(server.app, server.world.site_a, accession="A1", images=1)
    approved = await reported(reader, done, sops)
    await senior.post(f"/api/v1/reports/{approved}/approve")
    context, api = await _chinese_context(browser, server, "sono_b")
    page = await context.new_page()
    await page.goto("/#/results")
    await expect(page.locator("[data-testid=results-empty]")).to_have_text("暂无检查。")
    await page.goto(f"/#/results/{approved}")
    await expect(page.locator("[data-testid=result-error]")).to_have_attribute("data-code", "not_found")
    async with api.session.get(f"{api.base}/api/v1/studies/{done}/dicom.zip") as r:
        assert r.status == 404
    await context.close()


async def test_the_reader_chooses_the_report_images_on_the_study_page(browser: Browser, server: Server) -> None:  # noqa: F811
    study, sops = await examined(server.app, server.world.site_a, images=2)
    context = await browser.new_context(base_url=server.url, locale="zh-CN")
    reader = await server.sign_in(context, "expert")
    await reader.post(f"/api/v1/studies/{study}/claim")
    _, draft = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {}})
    page = await context.new_page()
    await page.goto(f"/#/studies/{study}")
    panel = page.locator("[data-testid=report-images-panel]")
    await expect(panel.locator("h3")).to_have_text("报告图像")
    await expect(panel.locator("[data-testid=report-images] li")).to_have_text(["尚未选择图像。"])
    for sop in (sops[1], sops[0]):  # shown in the viewer, then added, in this order
        await page.locator(f'[data-testid=thumbnail][data-sop-uid="{sop}"]').click()
        await page.wait_for_function(
            "sop => document.querySelector('.viewer-column img')?.src.includes(sop)", arg=sop
        )
        await panel.locator("[data-action=add-report-image]").click()
        await expect(panel.locator(f'li[data-sop="{sop}"]')).to_be_visible()
    await panel.locator(f'li[data-sop="{sops[1]}"] [data-action=remove-report-image]').click()
    await expect(panel.locator("li[data-sop]")).to_have_count(1)
    _, chosen = await reader.get(f"/api/v1/reports/{draft['id']}/images")
    assert chosen["images"] == [{"sop_uid": sops[0], "frame": 1}]
    await context.close()
