"""The accounts page in Chromium against the real server: an admin disables a person and resets another's password;
that person signs in with the temporary password and must choose their own before anything else. An admin assigns
an expert a site, and takes one away: the expert's reads follow at once (docs/SECURITY.md §2)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, expect

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from tests.expert_console.test_app import Server, context, open_console, server, sign_in_with_form  # noqa: F401
from tests.signaling_server.dicomstore.objects import image

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_admin_disables_and_resets_and_the_person_changes_the_password_at_sign_in(
    server: Server,  # noqa: F811
    context: BrowserContext,  # noqa: F811
) -> None:
    sono = await server.api("sono_a")  # signed in elsewhere
    await server.sign_in(context, "admin")
    page, problems = await open_console(context, "#/accounts")
    page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure?" of disable and reset

    sono_row = page.locator('[data-username="sono_a"]')
    await sono_row.locator("[data-action=disable]").click()
    await expect(sono_row.locator("[data-field=state]")).to_have_text("disabled")
    await expect(sono_row.locator("[data-action=enable]")).to_be_visible()
    assert (await sono.get("/api/v1/auth/me"))[0] == 401

    await page.locator('[data-username="expert2"] [data-action=reset-password]').click()
    temporary = page.locator("[data-testid=temporary-password]")
    await expect(temporary).to_have_text(re.compile(r"^\S{12,}$"))
    password = (await temporary.text_content()) or ""
    assert len(password) >= 12
    await expect(page.locator('[data-username="expert2"] [data-field=state]')).to_contain_text("must change password")

    other = await context.browser.new_context(base_url=server.url)  # type: ignore[union-attr]
    try:
        person = await other.new_page()
        await person.goto("/#/login")
        await sign_in_with_form(person, "expert2", password)
        form = person.locator("[data-testid=password-form]")
        await expect(form).to_be_visible()
        await expect(form.locator("input[name=current_password]")).to_have_count(0)  # just typed: not asked again
        await form.locator("input[name=new_password]").fill("my own new password")
        await form.locator("input[name=new_password_again]").fill("my own new password")
        await form.locator("[type=submit]").click()
        await expect(person.locator("[data-testid=current-user]")).to_contain_text("Expert2")
        assert person.url.endswith("#/")
    finally:
        await other.close()
    fresh = await server.api()
    await fresh.login("expert2", "my own new password")
    assert problems == []


async def test_an_admin_assigns_a_site_and_the_expert_then_sees_its_studies(
    server: Server,  # noqa: F811
    context: BrowserContext,  # noqa: F811
) -> None:
    store = server.app[DICOM_STORE]
    north = await store_instance(store, image(patient_id="N-1"), site_id=server.world.site_a, received_via="test")
    river = await store_instance(store, image(patient_id="R-1"), site_id=server.world.site_b, received_via="test")
    admin = await server.sign_in(context, "admin")
    expert2_id = server.world.users["expert2"]
    unassign = f"{admin.base}/api/v1/users/{expert2_id}/sites/{server.world.site_b}"
    async with admin.session.delete(unassign, headers={"X-CSRF-Token": admin.csrf or ""}) as answer:
        assert answer.status == 204  # expert2 serves north only
    expert2 = await server.api("expert2")
    assert (await expert2.get(f"/api/v1/studies/{river.study_id}"))[0] == 404

    page, problems = await open_console(context, "#/accounts")
    row = page.locator('[data-username="expert2"]')
    serves = row.locator("[data-field=serves]")
    await expect(serves.locator(".served-site")).to_have_text(["north×"])
    await expect(page.locator('[data-username="sono_a"] [data-field=serves]')).to_be_empty()  # takes none
    await serves.locator("[data-field=serve-site]").select_option(label="river")
    await serves.locator("[data-action=assign]").click()
    await expect(serves.locator(".served-site")).to_have_text(["north×", "river×"])
    assert (await expert2.get(f"/api/v1/studies/{river.study_id}"))[0] == 200

    await serves.locator('[data-site="north"] [data-action=unassign]').click()
    await expect(serves.locator(".served-site")).to_have_text(["river×"])
    assert (await expert2.get(f"/api/v1/studies/{north.study_id}"))[0] == 404
    assert (await expert2.get(f"/api/v1/studies/{river.study_id}"))[0] == 200
    assert problems == []
