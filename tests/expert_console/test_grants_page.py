"""The grants page (#/grants) in Chromium against the real server: a registrar refers a north patient to the river
site until a time, from the link on the registrar's page; river's sonographer then reads the patient, and no longer
once the registrar revokes the grant (docs/SECURITY.md §3)."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, expect

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.dicomstore.objects import image

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROWS = "[data-testid=grant-list] tr[data-grant]"


async def test_a_registrar_makes_and_revokes_a_grant(server: Server, context: BrowserContext) -> None:  # noqa: F811
    stored = await store_instance(server.app[DICOM_STORE], image(patient_id="N-9", name="Sun^Li"),
                                  site_id=server.world.site_a, received_via="test")
    patient = stored.patient_id
    sono_b = await server.api("sono_b")
    assert (await sono_b.get(f"/api/v1/patients/{patient}"))[0] == 404
    await server.sign_in(context, "registrar")

    page, problems = await open_console(context, f"#/grants?patient={patient}")
    page.on("dialog", lambda dialog: dialog.accept())
    await expect(page.locator("[data-nav=grants]")).to_be_visible()
    await expect(page.locator("[data-testid=grant-list] tr.empty")).to_be_visible()
    form = page.locator("[data-testid=create-grant]")
    await expect(form.locator("[name=object_id]")).to_have_value(patient)  # filled in from the link
    await form.locator("[name=grantee_site]").select_option(label="river · Riverside Community Health Centre")

    await form.locator("[type=submit]").click()  # no reason: the server's refusal, with its code
    await expect(page.locator("[data-testid=grants-error]")).to_have_attribute("data-code", "invalid_request")
    await expect(page.locator(ROWS)).to_have_count(0)

    await form.locator("[name=reason]").fill("referred to Riverside for follow-up")
    await form.locator("[type=submit]").click()
    row = page.locator(ROWS)
    await expect(row).to_have_count(1)
    await expect(page.locator("[data-testid=grants-error]")).to_be_hidden()
    await expect(row.locator("[data-field=grantee]")).to_have_text("site river")
    await expect(row.locator("[data-field=objects]")).to_have_text(f"patient {patient}")
    await expect(row.locator("[data-field=kind]")).to_have_text("referral")
    status, person = await sono_b.get(f"/api/v1/patients/{patient}")
    assert status == 200 and person["name"] == "Sun^Li"

    await row.locator("[data-action=revoke]").click()
    await expect(page.locator(ROWS)).to_have_count(0)
    assert (await sono_b.get(f"/api/v1/patients/{patient}"))[0] == 404
    assert problems == []


async def test_a_registrar_grants_a_person_found_by_name(server: Server, context: BrowserContext) -> None:  # noqa: F811
    stored = await store_instance(server.app[DICOM_STORE], image(patient_id="N-8", name="Zhou^Mei"),
                                  site_id=server.world.site_a, received_via="test")
    patient = stored.patient_id
    trainer = await server.api("trainer")
    assert (await trainer.get(f"/api/v1/patients/{patient}"))[0] == 404
    await server.sign_in(context, "registrar")

    page, problems = await open_console(context, f"#/grants?patient={patient}")
    form = page.locator("[data-testid=create-grant]")
    await form.locator("[name=grantee_kind]").select_option("user")
    person = form.locator("[name=grantee_user]")
    hint = form.locator("[data-testid=grantee-person]")
    await person.press_sequentially("x")  # one character: no lookup yet
    await expect(form.locator("#grant-people option")).to_have_count(0)
    await person.fill("exper")  # part of a name: the lookup fills the choices
    await expect(form.locator("#grant-people option")).to_have_count(2)
    assert await form.locator("#grant-people option").evaluate_all("os => os.map(o => o.value)") == [
        "expert", "expert2"]  # fmt: skip
    await person.fill("nobody here")
    await expect(hint).to_have_text("Nobody by that name.")
    await person.fill("Trainer")  # as picked from the list: the username, in any case
    await expect(hint).to_have_text("Trainer · trainer")
    await expect(hint).to_have_attribute("data-user-id", server.world.users["trainer"])
    await form.locator("[name=reason]").fill("teaching case, with consent")
    await form.locator("[type=submit]").click()

    row = page.locator(ROWS)
    await expect(row).to_have_count(1)
    await expect(row.locator("[data-field=grantee]")).to_have_text("person trainer")
    await expect(row.locator("[data-field=objects]")).to_have_text(f"patient {patient}")
    status, shown = await trainer.get(f"/api/v1/patients/{patient}")
    assert status == 200 and shown["name"] == "Zhou^Mei"
    assert problems == []
