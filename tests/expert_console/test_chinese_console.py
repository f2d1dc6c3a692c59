"""The console in Chinese, in Chromium against the real server: a Chinese browser gets Chinese pages, the header's
switch changes the language and the person's choice follows them to another browser, a refusal shows in Chinese
with its stable code, and a name shows as people write it (张三, not 张^三)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.expert_console.test_app import Server, open_console, server, sign_in_with_form  # noqa: F401  (fixtures)
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def chinese(browser: Browser, server: Server) -> AsyncIterator[BrowserContext]:  # noqa: F811
    """A browser whose person reads Chinese (navigator.languages and Accept-Language zh-CN)."""
    context = await browser.new_context(base_url=server.url, locale="zh-CN")
    yield context
    await context.close()


async def test_a_chinese_browser_gets_the_chinese_console(chinese: BrowserContext) -> None:
    page, problems = await open_console(chinese)
    form = page.locator("#login-form")
    await expect(form.locator("label[for=login-username]")).to_have_text("用户名")
    await expect(form.locator("[type=submit]")).to_have_text("登录")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert await page.title() == "teleus 远程超声会诊与区域阅片"
    await expect(page.locator("[data-language=zh-CN]")).to_have_attribute("aria-pressed", "true")

    await sign_in_with_form(page, "sono_a")
    await expect(page.locator("[data-nav=home]")).to_have_text("远程会诊")
    await expect(page.locator("[data-action=logout]")).to_have_text("退出登录")
    await expect(page.locator(".user-role")).to_have_text("超声医师")
    await expect(page.locator(".home h2").first).to_have_text("申请远程会诊")
    await expect(page.locator("[data-testid=request-form]")).to_contain_text("患者姓名")
    await expect(page.locator("[data-testid=consultation-list] th").first).to_have_text("机构")
    assert problems == []


async def test_the_switch_changes_the_language_and_the_person_keeps_it_on_another_browser(
    browser: Browser,
    chinese: BrowserContext,
    server: Server,  # noqa: F811
) -> None:
    page, problems = await open_console(chinese)
    await sign_in_with_form(page, "expert")
    await expect(page.locator("[data-action=logout]")).to_be_visible()
    await expect(page.locator("[data-nav=home]")).to_have_text("远程会诊")

    await page.click("[data-language=en]")
    await expect(page.locator("[data-nav=home]")).to_have_text("Consultations")

    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator(".panel h2")).to_have_text("Waiting and live consultations")  # the page redrew
    await expect(page.locator("[data-language=en]")).to_have_attribute("aria-pressed", "true")
    expert = await server.api("expert")

    async def kept() -> object:
        return (await expert.get("/api/v1/auth/me"))[1]["user"]["language"]

    async def english() -> bool:
        return await kept() == "en"

    assert await eventually(english, what="the language kept with the account")

    other = await browser.new_context(base_url=server.url, locale="zh-CN")  # another browser, a Chinese one
    try:
        fresh, fresh_problems = await open_console(other)

        await expect(fresh.locator("#login-form [type=submit]")).to_have_text("登录")  # nobody signed in yet
        await sign_in_with_form(fresh, "expert")
        await expect(fresh.locator("[data-action=logout]")).to_be_visible()
        await expect(fresh.locator("[data-nav=home]")).to_have_text("Consultations")  # the person's own choice

        await expect(fresh.locator("html")).to_have_attribute("lang", "en")
        await fresh.click("[data-language=zh-CN]")
        await expect(fresh.locator("[data-nav=home]")).to_have_text("远程会诊")

        async def chinese_again() -> bool:
            return await kept() == "zh-CN"

        assert await eventually(chinese_again, what="the second browser's choice kept")  # before this browser closes
        assert fresh_problems == []
    finally:
        await other.close()
    assert problems == []


async def test_a_refusal_shows_its_chinese_text_and_keeps_its_code(chinese: BrowserContext) -> None:
    page, problems = await open_console(chinese)
    await sign_in_with_form(page, "expert", "wrong")
    error = page.locator("[data-testid=login-error]")
    await expect(error).to_have_text("用户名或密码错误。")
    await expect(error).to_have_attribute("data-code", "bad_credentials")
    await page.fill("input[name=username]", "")
    await page.press("input[name=password]", "Enter")
    await expect(error).to_have_text("请输入用户名和密码。")  # the page's own refusal, from the catalog too
    assert problems == []


async def test_names_show_as_people_write_them_and_are_entered_in_one_field(
    chinese: BrowserContext,
    server: Server,  # noqa: F811
) -> None:
    sono = await server.api("sono_a")
    await server.request(sono, "张^三")  # as DICOM stores it
    expert_page, problems = await open_console(chinese)
    await sign_in_with_form(expert_page, "expert")
    row = expert_page.locator("[data-testid=consultation-list] tbody tr").first
    await expect(row.locator("[data-field=patient]")).to_have_text("张三")
    await expect(row.locator("[data-field=exam_type]")).to_have_text("甲状腺")
    await expect(row.locator("[data-field=state]")).to_have_text("等待中")

    page, more = await open_console(await chinese.browser.new_context(base_url=server.url, locale="zh-CN"))  # type: ignore[union-attr]
    await sign_in_with_form(page, "sono_a")
    form = page.locator("[data-testid=request-form]")
    await expect(form.locator("input[name=patient_name]")).to_have_attribute("placeholder", "如：张三")
    await form.locator("input[name=patient_id]").fill("P-88")
    await form.locator("input[name=patient_name]").fill("李\\四")  # a backslash separates DICOM values: no PN holds one
    await form.locator("[type=submit]").click()
    refusal = page.locator("[data-testid=request-error]")
    await expect(refusal).to_have_text("姓名中不能包含反斜杠或控制字符。")
    await expect(refusal).to_have_attribute("data-code", "invalid_request")
    await form.locator("input[name=patient_name]").fill("李四")

    await form.locator("[type=submit]").click()
    await expect(page.locator("[data-testid=case-title]")).to_contain_text("李四")
    await expect(page.locator("[data-testid=case-title]")).to_contain_text("甲状腺")
    status, listed = await sono.get("/api/v1/consultations?state=requested,live")
    assert status == 200 and "李四" in [
        c["patient"]["name"] for c in listed["consultations"]
    ]  # stored as typed: a valid PN
    await page.context.close()
    assert problems == [] and more == []
