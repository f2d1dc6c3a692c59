"""The report editor: reports.js's pure pieces in Chromium, then the study page's editor against the real server:
a thyroid nodule scored live exactly as the server's preview scores it, save, sign, approval by a second expert,
an addendum; a carotid side measured at more than 60° flagged and not graded; a C-TIRADS site's thyroid form in
Chinese; a missing Doppler angle that must be confirmed before the report is signed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, expect

from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.reports.archiver import ARCHIVER
from tests.clocks import FakeWallClock
from tests.expert_console.test_app import Server, api_calls, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.reading.studies import arrive

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def run(page: Page, body: str, arg: Any = None) -> Any:
    return await page.evaluate(f"async (arg) => {{ const r = await import('/static/reports.js'); {body} }}", arg)


# ---- reports.js ---------------------------------------------------------------------------------------------------


async def test_kind_by_modality_and_exam(page: Page) -> None:
    got = await run(
        page,
        """return [r.defaultKind('CR'), r.defaultKind('CT', 'thyroid'), r.defaultKind('US', 'thyroid'),
                   r.defaultKind('US', 'carotid'), r.defaultKind('US', null), r.defaultKind('US', 'abdomen')];""",
    )
    assert got == ["free_text", "free_text", "thyroid", "carotid", None, None]


async def test_form_to_content_leaves_unchosen_fields_out(page: Page) -> None:
    got = await run(
        page,
        """const partial = {...r.emptyNodule(), composition: 'solid', max_axial_mm: '12,5', craniocaudal_mm: 'x',
                            echogenic_foci: ['punctate_echogenic_foci'], location: '  right lobe '};
           const thyroid = r.thyroidContent({nodules: [partial], comment: 'c'});
           const back = r.thyroidForm({nodules: [{...thyroid.nodules[0], perpendicular_axial_mm: 9}], comment: 'c'});
           const right = {...r.emptySide(), plaque: 'visible', ica_psv_cm_s: '150', doppler_angle_deg: '65'};
           const left = {...r.emptySide(), examined: false, plaque: 'none'};
           const carotid = r.carotidContent({right, left, comment: ''});
           return [thyroid, back.nodules[0], carotid, r.carotidForm(carotid).left.examined,
                   [r.parseNumber(''), r.parseNumber(' 7 '), r.parseNumber('1e400'), r.parseNumber(3)]];""",
    )
    assert got[0] == {
        "nodules": [
            {
                "composition": "solid",
                "echogenic_foci": ["punctate_echogenic_foci"],
                "location": "right lobe",
                "max_axial_mm": 12.5,
            }
        ],
        "comment": "c",
    }
    assert got[1]["max_axial_mm"] == "12.5" and got[1]["perpendicular_axial_mm"] == "9" and got[1]["shape"] == ""
    assert got[2] == {
        "comment": "",
        "right": {"plaque": "visible", "flow": "present", "ica_psv_cm_s": 150, "doppler_angle_deg": 65},
    }
    assert got[3] is False  # a side left out of the content was not examined
    assert got[4] == [None, 7, None, 3]


async def test_choices_match_the_server_rules(page: Page) -> None:
    from signaling_server.reports import carotid, tirads

    got = await run(page, "return [r.TIRADS, r.CAROTID];")
    server_values = {
        "composition": tirads.Composition,
        "echogenicity": tirads.Echogenicity,
        "shape": tirads.Shape,
        "margin": tirads.Margin,
        "echogenic_foci": tirads.EchogenicFocus,
    }
    for key, enum in server_values.items():
        assert [value for value, _, _ in got[0][key]] == [m.value for m in enum], key
        assert [points for _, _, points in got[0][key]] == [tirads.points(m) for m in enum], key
    for key, enum in {"plaque": carotid.Plaque, "flow": carotid.Flow, "vertebral_flow": carotid.VertebralFlow}.items():
        assert [value for value, _ in got[1][key]] == [m.value for m in enum], key


# ---- the editor -------------------------------------------------------------------------------------------------

NODULE = {
    "composition": "solid",
    "echogenicity": "hypoechoic",
    "shape": "taller_than_wide",
    "margin": "smooth",
    "echogenic_foci": ["punctate_echogenic_foci"],
    "max_axial_mm": 12,
    "perpendicular_axial_mm": 9,
    "craniocaudal_mm": 10,
}


async def fill_nodule(nodule: Locator, values: dict[str, Any]) -> None:
    for key in ("composition", "echogenicity", "shape", "margin"):
        await nodule.locator(f"select[name={key}]").select_option(values[key])
    for focus in values["echogenic_foci"]:
        await nodule.locator(f"input[name=echogenic_foci][value={focus}]").check()
    for key in ("max_axial_mm", "perpendicular_axial_mm", "craniocaudal_mm"):
        await nodule.locator(f"input[name={key}]").fill(str(values[key]))


async def test_thyroid_live_score_sign_approve_and_addendum(
    server: Server,  # noqa: F811
    browser: Browser,
) -> None:
    study = await arrive(server.app, server.world.site_a, "US", name="Thyroid^Tina")
    reader = await browser.new_context(base_url=server.url)
    senior = await browser.new_context(base_url=server.url)
    try:
        expert = await server.sign_in(reader, "expert")
        await server.sign_in(senior, "expert2")
        page, problems = await open_console(reader, f"#/studies/{study}")
        editor = page.locator("[data-testid=report-editor]")
        await expect(editor.locator("[data-testid=report-hint]")).to_have_text(
            "Claim the study to write or edit its report."
        )
        await expect(editor.locator("select[name=composition]")).to_be_disabled()
        await page.locator("header [data-action=claim]").click()
        await expect(page.locator("[data-testid=lock-status]")).to_contain_text("Read by you")
        await editor.locator("select[name=kind]").select_option("thyroid")  # ultrasound without an exam type: chosen

        nodule = editor.locator('[data-nodule="0"]')
        await expect(nodule.locator("[data-field=incomplete]")).to_contain_text("Composition")
        calls = api_calls(page)
        await fill_nodule(nodule, NODULE)
        await nodule.locator("input[name=location]").fill("right lobe")

        status, preview = await expert.post(
            "/api/v1/reports/preview", {"kind": "thyroid", "content": {"nodules": [NODULE], "comment": ""}}
        )
        assert status == 200, preview
        scored = preview["computed"]["nodules"][0]
        assert scored["level"] == "TR5" and scored["total"] == 10  # 2 + 2 + 3 + 0 + 3
        await expect(nodule.locator("[data-field=level]")).to_have_text(scored["level"])
        await expect(nodule.locator("[data-field=total]")).to_have_text(f"{scored['total']} points")
        await expect(nodule.locator("[data-field=advice]")).to_have_text("FNA recommended")
        previews = [c for c in calls if c.url.endswith("/api/v1/reports/preview")]
        assert previews, "the level shown came from the server's rules"
        assert previews[-1].post_data_json["content"]["nodules"][0]["composition"] == "solid"

        await editor.locator("[data-action=save-report]").click()
        await expect(editor.locator("[data-testid=report-status]")).to_contain_text("Draft v1 by Expert")
        await editor.locator("[data-action=sign-report]").click()
        await expect(editor.locator("[data-testid=report-status]")).to_contain_text("Preliminary v1, signed by Expert")
        await expect(page.locator("[data-testid=lock-status]")).to_have_text("Not claimed")  # signing released it
        await expect(editor.locator("[data-action=approve-report]")).to_be_hidden()  # not by its author
        await expect(editor.locator("select[name=composition]")).to_be_disabled()

        other, other_problems = await open_console(senior, f"#/studies/{study}")
        approve = other.locator("[data-testid=report-editor] [data-action=approve-report]")
        await expect(other.locator('[data-nodule="0"] [data-field=level]')).to_have_text("TR5")  # as signed
        await approve.click()
        status_line = other.locator("[data-testid=report-editor] [data-testid=report-status]")
        await expect(status_line).to_contain_text("Final v1 by Expert, approved by Expert2")
        await expect(other.locator("[data-testid=study-state]")).to_have_text("approved")
        print_link = other.locator("[data-testid=report-editor] [data-testid=print-link]")
        href = await print_link.get_attribute("href")
        assert href and href.startswith("/api/v1/reports/") and href.endswith("/print?language=en")
        printed = await other.request.get(href)
        assert printed.status == 200 and "text/html" in printed.headers["content-type"]

        # a correction after approval is an addendum: a new version, the final one untouched. The reader starts it
        # while the claim is still on its way (held here until then): the page's refresh after the claim keeps it.
        await page.reload()
        held: asyncio.Future[Route] = asyncio.get_running_loop().create_future()

        async def hold(route: Route) -> None:
            held.set_result(route)

        await page.route("**/api/v1/studies/*/claim", hold)
        await page.locator("header [data-action=claim]").click()
        claim = await held
        await editor.locator("[data-action=addendum]").click()
        await expect(editor.locator("[data-testid=report-status]")).to_have_text("Addendum to v1 (not saved yet)")
        await claim.continue_()
        await expect(page.locator("[data-testid=lock-status]")).to_contain_text("Read by you")
        await expect(editor.locator("[data-testid=report-status]")).to_have_text("Addendum to v1 (not saved yet)")
        await editor.locator("textarea[name=comment]").fill("Addendum: left lobe also reviewed, no nodule.")
        await editor.locator("[data-action=save-report]").click()
        versions = editor.locator("[data-testid=report-versions] li")
        await expect(versions).to_have_count(2)
        await expect(versions.first).to_contain_text("v2 · draft · addendum · Expert")
        status, listed = await expert.get(f"/api/v1/studies/{study}/reports")
        assert status == 200
        first, second = listed["reports"]
        assert (first["state"], second["state"], second["amends_id"]) == ("final", "draft", first["id"])
        assert second["content"]["comment"] == "Addendum: left lobe also reviewed, no nodule."
        assert problems == [] and other_problems == []
    finally:
        await reader.close()
        await senior.close()


async def test_carotid_angle_over_60_is_flagged_not_graded(server: Server, context: BrowserContext) -> None:  # noqa: F811
    study = await arrive(server.app, server.world.site_a, "US", name="Carotid^Cora")
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, f"#/studies/{study}")
    await page.locator("header [data-action=claim]").click()
    editor = page.locator("[data-testid=report-editor]")
    await editor.locator("select[name=kind]").select_option("carotid")
    right = editor.locator('[data-side="right"]')
    await right.locator("select[name=plaque]").select_option("visible")
    await right.locator("input[name=ica_psv_cm_s]").fill("150")
    await right.locator("input[name=doppler_angle_deg]").fill("65")
    await expect(right.locator("[data-flag=angle_over_60]")).to_have_text("Doppler angle > 60°: not graded")
    await expect(right.locator("[data-field=grade]")).to_have_text("Not graded")
    await right.locator("input[name=doppler_angle_deg]").fill("60")  # exactly 60° is graded
    await expect(right.locator("[data-field=grade]")).to_have_text("50–69 % stenosis")
    await expect(right.locator("[data-flag=angle_over_60]")).to_have_count(0)
    left = editor.locator('[data-side="left"]')
    await expect(left.locator("[data-field=incomplete]")).to_have_text("To grade: choose plaque and ICA flow")
    assert problems == []


async def test_an_approval_whose_sr_cannot_be_stored_yet_shows_archiving_until_it_is(
    server: Server,  # noqa: F811
    browser: Browser,
) -> None:
    study = await arrive(server.app, server.world.site_a, "CR", name="Archive^Ann")
    expert = await server.api("expert")
    await expert.post(f"/api/v1/studies/{study}/claim")
    content = {"findings": "Clear lungs.", "impression": "Normal chest."}
    status, draft = await expert.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": content})
    assert status == 201, draft
    assert (await expert.post(f"/api/v1/reports/{draft['id']}/sign"))[0] == 200
    clock = FakeWallClock()
    server.app[ARCHIVER].clock = clock
    blobs = server.app[BLOBS]
    blobs.tmp.rmdir()
    blobs.tmp.write_text("not a folder")  # every blob write fails (see tests/signaling_server/reports/test_archiver.py)
    senior = await browser.new_context(base_url=server.url)
    try:
        await server.sign_in(senior, "expert2")
        page, problems = await open_console(senior, f"#/studies/{study}")
        editor = page.locator("[data-testid=report-editor]")
        await editor.locator("[data-action=approve-report]").click()
        status_line = editor.locator("[data-testid=report-status]")
        await expect(status_line).to_contain_text("Approved v1 by Expert, approved by Expert2")
        await expect(status_line).to_contain_text("archiving its DICOM SR (retrying: storage failed")
        await expect(status_line).to_have_attribute("data-state", "archiving")
        await expect(editor.locator("[data-testid=report-versions] li").first).to_contain_text("v1 · archiving")
        await expect(editor.locator("[data-action=approve-report]")).to_be_hidden()
        blobs.tmp.unlink()
        blobs.tmp.mkdir()
        clock.advance(600)
        server.app[ARCHIVER].wake()
        await expect(status_line).to_contain_text("Final v1 by Expert, approved by Expert2", timeout=30_000)
        await expect(editor.locator("[data-testid=report-versions] li").first).to_contain_text("v1 · final")
        assert problems == []
    finally:
        await senior.close()


async def test_a_c_tirads_site_shows_c_tirads_in_the_thyroid_form_in_chinese(
    server: Server,  # noqa: F811
    browser: Browser,
) -> None:
    admin = await server.api("admin")
    status, site = await admin.post(f"/api/v1/sites/{server.world.site_a}/thyroid-system", {"system": "c_tirads"})
    assert status == 200 and site["thyroid_system"] == "c_tirads", site
    study = await arrive(server.app, server.world.site_a, "US", name="甲^状")
    chinese = await browser.new_context(base_url=server.url, locale="zh-CN")
    try:
        await server.sign_in(chinese, "expert")
        page, problems = await open_console(chinese, f"#/studies/{study}")
        await page.locator("header [data-action=claim]").click()
        editor = page.locator("[data-testid=report-editor]")
        await editor.locator("select[name=kind]").select_option("thyroid")
        system = editor.locator("[data-testid=thyroid-system]")
        await expect(system).to_have_attribute("data-system", "c_tirads")
        await expect(system).to_have_text("分类系统：C-TIRADS分类")
        nodule = editor.locator('[data-nodule="0"]')
        # C-TIRADS counts features: its choices carry no ACR points
        await expect(nodule.locator("select[name=composition] option[value=solid]")).to_have_text("实性或几乎完全实性")
        await expect(nodule.locator("label", has_text="方位")).to_have_count(1)  # orientation, not shape
        await fill_nodule(nodule, NODULE)  # solid +1, taller-than-wide +1, punctate +1: 3 → C-TR4C
        await expect(nodule.locator("[data-field=level]")).to_have_text("C-TR4C")
        await expect(nodule.locator("[data-field=level-label]")).to_have_text(
            "C-TIRADS 4C类（高度可疑，恶性风险50%~90%）"
        )
        await expect(nodule.locator("[data-field=total]")).to_have_text("3分")
        advice = nodule.locator("[data-field=advice]")
        await expect(advice).to_have_text("建议细针穿刺活检（FNA）")  # 1.2 cm > 1 cm
        await editor.locator("[data-action=save-report]").click()
        await expect(editor.locator("[data-testid=report-status]")).to_contain_text("草稿第1版")
        _, listed = await (await server.api("expert")).get(f"/api/v1/studies/{study}/reports")
        assert listed["reports"][0]["content"]["system"] == "c_tirads"
        await expect(system).to_have_text("分类系统：C-TIRADS分类")  # the saved draft keeps its system
        assert problems == []
    finally:
        await chinese.close()


async def test_a_missing_doppler_angle_must_be_confirmed_before_signing(
    server: Server,  # noqa: F811
    context: BrowserContext,  # noqa: F811
) -> None:
    study = await arrive(server.app, server.world.site_a, "US", name="Angle^Ann")
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, f"#/studies/{study}")
    await page.locator("header [data-action=claim]").click()
    editor = page.locator("[data-testid=report-editor]")
    await editor.locator("select[name=kind]").select_option("carotid")
    right = editor.locator('[data-side="right"]')
    await right.locator("select[name=plaque]").select_option("visible")
    await right.locator("input[name=ica_psv_cm_s]").fill("150")  # no Doppler angle entered
    await editor.locator('[data-side="left"] input[name=examined]').uncheck()
    warning = editor.locator('[data-testid=report-warnings] [data-warning="angle_missing:right"]')
    await expect(warning).to_contain_text("Right side: Doppler angle not recorded")
    await expect(right.locator("[data-field=grade]")).to_have_text("50–69 % stenosis")

    await editor.locator("[data-action=sign-report]").click()
    error = editor.locator("[data-testid=report-error]")
    await expect(error).to_have_attribute("data-code", "unconfirmed_warnings")
    await expect(error).to_have_text("Confirm or correct the warnings first.")
    await expect(editor.locator("[data-testid=report-status]")).to_contain_text(
        "Draft v1 by Expert"
    )  # saved, not signed

    await warning.locator("input[name=confirm-warning]").check()
    await expect(warning).to_have_attribute("data-confirmed", "true")
    await editor.locator("[data-action=sign-report]").click()
    await expect(editor.locator("[data-testid=report-status]")).to_contain_text("Preliminary v1, signed by Expert")
    assert problems == []
