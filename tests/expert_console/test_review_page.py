"""The trainer's review page in Chromium against the real server, on a session uploaded through the edge's API: a
synthetic 3 s, 30 fps MP4 that shows its frame number, with a timeline whose expert draws an arrow at t = 1.5 s.

The replay is checked frame by frame while the video plays: in a requestVideoFrameCallback registered after the
page's own, the test decodes the frame number from the video's pixels and reads which marks the overlay drew for that
same frame (the canvas's data-marks, stamped with the frame's media time). Then the scoring form is saved, read back
after a reload, and found in the sonographer's list of scores. review.js's pure replay logic is tested first."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import select

from edge_capture.sources.synthetic import SyntheticSource
from qc.score import OSAUS_ITEMS
from recordings import timeline as tl
from recordings.offline import score_path
from recordings.session import segment_offsets
from signaling_server.appkeys import DB
from signaling_server.db.models import QcResult
from signaling_server.training import reviews
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.qc.conftest import faulty_mp4  # noqa: F401  (fixture)
from tests.recordings.sessions import (
    BITS,
    BLOCK_Y,
    FPS,
    HEIGHT,
    WIDTH,
    block_x,
    live_consultation,
    record_session,
    review_body,
    synthetic_mp4,
    upload,
)
from tests.recordings.sessions import link as link_second
from tests.recordings.sessions import score as store_qc
from tests.recordings.test_teaching import NAME, write_recording
from tests.signaling_server.dicomstore.objects import image, multipart

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

MARK_FRAME = 45  # the arrow is drawn at t = 1.5 s
CLEAR_FRAME = 75  # and cleared at 2.5 s


async def run(page: Page, body: str, arg: Any = None) -> Any:
    imports = "const r = {...await import('/static/review.js'), ...await import('/static/replay.js')};"
    return await page.evaluate(f"async (arg) => {{ {imports} {body} }}", arg)


# ---- review.js and replay.js ------------------------------------------------------------------------------------

NEW_MODULES = ["review.js", "replay.js", "charts.js", "views/review.js", "views/reviewplayer.js",
               "views/reviewform.js", "views/recordings.js", "views/dashboard.js", "views/peerreview.js"]


async def test_every_module_of_the_review_pages_parses(page: Page) -> None:
    loaded = await page.evaluate(
        "async (mods) => { for (const m of mods) await import('/static/' + m); return mods.length; }", NEW_MODULES
    )
    assert loaded == len(NEW_MODULES)

EVENTS = [
    {"type": "join", "t": 0, "peer": "p1", "role": "expert", "name": "Expert"},
    {"type": "pointer", "t": 0.2, "x": 0.5, "y": 0.5, "visible": True, "from": "p1"},
    {"type": "mark", "t": 1.5, "id": "m1", "kind": "arrow", "points": [[0.1, 0.1], [0.2, 0.2]], "from": "p1"},
    {"type": "mark", "t": 1.6, "id": "m2", "kind": "circle", "points": [[0.5, 0.5], [0.6, 0.5]], "from": "p1"},
    {"type": "mark", "t": 1.7, "id": "m1", "kind": "arrow", "points": [[0.3, 0.3], [0.4, 0.4]], "from": "p1"},
    {"type": "pointer", "t": 1.8, "x": 0.7, "y": 0.2, "visible": True, "from": "p1"},
    {"type": "pointer", "t": 2.0, "visible": False, "from": "p1"},
    {"type": "clear", "t": 2.5, "from": "p1"},
    {"type": "mark", "t": 2.5, "id": "m3", "kind": "arrow", "points": [[0.1, 0.1], [0.2, 0.2]], "from": "p1"},
]


async def test_replay_state_at_any_time(page: Page) -> None:
    got = await run(
        page,
        """const replay = new r.Replay(arg);
           const at = (t) => { const s = replay.at(t); return [s.marks.map((m) => m.id + ':' + m.points[0][0]),
             s.pointers.map((p) => [p.x, p.y, p.role])]; };
           return [0.1, 0.5, 0.71, 1.498, 1.5, 1.65, 1.7, 1.9, 2.05, 2.5, 9].map(at);""",
        EVENTS,
    )
    assert got == [
        [[], []],
        [[], [[0.5, 0.5, "expert"]]],  # 0.5 s after the pointer moved: still shown
        [[], []],  # held no longer
        [[], []],
        [["m1:0.1"], []],  # the mark appears at its own time, not before
        [["m1:0.1", "m2:0.5"], []],
        [["m1:0.3", "m2:0.5"], []],  # drawn again with the same id: replaced
        [["m1:0.3", "m2:0.5"], [[0.7, 0.2, "expert"]]],
        [["m1:0.3", "m2:0.5"], []],  # hidden
        [["m3:0.1"], []],  # cleared, then a new mark at the same time (file order)
        [["m3:0.1"], []],
    ]


async def test_markers_link_and_clock(page: Page) -> None:
    events = [
        {"type": "join", "t": 0, "peer": "e", "role": "expert"},
        {"type": "join", "t": 0, "peer": "s", "role": "sonographer"},
        {"type": "capture", "t": 1, "id": "c1", "sop_uid": "1.2", "kind": "still",
         "labels": {"structure": "CCA", "side": "R"}},
        {"type": "chat", "t": 2, "text": "hello", "name": "Expert", "role": "expert"},
        {"type": "qc", "t": 3, "code": "dark", "state": "raised", "text": "too dark"},
        {"type": "qc", "t": 4, "code": "dark", "state": "cleared"},
        *({"type": "link", "t": t, "viewers": [{"peer": "e", "fps": fps, "rtt_ms": rtt, "loss": 0.01},
                                               {"peer": "s", "fps": 1, "rtt_ms": 999, "loss": 0.5}]}
          for t, fps, rtt in ((1, 30, 50), (2, 2, 100), (3, 1, 150), (4, 29, 200))),
    ]
    got = await run(
        page,
        """return [r.timelineMarkers(arg).map((m) => [m.kind, m.t, m.end ?? null, m.label]),
                  r.linkSummary(arg, 30), r.alertsOf(arg), r.formatClock(83.9), r.formatClock(3725),
                  r.formatClock(null),
                  r.queryString({a: 'x y', b: '', c: null, d: 2})];""",
        events,
    )
    markers, link, alerts, clock, long, unknown, query = got
    assert markers == [
        ["capture", 1, None, "Still: CCA R"],
        ["freeze", 1, 3, "Frozen 2.0 s"],  # the gaps of seconds 2 (2 frames) and 3 (1 frame), merged
        ["chat", 2, None, "Expert: hello"],
        ["qc", 3, None, "QC: too dark"],
    ]
    assert link["seconds"] == 4 and link["freeze_ratio"] == 0.5 and link["freeze_count"] == 3
    assert link["loss_pct"] == pytest.approx(1)
    assert link["rtt_p95_ms"] == pytest.approx(192.5)  # the sonographer's page is left out
    assert alerts == [{"code": "dark", "text": "too dark", "raised_at": 3, "cleared_at": 4}]
    assert (clock, long, unknown, query) == ("01:23", "1:02:05", "--:--", "?a=x%20y&d=2")


async def test_link_lost_spans_go_on_the_bar(page: Page) -> None:
    """The edge's link_lost start and end make one span on the timeline bar; one never ended runs to the last event."""
    events = [
        {"type": "state", "t": 0, "state": "live"},
        {"type": "link_lost", "t": 5.5, "state": "start"},
        {"type": "chat", "t": 20, "text": "anyone?", "name": "Sono", "role": "sonographer"},
        {"type": "link_lost", "t": 45.7, "state": "end"},
        {"type": "link_lost", "t": 50, "state": "start"},
        {"type": "state", "t": 60, "state": "ended"},
    ]
    got = await run(
        page,
        "return r.timelineMarkers(arg).filter((m) => m.kind === 'link-lost').map((m) => [m.t, m.end, m.label]);",
        events,
    )
    assert got == [[5.5, 45.7, "Link lost 40.2 s"], [50, 60, "Link lost 10.0 s"]]


