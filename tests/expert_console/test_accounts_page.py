"""The accounts page in Chromium against the real server: an admin disables a person and resets another's password;
that person signs in with the temporary password and must choose their own before anything else."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, expect

from tests.expert_console.test_app import Server, context, open_console, server, sign_in_with_form  # noqa: F401

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
