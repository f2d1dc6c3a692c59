"""The orders page (#/orders) in Chromium, in Chinese, against the real server and real DICOM peers: a community
doctor places an order, DCMTK's `findscu -W` finds it on the worklist, images sent by `storescu` with its accession
number match it (the page follows without a reload), a second order is cancelled with a reason, and a duplicate
accession number is refused in the reader's words with its code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, BrowserContext, expect

from signaling_server.app import create_app
from signaling_server.dicomstore.scp import DICOM_SCP
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.databases import database
from tests.expert_console.test_app import Server, open_console
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.orders.conftest import add_doctors
from tests.signaling_server.orders.test_worklist import answers_in, run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def listening(tmp_path: Path) -> AsyncIterator[Server]:
    """The real app with its DICOM listener (C-STORE and the worklist) on a free port, and two doctors."""
    async with database("sqlite", tmp_path) as url:
        settings = Settings(data_dir=tmp_path, database_url=url).with_overrides(dicom_port=0)
        client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
        await client.start_server()
        try:
            app = client.server.app
            world = await seed(app)
            await add_doctors(app, world)
            running = Server(app, client, world, str(client.make_url("")).rstrip("/"))
            yield running
            for api in running.opened:
                await api.close()
        finally:
            await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def chinese(browser: Browser, listening: Server) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=listening.url, locale="zh-CN")
    yield context
    await context.close()


async def test_a_community_doctor_orders_and_the_modality_finds_and_fills_the_order(
    listening: Server, chinese: BrowserContext, tmp_path: Path
) -> None:
    server = listening
    await server.sign_in(chinese, "doc_a")
    page, problems = await open_console(chinese, "#/orders")
    await expect(page.locator("[data-nav=orders]")).to_be_visible()
    form = page.locator("[data-testid=order-form]")
    await expect(form.locator("[type=submit]")).to_have_text("提交申请")

    async def place(patient_id: str, name: str, accession: str = "") -> None:
        await form.locator("[name=patient_id]").fill(patient_id)
        await form.locator("[name=patient_name]").fill(name)
        await form.locator("[name=birth_date]").fill("1970-05-01")
        await form.locator("[name=sex]").select_option("F")
        await form.locator("[name=exam]").select_option(label="甲状腺超声")
        await form.locator("[name=priority]").select_option(label="急诊")
        await form.locator("[name=reason]").fill("甲状腺结节复查")
        await form.locator("[name=clinical_info]").fill("外院超声: 右叶结节 8 mm")
        await form.locator("[name=accession]").fill(accession)
        await form.locator("[type=submit]").click()

    await form.locator("[type=submit]").click()  # nothing filled in: the first field missing is named
    error = page.locator("[data-testid=orders-error]")
    await expect(error).to_have_text("请填写或更正：患者编号（门诊号）。")
    await expect(error).to_have_attribute("data-code", "invalid_order")
    await place("MZ-0100", "张三")
    notice = page.locator("[data-testid=orders-notice]")
    await expect(notice).to_contain_text("已开单，检查号 RC")
    accession = (await notice.text_content() or "").split("检查号 ")[1].rstrip("。")
    row = page.locator(f'tr[data-accession="{accession}"]')
    await expect(row.locator("[data-field=state]")).to_have_text("已登记")
    await expect(row.locator("[data-field=patient]")).to_have_text("张三 · MZ-0100")  # as people write it
    await expect(row.locator("[data-field=priority]")).to_have_text("急诊")
    await expect(row.locator("[data-field=exam]")).to_have_text("甲状腺超声")

    port = str(server.app[DICOM_SCP].port)
    code, output = await run(
        "findscu", "-W", "-aet", "NORTH_CR", "-aec", "TELEUS", "-X", "-od", str(tmp_path), "-to", "20",
        "-k", "SpecificCharacterSet=ISO_IR 192", "-k", "PatientName=张*", "-k", "AccessionNumber",
        "-k", "RequestedProcedurePriority", "-k", "ScheduledProcedureStepSequence[0].Modality=US",
        "127.0.0.1", port,
    )  # fmt: skip
    assert code == 0, output
    [found] = answers_in(tmp_path)
    assert found.AccessionNumber == accession and str(found.PatientName) == "张^三"
    assert found.RequestedProcedurePriority == "STAT"

    path = tmp_path / "thyroid.dcm"
    path.write_bytes(image(modality="US", patient_id="MZ-0100", name="张^三", accession=accession))
    code, output = await run("storescu", "-aet", "NORTH_CR", "-aec", "TELEUS", "-to", "20", "127.0.0.1", port,
                             str(path))  # fmt: skip
    assert code == 0, output
    await expect(row.locator("[data-field=state]")).to_have_text("已检查")  # told by the change notice
    await expect(row.locator("[data-action=cancel]")).to_have_count(0)  # images arrived: no more cancelling

    await place("MZ-0101", "欧阳娜娜", "NA-0002")
    second = page.locator('tr[data-accession="NA-0002"]')
    await expect(second.locator("[data-field=state]")).to_have_text("已登记")
    await second.locator("[data-action=cancel]").click()
    await second.locator("[data-action=confirm-cancel]").click()  # no reason given
    await expect(error).to_have_text("请填写或更正：撤销原因。")
    await second.locator("[name=cancel_reason]").fill("患者改约")
    await second.locator("[data-action=confirm-cancel]").click()
    await expect(second.locator("[data-field=state]")).to_have_text("已撤销")
    await expect(second.locator("[data-field=result]")).to_have_text("患者改约")
    await expect(notice).to_have_text("检查申请 NA-0002 已撤销。")

    await place("MZ-0102", "王芳", "NA-0002")
    await expect(error).to_have_attribute("data-code", "duplicate_accession")
    await expect(error).to_have_text("该检查号已被其他检查申请使用。")
    await expect(page.locator("tbody tr[data-accession]")).to_have_count(2)
    assert problems == []


async def test_the_centres_expert_follows_the_orders_in_english_without_the_form(
    listening: Server, browser: Browser
) -> None:
    server = listening
    doctor = await server.api("doc_a")
    status, order = await doctor.post("/api/v1/orders", {
        "patient": {"id": "MZ-0200", "name": "Wang^Fang=王^芳"}, "exam": {"modality": "DX", "body_part": "CHEST",
        "description": "胸部X线摄影"}, "reason": "咳嗽两周", "priority": "urgent",
    })  # fmt: skip
    assert status == 201, order
    context = await browser.new_context(base_url=server.url, locale="en-GB")
    try:
        await server.sign_in(context, "expert")
        page, problems = await open_console(context, "#/orders")
        row = page.locator(f'tr[data-accession="{order["accession"]}"]')
        await expect(row.locator("[data-field=state]")).to_have_text("Registered")
        await expect(row.locator("[data-field=priority]")).to_have_text("Urgent")
        # family name first in both languages (i18n.js personName)
        await expect(row.locator("[data-field=patient]")).to_have_text("Wang Fang · MZ-0200")
        await expect(page.locator("[data-testid=order-form]")).to_have_count(0)  # the centre does not order
        await expect(row.locator("[data-action=cancel]")).to_have_count(0)  # nor cancel
        await doctor.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "患者改约"})
        await expect(row.locator("[data-field=state]")).to_have_text("Cancelled")  # told by the change notice
        assert problems == []
    finally:
        await context.close()