# ---- the page ----------------------------------------------------------------------------------------------------


async def recorded(server: Server) -> dict[str, Any]:  # noqa: F811
    sono, expert = await server.api("sono_a"), await server.api("expert")
    edge = await server.api(bearer=server.world.device_a_credential)
    return await record_session(sono, expert, edge)


async def ready(page: Page) -> None:
    video = page.locator("video[data-testid=review-video]")  # a trainer's copy is made first: generous
    await expect(video).to_have_js_property("readyState", 4, timeout=120_000)
    await expect(page.locator("canvas[data-testid=overlay]")).to_have_attribute("data-media-time", re.compile(r"\d"))


SEEK = """async (t) => {
    const video = document.querySelector('video[data-testid=review-video]');
    const canvas = document.querySelector('canvas[data-testid=overlay]');
    const shown = new Promise((resolve) => video.requestVideoFrameCallback((now, m) => resolve(m.mediaTime)));
    video.currentTime = t;
    const mediaTime = await shown;
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const rect = canvas.getBoundingClientRect();
    const ratio = canvas.width / rect.width;
    // the middle of the arrow, (0.4, 0.4) of the picture (the video fills its box at the picture's aspect ratio)
    const box = {w: video.clientWidth, h: video.clientHeight};
    const scale = Math.min(box.w / video.videoWidth, box.h / video.videoHeight);
    const [w, h] = [video.videoWidth * scale, video.videoHeight * scale];
    const x = ((box.w - w) / 2 + 0.4 * w) * ratio, y = ((box.h - h) / 2 + 0.4 * h) * ratio;
    const pixel = [...canvas.getContext('2d').getImageData(Math.round(x) - 2, Math.round(y) - 2, 5, 5).data];
    let red = 0;
    for (let k = 0; k < pixel.length; k += 4) if (pixel[k] > 180 && pixel[k + 1] < 90 && pixel[k + 3] > 200) red++;
    return {mediaTime, canvasTime: Number(canvas.dataset.mediaTime), marks: canvas.dataset.marks, red};
}"""

