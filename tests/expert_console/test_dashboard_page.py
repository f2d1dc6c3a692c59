"""The QC dashboard in Chromium: charts.js's pure builders first (scales, ticks, SVG built without markup), then the
#/qc page against the real server (with the peer-review routes): one chart point per recorded session, grouped per
sonographer or per site, and RADPEER peer review of a sample of reports, submitted and summed up per reader."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import BrowserContext, Page, expect

from recordings import timeline as tl
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.models import Recording
from signaling_server.settings import Settings
from signaling_server.training import reviews
from tests.conftest import seed
from tests.databases import database
from tests.expert_console.test_app import Server, context, open_console  # noqa: F401  (fixtures)
from tests.recordings.sessions import link, record_session, review_body
from tests.recordings.sessions import score as store_qc
from tests.signaling_server.reports.test_peer_review import final_report

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """test_app's server, with the peer-review routes (until app.py registers them)."""
    async with database("sqlite", tmp_path) as url:
        app = create_app(Settings(data_dir=tmp_path, database_url=url))
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        try:
            running = Server(app, client, await seed(app), str(client.make_url("")).rstrip("/"))
            yield running
            for api in running.opened:
                await api.close()
        finally:
            await client.close()


async def run(page: Page, body: str, arg: Any = None) -> Any:
    return await page.evaluate(f"async (arg) => {{ const c = await import('/static/charts.js'); {body} }}", arg)


# ---- charts.js ---------------------------------------------------------------------------------------------------


async def test_scales_and_ticks(page: Page) -> None:
    got = await run(
        page,
        """const s = c.scale([0, 10], [100, 0]);
           return [s(0), s(5), s(10), c.scale([3, 3], [0, 8])(3), c.niceTicks(0, 100, 4), c.niceTicks(1, 5, 4),
                   c.niceTicks(0.13, 0.71, 5), c.niceTicks(2, 2), c.yDomain([2, 4], [1, 5]), c.yDomain([0, 7], [0, 5]),
                   c.yDomain([3, 3], null), c.timeTicks(0, 10 * 86400000, 5).length];""",
    )
    assert got[:4] == [100, 50, 0, 4]
    assert got[4] == [0, 20, 40, 60, 80, 100] and got[5] == [1, 2, 3, 4, 5]
    assert got[6] == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7] and got[7] == [2]
    assert got[8] == [1, 5] and got[9] == [0, 7]  # a fixed range widens to fit
    assert got[10][0] < 3 < got[10][1] and 4 <= got[11] <= 6


async def test_a_line_chart_is_svg_with_one_point_per_value_and_text_as_text(page: Page) -> None:
    got = await run(
        page,
        """const day = 86400000;
           const chart = c.lineChart({key: 'score', title: 'Score', yRange: [0, 100], series: [
             {key: 'a', name: '<b>Sono A</b>', points: [{x: 0, y: 10, id: 'r1'}, {x: day, y: 20, id: 'r2'},
                                                     {x: 3 * day, y: 90, id: 'r3'}]},
             {key: 'b', name: 'Sono B', points: [{x: 2 * day, y: 50, id: 'r4'}]}]});
           const empty = c.lineChart({series: [], empty: 'Nothing yet'});
           const bars = c.stackedBars({key: 'p', categories: [{key: '1', label: '1', color: '#0f0'},
             {key: '2a', label: '2a', color: '#ff0'}], rows: [{key: 'x', label: 'Reader', values: {'1': 3, '2a': 1}}]});
           const ys = [...chart.querySelectorAll('circle[data-series=a]')].map((p) => Number(p.getAttribute('cy')));
           return {ns: chart.namespaceURI, tag: chart.tagName, chart: chart.dataset.chart,
             points: chart.querySelectorAll('circle[data-point]').length,
             ids: [...chart.querySelectorAll('circle')].map((p) => p.dataset.id),
             lines: chart.querySelectorAll('polyline').length, bold: chart.querySelectorAll('b').length,
             legend: [...chart.querySelectorAll('.chart-legend text')].map((t) => t.textContent),
             rising: ys[0] > ys[1] && ys[1] > ys[2], empty: empty.querySelector('.chart-empty').textContent,
             bars: [...bars.querySelectorAll('rect[data-category]')].map((r) => [r.dataset.category, r.dataset.value]),
             note: bars.querySelector('.bar-row .chart-tick').textContent};""",
    )
    assert got["ns"] == "http://www.w3.org/2000/svg" and got["tag"] == "svg" and got["chart"] == "score"
    assert got["points"] == 4 and got["ids"] == ["r1", "r2", "r3", "r4"]
    assert got["lines"] == 1  # a series of one point has no line
    assert got["bold"] == 0 and got["legend"] == ["<b>Sono A</b>", "Sono B"]  # names are text, never markup
    assert got["rising"] and got["empty"] == "Nothing yet"
    assert got["bars"] == [["1", "3"], ["2a", "1"]] and got["note"] == "4"


