"""Alerts for the expert on duty, in Chromium against the real server: a sonographer's live request raises a
browser notification (permission granted) for the expert on duty, once, and nothing for an expert off duty, who
still gets the request on the home list. The roster's change reaches the header's duty bell without a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import CriticalFinding
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from tests.expert_console.test_app import Server, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.reading.studies import arrive
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Records what the page asked the browser to show, then shows it as the browser would.
SPY = """
    window.shownNotifications = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
        constructor(title, options) {
            super(title, options);
            window.shownNotifications.push({title, body: options?.body});
        }
    };
"""


def hours(n: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=n)).isoformat()


async def expert_page(browser: Browser, running: Server, username: str) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(base_url=running.url, permissions=["notifications"], locale="zh-CN")
    await context.add_init_script(SPY)
    await running.sign_in(context, username)
    page, problems = await open_console(context, "#/")
    return context, page, problems


async def announced(page: Page) -> list[dict[str, Any]]:
    return list(await page.evaluate("() => window.teleus.alerts ? window.teleus.alerts.announced : null") or [])


async def knows(page: Page, cid: str) -> bool:
    return bool(await page.evaluate("(id) => window.teleus.alerts?.known.has(id) ?? false", cid))


async def test_the_expert_on_duty_is_notified_of_a_request_and_the_one_off_duty_is_not(
    browser: Browser,
    server: Server,  # noqa: F811
) -> None:
    admin, sono = await server.api("admin"), await server.api("sono_a")
    status, _ = await admin.post(
        "/api/v1/duty", {"user_id": server.world.users["expert"], "starts_at": hours(-1), "ends_at": hours(8)}
    )
    assert status == 201
    on_context, on_duty, problems = await expert_page(browser, server, "expert")
    off_context, off_duty, _ = await expert_page(browser, server, "expert2")
    try:
        await expect(on_duty.locator("[data-testid=duty-status]")).to_have_attribute("data-on-duty", "true")
        await expect(off_duty.locator("[data-testid=duty-status]")).to_have_attribute("data-on-duty", "false")
        # both pages have primed: what waited before is not announced
        await eventually(lambda: on_duty.evaluate("() => window.teleus.alerts.primed"))
        await eventually(lambda: off_duty.evaluate("() => window.teleus.alerts.primed"))

        consultation = await server.request(sono, "张^三")
        await eventually(lambda: announced(on_duty), what="the expert on duty was not alerted")
        [alert] = await announced(on_duty)
        assert alert["id"] == consultation["id"] and alert["notified"] is True
        shown = await on_duty.evaluate("() => window.shownNotifications")
        assert shown == [{"title": "North Community Health Centre 请求实时会诊", "body": "甲状腺超声，患者：张三"}]

        await eventually(lambda: knows(off_duty, consultation["id"]), what="the notice never reached expert2")
        assert await announced(off_duty) == []
        assert await off_duty.evaluate("() => window.shownNotifications") == []

        # the roster changes: expert2 goes on duty, their bell says so without a reload, and the next request
        # alerts both, each once
        status, _ = await admin.post(
            "/api/v1/duty", {"user_id": server.world.users["expert2"], "starts_at": hours(-1), "ends_at": hours(2)}
        )
        assert status == 201
        await expect(off_duty.locator("[data-testid=duty-status]")).to_have_attribute("data-on-duty", "true")
        second = await server.request(sono, "李^四")
        await eventually(lambda: _ids_are(on_duty, [consultation["id"], second["id"]]))
        await eventually(lambda: _ids_are(off_duty, [second["id"]]))
        assert problems == []
    finally:
        await on_context.close()
        await off_context.close()


async def _ids_are(page: Page, ids: list[str]) -> bool:
    return [alert["id"] for alert in await announced(page)] == ids


async def test_an_admin_keeps_the_roster_on_its_page(browser: Browser, server: Server) -> None:  # noqa: F811
    context = await browser.new_context(base_url=server.url, locale="zh-CN")
    try:
        await server.sign_in(context, "admin")
        page, problems = await open_console(context, "#/duty")
        await expect(page.locator("[data-testid=duty-now]")).to_contain_text("当前无人值班")
        form = page.locator("[data-testid=add-shift]")
        await form.locator("select[name=user_id]").select_option(label="Expert2")
        await form.locator("input[name=note]").fill("夜班")
        await form.locator("[type=submit]").click()
        rows = page.locator("[data-testid=duty-list] tbody tr[data-shift]")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Expert2")
        await expect(rows.first).to_contain_text("夜班")
        await expect(page.locator("[data-testid=duty-now]")).to_contain_text("当前值班：Expert2")
        # a shift that ends before it starts is refused with the server's words, and nothing is added
        await form.locator("input[name=ends_at]").fill("2020-01-01T08:00")
        await form.locator("[type=submit]").click()
        await expect(page.locator("[data-testid=duty-error]")).to_have_attribute("data-code", "invalid_request")
        await expect(rows).to_have_count(1)
        page.once("dialog", lambda dialog: dialog.accept())
        await rows.first.locator("[data-action=remove-shift]").click()
        await expect(rows).to_have_count(0)
        assert problems == []
    finally:
        await context.close()


async def test_the_referring_site_is_notified_of_a_critical_finding_and_of_its_escalation(
    browser: Browser,
    server: Server,  # noqa: F811
) -> None:
    study = await arrive(server.app, server.world.site_a, "CT")
    expert = await server.api("expert")
    context = await browser.new_context(base_url=server.url, permissions=["notifications"], locale="zh-CN")
    await context.add_init_script(SPY)
    try:
        await server.sign_in(context, "sono_a")
        page, problems = await open_console(context, "#/")
        banner_ready = page.locator("[data-testid=findings-banner][data-ready=true]")
        await expect(banner_ready).to_have_count(1)  # drawn once (a finding flagged from now on is announced)
        await expect(banner_ready).to_be_hidden()  # nothing open yet
        await expect(page.locator("[data-testid=duty-status]")).to_be_hidden()  # a sonographer is not on duty
        await expect(page.locator("[data-action=allow-notifications]")).to_be_hidden()  # allowed already
        assert (await expert.post(f"/api/v1/studies/{study}/claim"))[0] == 200
        status, _ = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": "张力性气胸"})
        assert status == 201
        banner = page.locator("[data-testid=findings-banner] [data-finding-id]")
        await expect(banner).to_have_count(1)
        shown = await eventually(lambda: page.evaluate("() => window.shownNotifications"))
        assert [n["title"] for n in shown] == ["危急值：请立即确认"]
        assert shown[0]["body"].endswith("张力性气胸") and "Test" not in shown[0]["body"]  # no patient name

        async with server.app[DB]() as db:  # unacknowledged, as the escalation timer would leave it
            finding = (await db.scalars(select(CriticalFinding))).one()
            finding.escalation_level = 1
            await db.commit()
            server.app[CHANGES].changed(changes.of_finding(finding))
        await expect(banner.locator("[data-field=escalation]")).to_contain_text("1")
        shown = await eventually(lambda: _count_at_least(page, 2))
        assert shown[1]["title"] == "危急值已升级（第 1 级）：请立即确认"
        assert problems == []
    finally:
        await context.close()


async def _count_at_least(page: Page, n: int) -> list[dict[str, Any]] | None:
    shown = await page.evaluate("() => window.shownNotifications")
    return shown if len(shown) >= n else None