PLAY = """async ({bits, blockY, blocks, fps}) => {
    const video = document.querySelector('video[data-testid=review-video]');
    const canvas = document.querySelector('canvas[data-testid=overlay]');
    const probe = document.createElement('canvas');
    probe.width = video.videoWidth; probe.height = video.videoHeight;
    const ctx = probe.getContext('2d', {willReadFrequently: true});
    const samples = [];
    video.currentTime = 0.9;
    await new Promise((resolve) => video.requestVideoFrameCallback(resolve));  // the seek landed, paused
    await new Promise((done) => {
        const onFrame = (now, m) => {
            ctx.drawImage(video, 0, 0);
            const data = ctx.getImageData(0, 0, probe.width, probe.height).data;
            let frame = 0;
            for (let bit = 0; bit < bits; bit++) {
                const x = Math.round((blocks[bit][0] + blocks[bit][1]) / 2);
                const y = Math.round((blockY[0] + blockY[1]) / 2);
                if (data[(y * probe.width + x) * 4] > 128) frame |= 1 << bit;
            }
            samples.push({frame, mediaTime: m.mediaTime, canvasTime: Number(canvas.dataset.mediaTime),
                          marks: canvas.dataset.marks});
            if (m.mediaTime >= 2.2) { video.pause(); done(); } else video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
        video.play();
        setTimeout(done, 8000);
    });
    return samples;
}"""


async def test_the_review_page_replays_a_mark_at_the_frame_it_was_drawn(
    server: Server, context: BrowserContext  # noqa: F811
) -> None:
    recording = await recorded(server)
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, f"#/recordings/{recording['id']}")
    await ready(page)
    await expect(page.locator("[data-testid=recording-title]")).to_have_text("Thyroid · Sono A")

    # paused, one frame before the arrow and then its frame
    before = await page.evaluate(SEEK, (MARK_FRAME - 1) / FPS + 0.001)
    assert before["mediaTime"] == pytest.approx((MARK_FRAME - 1) / FPS, abs=1e-3)
    assert before["canvasTime"] == pytest.approx(before["mediaTime"], abs=1e-5)
    assert before["marks"] == "" and before["red"] == 0
    at = await page.evaluate(SEEK, MARK_FRAME / FPS + 0.001)
    assert at["mediaTime"] == pytest.approx(MARK_FRAME / FPS, abs=1e-3)
    assert at["marks"] == "m1" and at["red"] >= 3, at  # drawn on the canvas, in the expert's colour

    # playing: every presented frame from 0.9 s to 2.2 s
    probe = {"bits": BITS, "blockY": list(BLOCK_Y), "blocks": [block_x(b) for b in range(BITS)], "fps": FPS}
    samples = await page.evaluate(PLAY, probe)
    same_frame = [s for s in samples if abs(s["canvasTime"] - s["mediaTime"]) < 1e-5]
    assert len(same_frame) >= len(samples) - 1 and len(samples) >= 20, samples  # the page drew before the probe read
    for s in same_frame:
        # The picture is the frame the media time says; on a busy machine the video element may have moved on to the
        # next one by the time the page copies it (seen under two CPU hogs), never further and never back.
        frame = round(s["mediaTime"] * FPS)
        assert s["frame"] in (frame, frame + 1), samples
        if frame < MARK_FRAME - 1:  # the marks follow the media time
            assert s["marks"] == "", s
        elif MARK_FRAME <= frame < CLEAR_FRAME:
            assert s["marks"] == "m1", s
    exact = [s for s in same_frame if s["frame"] == round(s["mediaTime"] * FPS)]
    assert len(exact) >= len(same_frame) // 2, samples  # mostly the very frame
    frames = {s["frame"] for s in same_frame}
    assert frames & set(range(MARK_FRAME - 6, MARK_FRAME)) and frames & set(range(MARK_FRAME, MARK_FRAME + 6)), frames
    assert problems == []


