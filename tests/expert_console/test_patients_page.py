"""The registrar's page (#/patients) in Chromium against the real server: possible matches made by the real ingest
path (look-alikes from two sites), shown side by side; the registrar confirms one, rejects another and splits the
link back; a decision someone made meanwhile is refused with its stable code (docs/SECURITY.md §3)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import BrowserContext, expect

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.dicomstore.objects import image

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CARDS = "[data-testid=match-list] [data-match]"


async def _look_alikes(server: Server, name: str, birth: str, n: int) -> tuple[str, str]:  # noqa: F811
    """One person's look-alike records at north and at river: a possible match (identity.py `look_alike`)."""
    store = server.app[DICOM_STORE]
    one = await store_instance(store, image(patient_id=f"N-{n}", name=name, birth_date=birth),
                               site_id=server.world.site_a, received_via="test")
    two = await store_instance(store, image(patient_id=f"R-{n}", name=name.upper(), birth_date=birth),
                               site_id=server.world.site_b, received_via="test")
    assert one.patient_id and two.patient_id and one.patient_id != two.patient_id
    return one.patient_id, two.patient_id


async def _matches(api: Any, state: str) -> dict[frozenset[str], str]:
    status, data = await api.get(f"/api/v1/patient-matches?state={state}")
    assert status == 200, data
    return {frozenset((m["patient"]["id"], m["candidate"]["id"])): m["id"] for m in data["matches"]}


async def test_a_registrar_confirms_rejects_and_unlinks(server: Server, context: BrowserContext) -> None:  # noqa: F811
    li = frozenset(await _look_alikes(server, "Li^Na", "19900909", 1))
    wang = frozenset(await _look_alikes(server, "Wang^Fang", "19800101", 2))
    zhao = frozenset(await _look_alikes(server, "Zhao^Lei", "19750505", 3))
    registrar = await server.sign_in(context, "registrar")
    opened = await _matches(registrar, "open")
    assert set(opened) == {li, wang, zhao}

    page, problems = await open_console(context, "#/patients")
    page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure?" of each decision
    await expect(page.locator("[data-nav=patients]")).to_be_visible()
    await expect(page.locator("[data-nav=dicom]")).to_be_hidden()
    await expect(page.locator(CARDS)).to_have_count(3)

    card = page.locator(f'[data-match="{opened[li]}"]')  # both identities side by side, with each site's ID
    await expect(card.locator("[data-field=reason]")).to_have_text("The same name, birth date and sex")
    await expect(card.locator("[data-side=patient] [data-field=identifiers]")).to_have_text("river: R-1")
    await expect(card.locator("[data-side=candidate] [data-field=identifiers]")).to_have_text("north: N-1")
    await expect(card.locator("[data-side=patient] [data-field=name]")).to_have_text("LI NA")  # family first
    await expect(card.locator("[data-side=candidate] [data-field=birth_date]")).to_have_text("1990-09-09")

    await card.locator("[data-action=confirm]").click()
    await expect(page.locator(CARDS)).to_have_count(2)
    link = page.locator("[data-testid=link-list] tr[data-link]")
    await expect(link).to_have_count(1)
    await expect(link.locator("[data-field=state]")).to_have_text("linked")
    await expect(link).to_contain_text("river: R-1")
    await expect(link).to_contain_text("north: N-1")

    await page.locator(f'[data-match="{opened[wang]}"] [data-action=reject]').click()
    await expect(page.locator(CARDS)).to_have_count(1)
    assert set(await _matches(registrar, "rejected")) == {wang}

    # decided elsewhere meanwhile: the page's Confirm is refused with the stable code, and the list catches up
    assert (await registrar.post(f"/api/v1/patient-matches/{opened[zhao]}/reject"))[0] == 200
    await page.locator(f'[data-match="{opened[zhao]}"] [data-action=confirm]').click()
    error = page.locator("[data-testid=patients-error]")  # the message, and the code a registrar can quote
    await expect(error).to_have_attribute("data-code", "invalid_transition")
    await expect(error).to_have_text("This cannot be done in the current state. (invalid_transition)")
    await expect(page.locator(CARDS)).to_have_count(0)

    await link.locator("[data-action=unlink]").click()
    await expect(link.locator("[data-field=state]")).to_contain_text("unlinked")
    await expect(link.locator("[data-action=unlink]")).to_have_count(0)
    assert set(await _matches(registrar, "rejected")) == {li, wang, zhao}  # the split pair stays apart for good
    for patient_id in li:  # each identity stands alone again, with its own site's identifier
        status, person = await registrar.get(f"/api/v1/patients/{patient_id}")
        assert status == 200 and len(person["identifiers"]) == 1, person
    assert problems == []
