"""The reading queue: queue.js's pure logic in Chromium (countdowns on the server's clock, escalation, filters in
the URL), then the #/queue page against the real server with studies arriving as images do."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from signaling_server.reading.service import now
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.reading.studies import arrive

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def run(page: Page, body: str, arg: Any = None) -> Any:
    return await page.evaluate(f"async (arg) => {{ const q = await import('/static/queue.js'); {body} }}", arg)


# ---- queue.js ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1799.9, "29:59 left"),
        (59, "00:59 left"),
        (0, "00:00 left"),
        (3600, "1 h 00 min left"),
        (3 * 3600 + 5 * 60 + 9, "3 h 05 min left"),
        (-0.5, "overdue by 0 s"),
        (-45, "overdue by 45 s"),
        (-60, "overdue by 1 min"),
        (-12 * 60 - 59, "overdue by 12 min"),
        (-(2 * 3600 + 5 * 60), "overdue by 2 h 05 min"),
        (None, "—"),
    ],
)
async def test_countdown_text(page: Page, seconds: float | None, text: str) -> None:
    assert await run(page, "return q.formatCountdown(arg);", seconds) == text


async def test_countdown_runs_on_the_servers_clock(page: Page) -> None:
    # The server says it is 12:00:00 when this browser's clock says 11:58:00 (two minutes slow): a study due at
    # 12:10:00 has ten minutes left, not twelve.
    got = await run(
        page,
        """const local = Date.parse('2025-03-01T11:58:00Z');
           const offset = q.clockOffset('2025-03-01T12:00:00Z', local);
           const study = {due_at: '2025-03-01T12:10:00Z', examined_at: '2025-03-01T11:40:00Z', seconds_left: 600};
           const stopped = {...study, seconds_left: null};
           return [offset, q.secondsLeft(study, offset, local), q.secondsLeft(study, offset, local + 1000),
                   q.secondsLeft(stopped, offset, local), q.targetSeconds(study), q.clockOffset('garbage', local)];""",
    )
    assert got == [120_000, 600, 599, None, 1800, 0]


@pytest.mark.parametrize(
    ("left", "target", "level"),
    [
        (1800, 1800, "ok"),
        (451, 1800, "ok"),  # just over a quarter left
        (449, 1800, "due-soon"),
        (0, 1800, "due-soon"),
        (-1, 1800, "overdue"),
        (100, None, "ok"),
        (None, 1800, "none"),  # no clock running (registered or approved)
    ],
)
async def test_escalation_class(page: Page, left: float | None, target: float | None, level: str) -> None:
    assert await run(page, "return q.escalation(arg[0], arg[1]);", [left, target]) == level


async def test_filters_round_trip_through_the_url(page: Page) -> None:
    got = await run(
        page,
        """const f = q.filtersFromQuery(new URLSearchParams(arg));
           return [f, q.apiQuery(f), q.queueHash(f), q.queueHash(q.noFilters()),
                   q.filtersFromQuery(new URLSearchParams(q.apiQuery(f)))];""",
        "site=north&modality=CR,XX,CT&state=matched&priority=stat,urgent&overdue=1",
    )
    expected = {
        "site": "north",
        "modality": ["CR", "CT"],
        "state": ["matched"],
        "priority": ["stat", "urgent"],
        "overdue": True,
    }
    assert got[0] == expected  # the unknown modality is dropped
    assert got[1] == "site=north&modality=CR,CT&state=matched&priority=stat,urgent&overdue=1"
    assert got[2] == "#/queue?" + got[1]
    assert got[3] == "#/queue"
    assert got[4] == expected


# ---- the page ---------------------------------------------------------------------------------------------------


def row(page: Page, study_id: str) -> Any:
    return page.locator(f'[data-testid=study-list] tr[data-study-id="{study_id}"]')


async def test_queue_lists_orders_escalates_and_filters(server: Server, context: BrowserContext) -> None:  # noqa: F811
    app, world = server.app, server.world
    routine = await arrive(app, world.site_a, "CR", name="Routine^Rita")
    ct = await arrive(app, world.site_b, "CT", name="Ct^Carl")
    late = await arrive(app, world.site_a, "CR", name="Late^Larry", at=now() - timedelta(minutes=31))
    stat = await arrive(app, world.site_b, "CT", priority="STAT", name="Stat^Stan")
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, "#/queue")

    rows = page.locator("[data-testid=study-list] tr[data-study-id]")
    await expect(rows).to_have_count(4)
    assert await rows.first.get_attribute("data-study-id") == stat  # STAT first
    await expect(rows.first.locator("[data-field=priority]")).to_have_text("STAT")
    await expect(page.locator("[data-testid=queue-counts]")).to_have_text("4 open · 1 overdue")

    overdue = row(page, late)
    await expect(overdue).to_have_class(re.compile(r"\boverdue\b"))
    await expect(overdue).to_have_attribute("data-escalation", "overdue")
    await expect(overdue.locator("[data-field=due]")).to_have_text("overdue by 1 min")
    await expect(overdue).to_contain_text("Late Larry")  # family name first, no caret
    await expect(overdue).to_contain_text("North Community Health Centre")
    fresh = row(page, routine).locator("[data-field=due]")
    await expect(fresh).to_have_text(re.compile(r"^(29:[0-5]\d|30:00) left$"))
    shown = await fresh.text_content()
    await expect(fresh).not_to_have_text(shown or "", timeout=2500)  # ticks every second
    await expect(row(page, routine)).to_have_attribute("data-escalation", "ok")

    await page.locator("[data-filter=modality] [data-value=CT]").click()
    await expect(rows).to_have_count(2)
    assert {await r.get_attribute("data-study-id") for r in await rows.all()} == {ct, stat}
    assert page.url.endswith("#/queue?modality=CT")
    await page.reload()  # the filter lives in the URL
    await expect(page.locator("[data-filter=modality] [data-value=CT]")).to_have_attribute("aria-pressed", "true")
    await expect(rows).to_have_count(2)
    await page.locator("[data-action=clear-filters]").click()
    await page.locator("input[name=overdue]").check()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-study-id", late)
    await page.locator("select[name=site]").select_option("river")
    await expect(page.locator("[data-testid=study-list] tr.empty")).to_have_text("No studies match these filters.")
    assert page.url.endswith("#/queue?site=river&overdue=1")

    await page.locator("[data-action=clear-filters]").click()
    await row(page, ct).locator("[data-field=patient]").click()  # a click on the row opens the study
    await page.wait_for_url(f"**/#/studies/{ct}")
    await expect(page.locator("[data-testid=study-title]")).to_have_text("Ct Carl")  # family name first
    assert problems == []


async def test_claim_shows_the_holder_and_locks_out_another_expert(server: Server, browser: Browser) -> None:  # noqa: F811
    study = await arrive(server.app, server.world.site_a, "CR", name="Lock^Lena")
    first = await browser.new_context(base_url=server.url)
    second = await browser.new_context(base_url=server.url)
    try:
        await server.sign_in(first, "expert")
        await server.sign_in(second, "expert2")
        page, problems = await open_console(first, "#/queue")
        await row(page, study).locator("[data-action=claim]").click()
        await expect(row(page, study).locator("[data-field=lock]")).to_have_text("Expert (you)")
        await expect(row(page, study).locator("[data-action=release]")).to_be_visible()

        # the second expert's queue shows who reads it; claiming anyway says so in the server's words
        other, other_problems = await open_console(second, "#/queue")
        await expect(row(other, study).locator("[data-field=lock]")).to_have_text("Expert")
        await expect(row(other, study)).to_have_attribute("data-locked", "other")
        await row(other, study).locator("[data-action=claim]").click()
        error = other.locator("[data-testid=queue-error]")
        await expect(error).to_have_text("Another reader holds this study.")  # the catalog's words for study_locked
        await expect(error).to_have_attribute("data-code", "study_locked")

        await row(page, study).locator("[data-action=release]").click()
        await expect(row(page, study).locator("[data-field=lock]")).to_have_text("—")
        assert problems == []
        assert all("409" in p for p in other_problems), other_problems
    finally:
        await first.close()
        await second.close()