async def test_a_trainer_waits_for_the_de_identified_copy_and_then_it_plays_without_the_banner(
    server: Server, context: BrowserContext, tmp_path: Path  # noqa: F811
) -> None:
    """The scanner's screen with a patient banner: the trainer's first visit asks for the review copy, the page says
    it is being prepared, asks again when the server says, then plays the masked copy."""
    scanner = SyntheticSource("thyroid", 640, 360, FPS, cycle_seconds=1.0, paced=False, patient=NAME,
                              patient_id="PID-551937")  # fmt: skip
    write_recording(tmp_path / "media.mp4", scanner, 3.0)
    sono, expert = await server.api("sono_a"), await server.api("expert")
    edge = await server.api(bearer=server.world.device_a_credential)
    recording = await record_session(sono, expert, edge, media=(tmp_path / "media.mp4").read_bytes())
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, f"#/recordings/{recording['id']}")

    waiting = page.locator("[data-testid=media-waiting]")
    await expect(waiting).to_be_visible()
    await expect(waiting).to_contain_text("Preparing the de-identified copy of this recording")
    await expect(page.locator("[data-testid=recording-title]")).to_have_text("Thyroid · Sono A")  # the rest is there
    await ready(page)
    await expect(waiting).to_be_hidden()
    await expect(page.locator("[data-testid=recording-error]")).to_be_hidden()
    banner_rows = scanner.layout.banner.y + scanner.layout.banner.h
    shown = await page.evaluate(
        """async (rows) => {
            const video = document.querySelector('video[data-testid=review-video]');
            await video.play();
            await new Promise((resolve) => video.requestVideoFrameCallback(resolve));
            const canvas = document.createElement('canvas');
            canvas.width = video.videoWidth; canvas.height = video.videoHeight;
            const g = canvas.getContext('2d');
            g.drawImage(video, 0, 0);
            const top = g.getImageData(0, 0, canvas.width, rows).data;
            let brightest = 0;
            for (let i = 0; i < top.length; i += 4) brightest = Math.max(brightest, top[i], top[i + 1], top[i + 2]);
            return {brightest, time: video.currentTime, width: video.videoWidth};
        }""",
        banner_rows,
    )
    assert shown["width"] == 640 and shown["time"] > 0 and shown["brightest"] <= 8, shown  # the banner is black
    assert problems == []


async def store_still(server: Server, consultation_id: str, sop_uid: str) -> None:  # noqa: F811
    """The edge stores one of the session's stills in the consultation's study (STOW-RS), as after a capture."""
    sono, edge = await server.api("sono_a"), await server.api(bearer=server.world.device_a_credential)
    _, consultation = await sono.get(f"/api/v1/consultations/{consultation_id}")
    content_type, body = multipart([image(study_uid=consultation["study_uid"], sop_uid=sop_uid, rows=120,
                                          columns=160)])
    async with edge.session.post(f"{edge.base}/dicomweb/studies", data=body,
                                 headers={"Content-Type": content_type}) as r:
        assert r.status == 200, await r.text()


async def open_review(
    server: Server, context: BrowserContext, still_uid: str  # noqa: F811
) -> tuple[dict[str, Any], Page, list[str]]:
    """A recorded session with one of its stills stored, open on the trainer's review page."""
    recording = await recorded(server)
    await store_still(server, recording["consultation_id"], still_uid)
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, f"#/recordings/{recording['id']}")
    await ready(page)
    return recording, page, problems


async def test_timeline_bar_stills_and_qc_panel(server: Server, context: BrowserContext) -> None:  # noqa: F811
    _, page, problems = await open_review(server, context, "1.2.826.0.1.3680043.8.498.1")
    bar = page.locator("[data-testid=timeline-bar]")
    for kind, count in (("capture", 2), ("chat", 1), ("qc", 1), ("freeze", 1)):
        await expect(bar.locator(f".timeline-marker[data-kind={kind}]")).to_have_count(count)
    await bar.locator(".timeline-marker[data-kind=qc]").click()
    await expect(page.locator("[data-testid=review-clock]")).to_have_text("00:01")
    assert await page.evaluate("document.querySelector('video').currentTime") == pytest.approx(1.8)

    stills = page.locator("[data-testid=review-stills] .capture-tile")
    await expect(stills).to_have_count(2)
    picture = stills.first.locator("img")
    await expect(picture).to_have_attribute("src", re.compile(r"/dicomweb/studies/.+/instances/1\.2\.826\.0\.1\."
                                                              r"3680043\.8\.498\.1/rendered$"))
    await expect(picture).to_have_js_property("naturalWidth", 160)  # the stored still, rendered by WADO-RS
    await expect(stills.nth(1)).to_contain_text("not stored")  # the edge never sent the second one
    await expect(stills.nth(1)).to_contain_text("00:02 thyroid right lobe longitudinal")
    await stills.nth(1).locator("[data-action=seek]").click()
    await expect(page.locator("[data-testid=review-clock]")).to_have_text("00:02")

    qc = page.locator("[data-testid=qc-panel]")
    await expect(qc.locator("[data-testid=qc-completeness]")).to_have_text("33 % of the Thyroid protocol")
    await expect(qc.locator(".checklist li[data-done=true]")).to_have_count(2)
    await expect(qc.locator("[data-testid=qc-link]")).to_contain_text(re.compile(r"Frozen\s*2\d\.\d %"))
    await expect(qc.locator("[data-testid=qc-alerts]")).to_contain_text("too much gain (cleared at 00:02)")
    await expect(qc.locator("svg[data-chart=link-fps] circle[data-point]")).to_have_count(3)
    assert problems == []


