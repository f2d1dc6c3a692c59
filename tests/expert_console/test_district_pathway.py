"""The district's whole pathway in Chromium, in Chinese, against the real server and real DICOM tools: a community
doctor orders an exam (开单), the modality finds it on the worklist and sends its image with the order's accession
(DCMTK), the regional centre reads and approves it (over the API: the report editor has its own browser tests), and
the doctor is notified (a browser notification), sees the order 已审核 and the result 已审核 without a reload,
opens the report and downloads its PDF."""

from __future__ import annotations

import asyncio
import re
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from playwright.async_api import Browser, expect
from pypdf import PdfReader

from signaling_server.dicomstore.scp import DICOM_SCP
from tests.expert_console.test_alerts import SPY
from tests.expert_console.test_app import Server, open_console
from tests.expert_console.test_orders_page import listening  # noqa: F401  (fixture)
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.orders.test_worklist import answers_in, run
from tests.signaling_server.results.exams import reported
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_ordered_read_approved_and_back_to_the_community(
    browser: Browser,
    listening: Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = listening
    context = await browser.new_context(
        base_url=server.url, locale="zh-CN", permissions=["notifications"], accept_downloads=True
    )
    await context.add_init_script(SPY)
    try:
        await server.sign_in(context, "doc_a")
        page, problems = await open_console(context, "#/orders")
        form = page.locator("[data-testid=order-form]")
        await form.locator("[name=patient_id]").fill("MZ-0300")
        await form.locator("[name=patient_name]").fill("张三")
        await form.locator("[name=birth_date]").fill("1970-05-01")
        await form.locator("[name=sex]").select_option("F")
        await form.locator("[name=exam]").select_option(label="甲状腺超声")
        await form.locator("[name=priority]").select_option(label="常规")
        await form.locator("[name=reason]").fill("甲状腺结节")
        await form.locator("[type=submit]").click()
        notice = page.locator("[data-testid=orders-notice]")
        await expect(notice).to_contain_text("已开单，检查号 RC")
        accession = (await notice.text_content() or "").split("检查号 ")[1].rstrip("。")
        row = page.locator(f'tr[data-accession="{accession}"]')
        await expect(row.locator("[data-field=state]")).to_have_text("已登记")

        port = str(server.app[DICOM_SCP].port)
        code, output = await run(
            "findscu", "-W", "-aet", "NORTH_CR", "-aec", "TELEUS", "-X", "-od", str(tmp_path), "-to", "20",
            "-k", "AccessionNumber=" + accession, "-k", "PatientName", "127.0.0.1", port,
        )  # fmt: skip
        assert code == 0, output
        [found] = answers_in(tmp_path)
        assert str(found.PatientName) == "张^三"
        sent = tmp_path / "sent"
        sent.mkdir()
        path = sent / "thyroid.dcm"
        path.write_bytes(image(modality="US", patient_id="MZ-0300", name="张^三", accession=accession))
        sop = str(pydicom.dcmread(path).SOPInstanceUID)
        code, output = await run("storescu", "-aet", "NORTH_CR", "-aec", "TELEUS", "-to", "20", "127.0.0.1", port,
                                 str(path))  # fmt: skip
        assert code == 0, output
        await expect(row.locator("[data-field=state]")).to_have_text("已检查")  # pushed, not polled

        reader, senior = await server.api("expert"), await server.api("expert2")
        _, queue = await reader.get("/api/v1/studies")
        [study] = [s for s in queue["studies"] if s["accession"] == accession]
        assert study["priority"] == "routine"
        report = await reported(reader, study["id"], [sop])
        await eventually(lambda: page.evaluate("() => window.teleus.reportAlerts?.primed"))
        status, _ = await senior.post(f"/api/v1/reports/{report}/approve")
        assert status == 200

        shown = await eventually(lambda: page.evaluate("() => window.shownNotifications"), what="a notification")
        assert [n["title"] for n in shown] == ["报告已审核"] and accession in shown[0]["body"]
        assert shown[0]["body"].startswith("张三")
        await expect(row.locator("[data-field=state]")).to_have_text("已审核")

        await page.goto("/#/results")
        result = page.locator(f'tr[data-accession="{accession}"]')
        await expect(result.locator("[data-testid=result-state]")).to_have_text("已审核")
        async with page.expect_download() as waiting:
            await result.locator("[data-testid=result-pdf]").click()
        pdf = await asyncio.to_thread(Path(await (await waiting.value).path()).read_bytes)
        text = re.sub(r"\s+", "", "".join(p.extract_text() or "" for p in PdfReader(BytesIO(pdf)).pages))
        assert "张三" in text and "甲状腺超声检查报告" in text and accession in text and "审核医师" in text
        await result.locator("[data-testid=result-open]").click()
        frame = page.frame_locator("[data-testid=printed-report]")
        await expect(frame.locator("h1")).to_have_text("甲状腺超声检查报告")
        assert problems == []
    finally:
        await context.close()