async def test_series_are_grouped_per_sonographer_or_site(page: Page) -> None:
    got = await page.evaluate(
        """async () => { const r = await import('/static/review.js');
           const point = (id, day, site, person, value) => ({recording_id: id, at: `2025-03-0${day}T10:00:00Z`,
                                                             site_id: site, sonographer_id: person, value});
           const points = [point('a', 1, 's1', 'u1', 1), point('b', 2, 's1', 'u2', 2), point('c', 3, 's2', 'u1', 3)];
           const names = new Map([['u1', 'Zed'], ['u2', 'Amy'], ['s1', 'North'], ['s2', 'River']]);
           const show = (series) => series.map((s) => [s.name, s.points.map((p) => p.id)]);
           return [show(r.groupSeries(points, 'sonographer', names)), show(r.groupSeries(points, 'site', names))]; }"""
    )
    assert got == [[["Amy", ["b"]], ["Zed", ["a", "c"]]], [["North", ["a", "b"]], ["River", ["c"]]]]


# ---- the page ----------------------------------------------------------------------------------------------------


def steady() -> list[tl.Event]:
    return [tl.Join(0.0, "p-expert", "expert", "Expert"), *(link(float(t), 30.0, 60.0, 0.0) for t in (1, 2, 3))]


async def backdate(server: Server, rid: str, days: int) -> None:
    async with server.app[DB]() as db:
        recording = await db.get(Recording, rid)
        assert recording is not None
        recording.started_at -= timedelta(days=days)
        await db.commit()