async def pick(page: Page, name: str, value: str) -> None:
    await page.locator(f'input[name="{name}"][value="{value}"]').check()


async def test_the_scoring_form_saves_and_the_sonographers_scores_list_it(
    server: Server, context: BrowserContext  # noqa: F811
) -> None:
    recording = await recorded(server)
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, f"#/recordings/{recording['id']}")
    await ready(page)
    form = page.locator("[data-testid=review-form]")
    for item in OSAUS_ITEMS[:-1]:
        await pick(page, f"osaus.{item}", "4")
    for item in ("gain", "tgc", "depth", "key_information", "overall"):
        await pick(page, f"image_quality.{item}", "3")
    await pick(page, "image_quality.colour_doppler", "")  # n/a

    await form.locator("[data-action=save-review]").click()  # one OSAUS item left out
    error = page.locator("[data-testid=review-error]")
    await expect(error).to_have_attribute("data-code", "invalid_review")
    await expect(error).to_contain_text("The review form is incomplete or not valid.")  # errors.invalid_review
    await expect(form.locator('[data-field="osaus.decision_making"]')).to_have_attribute("aria-invalid", "true")

    await pick(page, "osaus.decision_making", "5")
    await page.evaluate("document.querySelector('video').currentTime = 1.5")
    await expect(form.locator("[data-action=comment-here]")).to_have_text("Comment at 00:01")
    await form.locator("[data-action=comment-here]").click()
    await page.keyboard.type("Arrow on the nodule, well timed")
    await form.locator("[data-action=comment-general]").click()
    await page.keyboard.type("Systematic sweep")
    await form.locator("[data-action=save-review]").click()
    await expect(page.locator("[data-testid=review-status]")).to_contain_text("Saved")
    await expect(error).to_be_hidden()
    total = page.locator("[data-testid=score-total]")
    await expect(total).to_have_text(re.compile(r"^\d+\.\d$"))
    weights = page.locator("[data-testid=score-weights] tbody tr")
    await expect(weights).to_have_count(4)
    await expect(weights.first.locator("td").first).to_have_text("OSAUS (trainer)")
    osaus_weight = round(100 * reviews.WEIGHTS["osaus"])
    await expect(weights.first.locator("[data-field=weight]")).to_have_text(f"× {osaus_weight} %")
    await expect(weights.nth(1).locator("td").first).to_have_text("Image quality (trainer)")
    shown_total = await total.text_content()

    status, stored = await (await server.api("trainer")).get(f"/api/v1/recordings/{recording['id']}/review")
    assert status == 200 and stored["osaus"]["decision_making"] == 5
    assert stored["image_quality"]["colour_doppler"] is None
    assert stored["comments"] == [{"t": 1.5, "text": "Arrow on the nodule, well timed"},
                                  {"t": None, "text": "Systematic sweep"}]
    assert f"{100 * stored['score']['total']:.1f}" == shown_total

    await page.reload()
    await ready(page)
    await expect(page.locator('input[name="osaus.decision_making"][value="5"]')).to_be_checked()
    await expect(page.locator('input[name="image_quality.colour_doppler"][value=""]')).to_be_checked()
    comments = page.locator("[data-testid=review-comments] li")
    await expect(comments).to_have_count(2)
    await expect(comments.first.locator("textarea")).to_have_value("Arrow on the nodule, well timed")
    await expect(comments.first.locator("[data-action=seek]")).to_have_text("00:01")
    await expect(page.locator("[data-testid=score-total]")).to_have_text(shown_total or "")

    await page.goto(f"/#/recordings?sonographer={server.world.users['sono_a']}")
    scores = page.locator("[data-testid=score-list] tr[data-review-id]")
    await expect(scores).to_have_count(1)
    await expect(page.locator("[data-testid=scores] h2")).to_have_text("Scores of Sono A")
    await expect(scores.locator("[data-field=total]")).to_have_text(shown_total or "")
    await expect(scores.locator("[data-field=osaus]")).to_have_text("4.1")
    listed = page.locator(f'[data-testid=recording-list] tr[data-recording-id="{recording["id"]}"]')
    await expect(listed).to_be_visible()
    await scores.first.click()
    await page.wait_for_url(re.compile(f"#/recordings/{recording['id']}$"))
    assert problems == []


