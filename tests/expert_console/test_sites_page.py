"""The admin's sites page in Chromium against the real server: a partner hospital added, a site's own CT target
saved and holding over the API, a device registered whose credential (shown once) signs the edge in, then revoked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, expect

from tests.expert_console.test_app import Server, open_console, server  # noqa: F401  (fixture)


def png(width: int, height: int) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((height, width, 3), 200, np.uint8))
    assert ok
    return encoded.tobytes()


pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_an_admin_keeps_sites_targets_and_devices(browser: Browser, server: Server) -> None:  # noqa: F811
    context = await browser.new_context(base_url=server.url, locale="zh-CN")
    try:
        admin = await server.sign_in(context, "admin")
        page, problems = await open_console(context, "#/sites")
        cards = page.locator("[data-testid=site-card]")
        await expect(cards).to_have_count(2)

        form = page.locator("[data-testid=create-site]")
        await form.locator("input[name=code]").fill("district-hospital")
        await form.locator("input[name=name]").fill("区人民医院")
        await form.locator("select[name=kind]").select_option("hospital")
        await form.locator("[type=submit]").click()
        await expect(cards).to_have_count(3)
        hospital = cards.filter(has_text="区人民医院")
        await expect(hospital.locator("summary")).to_contain_text("合作医院")

        # a duplicate code is refused with the server's words and its code; nothing more is added
        await form.locator("input[name=code]").fill("north")
        await form.locator("input[name=name]").fill("重复")
        await form.locator("[type=submit]").click()
        await expect(page.locator("[data-testid=sites-error]")).to_have_attribute("data-code", "conflict")
        await expect(cards).to_have_count(3)

        north = cards.filter(has_text="North Community Health Centre")
        await north.locator("summary").click()
        await north.locator("input[name='CT.routine']").fill("45")
        await north.locator("[data-testid=site-targets] [type=submit]").click()
        await expect(page.locator("[data-testid=sites-notice]")).to_be_visible()
        _, listed = await admin.get("/api/v1/sites")
        assert [s["turnaround"] for s in listed["sites"] if s["code"] == "north"] == [{"CT": {"routine": 45}}]
        await expect(north.locator("input[name='CT.routine']")).to_have_value("45")

        # the header of its printed reports, its logo and its thyroid scoring system
        header = north.locator("[data-testid=site-header]")
        await header.locator("input[name=address]").fill("北区幸福路 1 号")
        await header.locator("input[name=phone]").fill("010-12345678")
        await header.locator("[type=submit]").click()
        await expect(page.locator("[data-testid=sites-notice]")).to_be_visible()
        north = cards.filter(has_text="North Community Health Centre")
        await north.locator("input[name=logo]").set_input_files(
            {"name": "logo.png", "mimeType": "image/png", "buffer": png(40, 20)}
        )
        await expect(north.locator("[data-testid=site-logo] img")).to_be_visible()
        north = cards.filter(has_text="North Community Health Centre")
        await north.locator("input[name=logo]").set_input_files(
            {"name": "logo.png", "mimeType": "image/png", "buffer": b"not a picture"}
        )
        await expect(page.locator("[data-testid=sites-error]")).to_have_attribute("data-code", "invalid_logo")
        await north.locator("select[name=thyroid_system]").select_option("c_tirads")
        await expect(page.locator("[data-testid=sites-notice]")).to_be_visible()
        status, printed = await admin.get(f"/api/v1/sites/{server.world.site_a}/header")
        assert status == 200 and printed["address"] == "北区幸福路 1 号" and printed["phone"] == "010-12345678"
        assert printed["logo"] is True  # the good logo stays: the bad one was refused whole
        _, listed = await admin.get("/api/v1/sites")
        assert [s["thyroid_system"] for s in listed["sites"] if s["code"] == "north"] == ["c_tirads"]

        north = cards.filter(has_text="North Community Health Centre")
        await north.locator("input[name=device_name]").fill("north-us-2")
        await north.locator("[data-testid=add-device] [type=submit]").click()
        await expect(page.locator("[data-testid=sites-error]")).to_be_hidden()
        credential = await page.locator("[data-testid=credential-value]").text_content()
        assert credential
        edge = await server.api(bearer=credential)
        status, me = await edge.get("/api/v1/devices/me")
        assert status == 200 and me["device"]["name"] == "north-us-2" and me["site"]["code"] == "north"

        row = page.locator("[data-testid=site-card] tr", has_text="north-us-2")
        page.once("dialog", lambda dialog: dialog.accept())
        await row.locator("[data-action=revoke-device]").click()
        await expect(page.locator("tr", has_text="north-us-2")).to_contain_text("已吊销")
        status, refused = await edge.get("/api/v1/devices/me")
        assert status == 401 and refused["error"] == "device_revoked"
        assert problems == []
    finally:
        await context.close()