async def test_the_dashboard_draws_one_point_per_session(server: Server, context: BrowserContext) -> None:  # noqa: F811
    sono_a, sono_b, expert = await server.api("sono_a"), await server.api("sono_b"), await server.api("expert")
    edge_a = await server.api(bearer=server.world.device_a_credential)
    edge_b = await server.api(bearer=server.world.device_b_credential)
    sessions = [await record_session(sono_a, expert, edge_a), await record_session(sono_a, expert, edge_a, steady()),
                await record_session(sono_b, expert, edge_b, steady())]
    await store_qc(server.app, *(s["id"] for s in sessions))  # the dashboard reads the stored QC records
    for session, days in zip(sessions, (9, 4, 1), strict=True):
        await backdate(server, session["id"], days)
    trainer = await server.api("trainer")
    for session, rating in ((sessions[0], 2), (sessions[1], 4)):
        async with trainer.session.put(f"{trainer.base}/api/v1/recordings/{session['id']}/review",
                                       json=review_body(rating), headers={"X-CSRF-Token": trainer.csrf or ""}) as r:
            assert r.status == 201

    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, "#/qc")
    await expect(page.locator("[data-nav=qc]")).to_have_attribute("aria-current", "page")
    await expect(page.locator("[data-testid=dashboard-summary]")).to_have_text("3 sessions · 2 reviewed")
    score = page.locator("svg[data-chart=score]")
    await expect(score.locator("circle[data-point]")).to_have_count(3)
    await expect(score.locator(".chart-legend text")).to_have_text(["Sono A", "Sono B"])
    ids = await score.locator("circle[data-point]").evaluate_all("(ps) => ps.map((p) => p.dataset.id)")
    assert sorted(ids) == sorted(s["id"] for s in sessions)
    await expect(page.locator("svg[data-chart=osaus] circle[data-point]")).to_have_count(2)  # reviewed sessions only
    await expect(page.locator("svg[data-chart=completeness] circle[data-point]")).to_have_count(3)
    weight = round(100 * reviews.WEIGHTS["osaus"])
    await expect(page.locator("[data-chart-card=score] figcaption")).to_contain_text(f"osaus {weight} %")

    chooser = page.locator("select[data-chooser=link]")
    await chooser.select_option("link.freeze_ratio")
    frozen = page.locator("svg[data-chart='link.freeze_ratio'] circle[data-point]")
    await expect(frozen).to_have_count(3)
    values = sorted(await frozen.evaluate_all("(ps) => ps.map((p) => Number(p.dataset.y))"))
    assert values[:2] == [0, 0] and 20 < values[2] <= 33.34

    await page.locator("select[name=by]").select_option("site")
    await expect(score.locator(".chart-legend text")).to_have_text(["North Community Health Centre",
                                                                   "Riverside Community Health Centre"])
    assert page.url.endswith("#/qc?by=site")
    await page.locator("select[name=site]").select_option("river")
    await expect(page.locator("[data-testid=dashboard-summary]")).to_have_text("1 session · 0 reviewed")
    await expect(page.locator("svg[data-chart=score] circle[data-point]")).to_have_count(1)
    assert page.url.endswith("#/qc?site=river&by=site")

    await page.locator("svg[data-chart=score] circle[data-point]").click()
    await page.wait_for_url(re.compile(f"#/recordings/{sessions[2]['id']}$"))
    assert problems == []


async def test_peer_review_sample_submit_and_summary(server: Server, context: BrowserContext) -> None:  # noqa: F811
    expert, expert2 = await server.api("expert"), await server.api("expert2")
    report = await final_report(server.app, server.world.site_a, "CR", expert, expert2)
    await server.sign_in(context, "expert2")
    page, problems = await open_console(context, "#/qc")
    summary = page.locator("[data-testid=peer-summary]")
    await expect(summary).to_contain_text("No peer reviews yet.")

    await page.locator("[data-action=peer-sample]").click()
    card = page.locator(f'.peer-card[data-report-id="{report["id"]}"]')
    await expect(card).to_contain_text("read by Expert")
    await expect(card).to_contain_text("CR: no acute findings.")
    significance = card.locator('fieldset[data-field=significance] input[value="a"]')
    await expect(significance).to_be_disabled()
    await card.locator('input[value="2"]').check()
    await expect(significance).to_be_enabled()
    await card.locator('input[value="b"]').check()
    await card.locator("textarea[name=comment]").fill("Missed a rib fracture")
    await card.locator("button[type=submit]").click()
    await expect(card.locator("[data-testid=peer-done]")).to_have_text("Reviewed: 2b")

    row = summary.locator(f'tr[data-reader-id="{server.world.users["expert"]}"]')
    await expect(row.locator("[data-category='2b']")).to_have_text("1")
    await expect(row.locator("[data-field=rate]")).to_have_text("100 %")
    await expect(page.locator("svg[data-chart=peer-review] rect[data-category='2b']")).to_have_count(1)
    status, stored = await expert2.get(f"/api/v1/reports/{report['id']}/peer-reviews")
    assert status == 200 and stored["peer_reviews"][0]["comment"] == "Missed a rib fracture"

    await page.locator("[data-action=peer-sample]").click()
    await expect(page.locator("[data-testid=peer-sample]")).to_contain_text("Nothing to review")
    assert problems == []


async def test_the_sample_is_for_experts_only(server: Server, context: BrowserContext) -> None:  # noqa: F811
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, "#/qc")
    await expect(page.locator("[data-testid=peer-summary]")).to_be_visible()
    await expect(page.locator("[data-action=peer-sample]")).to_have_count(0)
    assert problems == []