async def test_an_expert_reads_the_reviews_but_has_no_form(server: Server, context: BrowserContext) -> None:  # noqa: F811
    recording = await recorded(server)
    trainer = await server.api("trainer")
    async with trainer.session.put(f"{trainer.base}/api/v1/recordings/{recording['id']}/review",
                                   headers={"X-CSRF-Token": trainer.csrf or ""},
                                   json=review_body(3)) as r:
        assert r.status == 201
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, "#/recordings")
    await expect(page.locator("[data-nav=recordings]")).to_be_visible()
    await expect(page.locator("[data-nav=recordings]")).to_have_attribute("aria-current", "page")
    row = page.locator(f'[data-testid=recording-list] tr[data-recording-id="{recording["id"]}"]')
    await row.locator("[data-action=open]").click()
    await ready(page)
    others = page.locator("[data-testid=other-reviews]")
    await expect(others).to_contain_text("Trainer")
    await expect(others.locator("[data-testid=score-total]")).to_be_visible()
    await expect(page.locator("[data-testid=review-form]")).to_have_count(0)
    await expect(page.locator("[data-testid=teaching-export]")).to_be_hidden()  # trainers and admins only
    assert problems == []


FETCH = """async (url) => {
    const r = await fetch(url);
    const bytes = new Uint8Array(await r.arrayBuffer());
    return {status: r.status, type: r.headers.get('content-type'), size: bytes.length,
            magic: String.fromCharCode(...bytes.slice(128, 132)), text: new TextDecoder('latin1').decode(bytes)};
}"""


async def test_a_trainer_makes_a_teaching_copy_and_downloads_it(server: Server, context: BrowserContext) -> None:  # noqa: F811
    recording, page, problems = await open_review(server, context, "1.2.826.0.1.3680043.8.498.2")
    panel = page.locator("[data-testid=teaching-export]")
    await panel.locator("[data-action=teaching-export]").click()
    state = panel.locator("[data-testid=teaching-state]")
    await expect(state).to_have_attribute("data-state", "done", timeout=60_000)
    links = panel.locator("a[data-file]")
    await expect(links).to_have_count(3)
    assert await links.evaluate_all("(as) => as.map((a) => a.dataset.file)") == [
        "media.mp4", "timeline.jsonl", "manifest.json"]  # fmt: skip
    manifest = await page.evaluate(FETCH, await links.nth(2).get_attribute("href"))
    assert manifest["status"] == 200 and '"kind": "recording"' in manifest["text"].replace('":"', '": "')
    media = await page.evaluate(FETCH, await links.first.get_attribute("href"))
    assert media["status"] == 200 and media["type"] == "video/mp4" and media["size"] > 1000
    timeline = await page.evaluate(FETCH, await links.nth(1).get_attribute("href"))
    assert timeline["status"] == 200 and recording["consultation_id"] not in timeline["text"]

    still = page.locator('[data-testid=review-stills] .capture-tile[data-sop-uid="1.2.826.0.1.3680043.8.498.2"]')
    download = still.locator("a[data-action=teaching-still]")
    await expect(download).to_be_visible()
    dicom = await page.evaluate(FETCH, await download.get_attribute("href"))
    assert dicom["status"] == 200 and dicom["type"] == "application/dicom" and dicom["magic"] == "DICM"
    # UIDs remapped, so the copy cannot be traced back (new UIDs share pydicom's root: match the whole value)
    assert re.search(r"1\.2\.826\.0\.1\.3680043\.8\.498\.2(?![0-9.])", dicom["text"]) is None
    assert problems == []


# ---- a recording in two segments (the edge restarted 2 s after the first ended) ----------------------------------

STARTED_MS = 1_790_000_000_000.0


def segment_timeline(cid: str, segment: int, started_ms: float, events: list[tl.Event]) -> bytes:
    lines: list[tl.Header | tl.Event] = [tl.Header(cid, started_ms, WIDTH, HEIGHT, FPS, segment=segment), *events]
    return "".join(tl.encode(line) + "\n" for line in lines).encode()


async def two_segments(server: Server) -> dict[str, Any]:  # noqa: F811
    sono, expert = await server.api("sono_a"), await server.api("expert")
    edge = await server.api(bearer=server.world.device_a_credential)
    cid = await live_consultation(sono, expert)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = recording["id"]
    first = [tl.Join(0.0, "p-expert", "expert", "Expert"), tl.Chat(0.5, "first part", "Expert", "expert", None),
             tl.Mark(1.0, "m1", "arrow", ((0.2, 0.2), (0.6, 0.6)), "#ff0000", "p-expert")]
    second = [tl.Join(0.0, "p-expert2", "expert", "Expert"), tl.Chat(0.5, "after restart", "Expert", "expert", None),
              tl.Mark(0.3, "m2", "circle", ((0.5, 0.5), (0.6, 0.5)), "#00ff00", "p-expert2")]
    await upload(edge, rid, "media.mp4", synthetic_mp4(3.0))
    await upload(edge, rid, "timeline.jsonl", segment_timeline(cid, 0, STARTED_MS, first))
    await upload(edge, rid, "media.1.mp4", synthetic_mp4(2.0))
    await upload(edge, rid, "timeline.1.jsonl", segment_timeline(cid, 1, STARTED_MS + 5000, second))
    names = ["media.mp4", "timeline.jsonl", "media.1.mp4", "timeline.1.jsonl"]
    status, ended = await edge.post(f"/api/v1/recordings/{rid}/end", {"files": names, "duration_seconds": 5.0})
    assert status == 200 and ended["state"] == "complete" and ended["segments"] == [0, 1], ended
    return dict(ended)


def session_clock_test_lines() -> list[dict[str, Any]]:
    header = {"type": "header", "consultation_id": "c", "width": 320, "height": 240, "fps": 30}
    return [
        {"header": {**header, "started_at_ms": 1000.0}, "events": [{"type": "mark", "t": 1.0, "id": "a"}]},
        {"header": {**header, "started_at_ms": 1500.0, "segment": 1},
         "events": [{"type": "mark", "t": 0.2, "id": "b"}]},
        {"header": {**header, "started_at_ms": 9000.0, "segment": 2}, "events": [{"type": "chat", "t": 0.5}]},
    ]


async def test_the_session_clock_of_segments(page: Page) -> None:
    got = await run(
        page,
        """const clock = r.sessionClock(arg);
           return [clock.offsets, clock.events.map((e) => [e.type, e.t]),
                   [0, 0.99, 1.0, 1.5, 7.99, 8.0, 20].map((t) => r.segmentAt(clock.offsets, t))];""",
        session_clock_test_lines(),
    )
    offsets, events, segments = got
    # segment 1's wall clock (0.5 s) is before segment 0's last event (1.0 s): it cannot start before that
    assert offsets == [0, 1.0, 8.0]
    # the server's rule (recordings/session.py) gives the same offsets for the same headers and event times
    python = [tl.Timeline(tl.Header("c", line["header"]["started_at_ms"], 320, 240, 30, segment=k),
                          tuple(tl.Clear(e["t"]) for e in line["events"]))
              for k, line in enumerate(session_clock_test_lines())]  # fmt: skip
    assert segment_offsets(python) == offsets
    # a continuous segment keeps the board; one that starts 6.8 s after the last event is a restarted edge: cleared
    assert events == [["mark", 1.0], ["mark", 1.2], ["clear", 8.0], ["chat", 8.5]]
    assert segments == [0, 0, 1, 1, 1, 2, 2]


async def test_a_recording_in_two_segments_plays_on_one_clock(server: Server, context: BrowserContext) -> None:  # noqa: F811
    recording = await two_segments(server)
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context, f"#/recordings/{recording['id']}")
    await ready(page)
    canvas = page.locator("canvas[data-testid=overlay]")
    chats = page.locator("[data-testid=timeline-bar] .timeline-marker[data-kind=chat]")
    await expect(chats).to_have_count(2)
    assert await chats.evaluate_all("(ms) => ms.map((m) => Number(m.dataset.t))") == [0.5, 5.5]

    await chats.nth(1).click()  # into the second segment: its video, at its own media time
    await expect(canvas).to_have_attribute("data-segment", "1")
    await expect(canvas).to_have_attribute("data-session-time", re.compile(r"^5\.5"))
    await expect(canvas).to_have_attribute("data-marks", "m2")  # the restarted edge's board: m1 is gone
    await expect(page.locator("[data-testid=review-clock]")).to_have_text("00:05")
    assert "media?segment=1" in await page.evaluate("document.querySelector('video').src")

    await chats.first.click()  # and back
    await expect(canvas).to_have_attribute("data-segment", "0")
    await expect(canvas).to_have_attribute("data-marks", "")

    # played to the end of the first segment, the second follows on its own
    await page.evaluate("(() => { const v = document.querySelector('video'); v.currentTime = 2.7; v.play(); })()")
    await expect(canvas).to_have_attribute("data-segment", "1", timeout=10_000)
    await expect(canvas).to_have_attribute("data-marks", "m2", timeout=10_000)

    # a comment pinned in the second segment (session time 5.6 s, past the 5 s of media) saves
    trainer = await server.api("trainer")
    body = review_body(4, comments=[{"t": 5.6, "text": "after the restart the circle is right"}])
    async with trainer.session.put(f"{trainer.base}/api/v1/recordings/{recording['id']}/review",
                                   headers={"X-CSRF-Token": trainer.csrf or ""}, json=body) as r:
        assert r.status == 201, await r.text()
    assert problems == []


# ---- the stored QC record sits on the review page's clock ------------------------------------------------------

SECOND_AFTER_S = 12.5  # the second segment's header, after the first's (its 10 s video, then a restart)


def faulty_segment(frozen_second: int, alert_at: float, code: str) -> list[tl.Event]:
    """An expert watching the 10 s faulty clip: a link second of 5 frames, and a live QC alert."""
    return [tl.Join(0.0, "p-expert", "expert", "Expert"), tl.Qc(alert_at, code, "raised", code),
            *(link_second(float(t), 5.0 if t == frozen_second else 30.0) for t in range(1, 11))]  # fmt: skip


async def test_the_stored_qc_moments_sit_where_the_review_page_plays_them(
    server: Server, page: Page, faulty_mp4: Path  # noqa: F811
) -> None:
    """A recording in two segments, scored by the server's own scorer: every stored moment (the video's frozen and
    no-contact stretches, the link's freezes, the live alerts) is its segment's media time plus the offset at which
    replay.js's sessionClock plays that segment, from the timelines the page loads."""
    sono, expert = await server.api("sono_a"), await server.api("expert")
    edge = await server.api(bearer=server.world.device_a_credential)
    cid = await live_consultation(sono, expert)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = recording["id"]
    media = await asyncio.to_thread(faulty_mp4.read_bytes)
    await upload(edge, rid, "media.mp4", media)
    await upload(edge, rid, "timeline.jsonl", segment_timeline(cid, 0, STARTED_MS, faulty_segment(4, 1.0, "frozen")))
    await upload(edge, rid, "media.1.mp4", media)
    second = faulty_segment(7, 0.5, "no_contact")
    await upload(edge, rid, "timeline.1.jsonl", segment_timeline(cid, 1, STARTED_MS + 1000 * SECOND_AFTER_S, second))
    names = ["media.mp4", "timeline.jsonl", "media.1.mp4", "timeline.1.jsonl"]
    status, ended = await edge.post(f"/api/v1/recordings/{rid}/end", {"files": names, "duration_seconds": 20.0})
    assert status == 200 and ended["state"] == "complete", ended
    await store_qc(server.app, rid)
    async with server.app[DB]() as db:
        (row,) = (await db.scalars(select(QcResult).where(QcResult.consultation_id == cid))).all()
    assert row.kind == "offline", row.metrics
    record = row.metrics

    trainer = await server.api("trainer")
    timelines = [(await trainer.get(f"/api/v1/recordings/{rid}/timeline?segment={k}"))[1] for k in (0, 1)]
    page_clock = await run(
        page,
        """const clock = r.sessionClock(arg);
           const freezes = arg.map((line) => r.timelineMarkers(line.events).filter((m) => m.kind === "freeze")
             .map((m) => [m.t, m.end]));
           return {offsets: clock.offsets, freezes};""",
        timelines,
    )
    offsets = page_clock["offsets"]
    assert offsets == [0, SECOND_AFTER_S] and record["segments"] == offsets  # not 10 s, where the first video ends

    alone = await asyncio.to_thread(score_path, faulty_mp4)  # the video alone: its moments on its media clock

    def placed(runs: list[dict[str, Any]]) -> list[float]:  # start, end, start, end… of every segment in turn
        return [o + r[edge] for o in offsets for r in runs for edge in ("start", "end")]

    def stored(key: str) -> list[float]:
        return [s[edge] for s in record[key] for edge in ("start", "end")]

    assert alone["no_contact"] and stored("no_contact") == pytest.approx(placed(alone["no_contact"]), abs=1e-3)
    assert alone["freezes"] and stored("frozen_image") == pytest.approx(placed(alone["freezes"]), abs=1e-3)
    assert stored("dark") == pytest.approx(placed(alone["dark"]), abs=1e-3)
    link_freezes = [o + t for o, found in zip(offsets, page_clock["freezes"], strict=True) for span in found
                    for t in span]  # fmt: skip
    assert len(link_freezes) == 4 and stored("freezes") == pytest.approx(link_freezes, abs=1e-3)
    assert [(a["code"], a["raised_at"]) for a in record["alerts"]] == [("frozen", 1.0), ("no_contact", 13.0)]

    status, qc = await trainer.get(f"/api/v1/recordings/{rid}/qc")  # what the review page's QC panel shows
    assert status == 200 and qc["source"] == "qc_results"
    assert qc["no_contact"] == record["no_contact"] and qc["freezes"] == record["freezes"]
