"""signaling_server.training.reviews and .quality.session_qc: the pure parts (validation, the session score, QC from a
timeline by recordings.qc_record), then the review and QC routes with the real app on SQLite and PostgreSQL, on
sessions uploaded by the edge's API."""

from __future__ import annotations

from typing import Any

import pytest

from qc.score import OSAUS_ITEMS
from recordings import qc_record
from recordings import timeline as tl
from recordings.session import segment_offsets
from signaling_server.appkeys import DB
from signaling_server.db.models import QcResult
from signaling_server.errors import InvalidReview
from signaling_server.training import reviews
from signaling_server.training.reviews import parse_review, session_score
from tests.conftest import Api, make_app
from tests.recordings.sessions import link, people_of, record_session, review_body, thyroid_events, timeline_bytes


async def put(api: Api, path: str, body: Any) -> tuple[int, Any]:
    async with api.session.put(api.base + path, json=body, headers={"X-CSRF-Token": api.csrf or ""}) as r:
        return r.status, await r.json()


# ---- validation ------------------------------------------------------------------------------------------------


def test_a_full_review_parses_with_comments_in_video_order() -> None:
    comments = [{"t": 2, "text": " later "}, {"t": None, "text": "general"}, {"t": 0.5, "text": "a"}]
    body = review_body(3, comments=comments)
    parsed = parse_review(body, duration=3.0)
    assert parsed.osaus["decision_making"] == 3 and parsed.image_quality["colour_doppler"] is None
    assert [(c.t, c.text) for c in parsed.comments] == [(0.5, "a"), (2.0, "later"), (None, "general")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"osaus": None}, "osaus"),
        ({"osaus": {**review_body()["osaus"], "indication": 6}}, "osaus.indication"),
        ({"osaus": {**review_body()["osaus"], "indication": 0}}, "osaus.indication"),
        ({"osaus": {**review_body()["osaus"], "indication": 2.5}}, "osaus.indication"),
        ({"osaus": {**review_body()["osaus"], "indication": True}}, "osaus.indication"),
        ({"osaus": {k: 3 for k in list(review_body()["osaus"])[1:]}}, "osaus.indication"),
        ({"osaus": {**review_body()["osaus"], "charm": 5}}, "osaus.charm"),
        ({"image_quality": {**review_body()["image_quality"], "gain": None}}, "image_quality.gain"),
        ({"image_quality": {**review_body()["image_quality"], "overall": "5"}}, "image_quality.overall"),
        ({"comments": "nice"}, "comments"),
        ({"comments": [{"t": -1, "text": "x"}]}, "comments[0].t"),
        ({"comments": [{"t": 1, "text": "ok"}, {"t": 99, "text": "x"}]}, "comments[1].t"),
        ({"comments": [{"t": 1, "text": "  "}]}, "comments[0].text"),
        ({"comments": [{"t": 1, "text": "x" * 2001}]}, "comments[0].text"),
        ({"comments": [{"t": 1, "text": "x"}] * 201}, "comments"),
    ],
)
def test_each_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidReview) as caught:
        parse_review(review_body(**change), duration=3.0)
    assert caught.value.field == field
    assert caught.value.as_json()["error"] == "invalid_review" and caught.value.as_json()["field"] == field


def test_colour_doppler_may_be_left_out_or_null_but_no_other_item() -> None:
    iq = {k: v for k, v in review_body()["image_quality"].items() if k != "colour_doppler"}
    assert parse_review(review_body(image_quality=iq)).image_quality["colour_doppler"] is None
    del iq["depth"]
    with pytest.raises(InvalidReview, match=r"image_quality\.depth: missing"):
        parse_review(review_body(image_quality=iq))


# ---- the session score -----------------------------------------------------------------------------------------


def decoded(events: list[tl.Event]) -> tl.Timeline:
    return tl.decode_timeline(timeline_bytes("c1", events))


def session(events: list[tl.Event] | None = None) -> qc_record.SessionQc:
    return qc_record.from_timelines("thyroid", [decoded(thyroid_events() if events is None else events)])


def test_the_trainers_ratings_make_the_osaus_and_image_parts() -> None:
    qc = session()
    low = session_score(qc, review_body(2)["osaus"], review_body(2)["image_quality"])
    high = session_score(qc, review_body(5)["osaus"], review_body(5)["image_quality"])
    assert 0 < low["total"] < high["total"] <= 1
    assert high["parts"]["osaus"]["value"] == 1 and high["parts"]["image"]["value"] == 1
    assert high["image_source"] == "trainer" and high["osaus_mean"] == 5 and high["overall"] == 5
    assert high["parts"]["image"]["items"]["colour_doppler"] is None  # n/a: left out of the mean
    assert high["weights"] == reviews.WEIGHTS and sum(high["weights_used"].values()) == pytest.approx(1, abs=1e-3)


def test_without_a_review_the_score_stands_on_the_sessions_qc() -> None:
    qc = session()
    score = session_score(qc)
    assert score["parts"]["osaus"] is None and score["parts"]["image"] is None and score["image_source"] is None
    assert set(score["weights_used"]) == {"completeness", "link"}
    assert score["parts"]["completeness"]["value"] == pytest.approx(2 / 6, abs=1e-4)
    automatic = qc_record.SessionQc("qc_results", qc.completeness, {"gain": {"score": 5.0}, "tgc": None}, qc.link)
    assert session_score(automatic)["image_source"] == "qc" and session_score(automatic)["parts"]["image"]["value"] == 1
    assert session_score(qc_record.NO_QC)["total"] is None


# ---- QC from a timeline -----------------------------------------------------------------------------------------


def test_link_quality_counts_the_experts_pages_only() -> None:
    qc = session([*thyroid_events(), link(1.0, 2.0, 900.0, 0.5, peer="p-sono")])  # the sonographer's page: left out
    assert qc.source == "timeline" and qc.link is not None
    assert qc.link.seconds == 3 and qc.link.streams == 1 and 0.2 < (qc.link.freeze_ratio or 0) <= 1 / 3
    assert qc.link.loss_pct == pytest.approx(1.0) and qc.link.rtt_p95_ms == pytest.approx(372)
    [(start, end)] = qc.freezes  # the 200 ms gaps of the second with 5 frames, merged into one span
    assert start == 1.0 and 1.6 <= end <= 2.0
    worse = session([*thyroid_events(), link(4.0, 0.0, 900.0, 0.2)])
    assert worse.link is not None and (worse.link.value or 0) < (qc.link.value or 0)


def test_alerts_and_the_thyroid_checklist_come_from_the_timeline() -> None:
    qc = session()
    assert [(a.code, a.raised_at, a.cleared_at) for a in qc.alerts] == [("gain_saturation", 1.8, 2.2)]
    assert qc.completeness is not None and qc.completeness.protocol == "thyroid"
    done = [i.key for i in qc.completeness.items if i.done]
    assert done == ["right_transverse", "right_longitudinal"]
    assert qc_record.completeness("abdomen", []) is None


# ---- through the app -----------------------------------------------------------------------------------------------


async def test_a_trainer_saves_replaces_and_reads_back_a_review(people: Any) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    edge = await open_api(bearer=world.device_a_credential)
    recording = await record_session(sono, expert, edge)
    rid = recording["id"]

    status, error = await trainer.get(f"/api/v1/recordings/{rid}/review")
    assert status == 404 and error["error"] == "not_found"
    status, saved = await put(trainer, f"/api/v1/recordings/{rid}/review", review_body(4))
    assert status == 201, saved
    assert saved["trainer"]["name"] == "Trainer" and saved["sonographer"]["id"] == world.users["sono_a"]
    assert saved["osaus"]["indication"] == 4 and saved["image_quality"]["colour_doppler"] is None
    assert saved["comments"] == [{"t": 1.5, "text": "Good arrow placement"}, {"t": None, "text": "A tidy exam"}]
    score = saved["score"]
    assert score["weights"] == reviews.WEIGHTS and score["osaus_mean"] == 4 and score["overall"] == 4
    assert score["parts"]["completeness"]["value"] == pytest.approx(2 / 6, abs=1e-4)
    assert score["parts"]["link"]["value"] is not None and score["image_source"] == "trainer"
    assert score["parts"]["osaus"]["value"] == 0.75 and 0 < score["total"] < 1

    status, replaced = await put(trainer, f"/api/v1/recordings/{rid}/review", review_body(5, comments=[]))
    assert status == 200 and replaced["id"] == saved["id"] and replaced["comments"] == []
    assert replaced["score"]["total"] > score["total"] and replaced["created_at"] == saved["created_at"]
    status, mine = await trainer.get(f"/api/v1/recordings/{rid}/review")
    assert status == 200 and mine["osaus"]["systematic_examination"] == 5

    # an admin serves no site in the seed: a session's reviews are scoped like the recording itself
    for username, sees in (("trainer", True), ("expert", True), ("admin", False), ("sono_a", True), ("sono_b", False)):
        api = await open_api(username)
        status, listed = await api.get(f"/api/v1/recordings/{rid}/reviews")
        assert (status, len(listed.get("reviews", []))) == ((200, 1) if sees else (404, 0)), username
        status, by_person = await api.get(f"/api/v1/reviews?sonographer={world.users['sono_a']}")
        assert status == 200 and [r["id"] for r in by_person["reviews"]] == ([saved["id"]] if sees else []), username
    _, other_site = await trainer.get("/api/v1/reviews?site=river")
    assert other_site["reviews"] == []


async def test_only_a_trainer_saves_and_refusals_carry_stable_codes(people: Any) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    recording = await record_session(sono, expert, await open_api(bearer=world.device_a_credential))
    rid = recording["id"]
    for api in (expert, sono, await open_api("admin")):
        status, error = await put(api, f"/api/v1/recordings/{rid}/review", review_body())
        assert (status, error["error"]) == (403, "forbidden")
    status, error = await put(trainer, f"/api/v1/recordings/{rid}/review",
                              review_body(comments=[{"t": 4.5, "text": "past the end"}]))
    assert (status, error["error"], error["field"]) == (400, "invalid_review", "comments[0].t")
    assert "after the end of the recording" in error["message"]
    status, error = await put(trainer, "/api/v1/recordings/nope/review", review_body())
    assert (status, error["error"]) == (404, "not_found")
    status, listed = await trainer.get(f"/api/v1/recordings/{rid}/reviews")
    assert listed["reviews"] == []  # nothing was saved by the refusals


async def test_session_qc_from_the_timeline_then_from_the_qc_package(people: Any) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    recording = await record_session(sono, expert, await open_api(bearer=world.device_a_credential))
    rid = recording["id"]
    status, qc = await trainer.get(f"/api/v1/recordings/{rid}/qc")
    assert status == 200 and qc["source"] == "timeline" and qc["image"] is None
    assert qc["completeness"]["value"] == pytest.approx(2 / 6, abs=1e-4) and len(qc["completeness"]["items"]) == 6
    assert qc["link"]["seconds"] == 3 and 0.2 < qc["link"]["freeze_ratio"] <= 1 / 3
    assert qc["alerts"] == [{"code": "gain_saturation", "text": "too much gain", "raised_at": 1.8, "cleared_at": 2.2}]
    assert len(qc["freezes"]) == 1 and qc["freezes"][0]["start"] == 1.0

    status, unreviewed = await trainer.get("/api/v1/qc/dashboard")
    assert unreviewed["sessions"][0]["image_source"] is None

    medians = {"saturation": 0.001, "dark_fraction": 0.1, "tgc_slope": 10.0, "dynamic_range": 200.0,
               "tenengrad": 2700.0, "laplacian_variance": 770.0}
    async with client.app[DB]() as db:  # what the qc package's offline scoring leaves (per-frame medians)
        db.add(QcResult(consultation_id=recording["consultation_id"], kind="offline",
                        metrics={"completeness": 0.9, "frames": {k: {"median": v} for k, v in medians.items()},
                                 "depth_mm": 40.0}))
        await db.commit()
    _, qc = await trainer.get(f"/api/v1/recordings/{rid}/qc")
    assert qc["source"] == "qc_results" and qc["completeness"]["value"] == 0.9 and qc["link"]["seconds"] == 3
    assert {k: v["score"] for k, v in qc["image"].items()} == dict.fromkeys(("gain", "tgc", "depth", "focus",
                                                                             "visibility"), 5)
    _, board = await trainer.get("/api/v1/qc/dashboard")
    assert board["sessions"][0]["image_source"] == "qc" and board["sessions"][0]["parts"]["image"] == 1
    status, saved = await put(trainer, f"/api/v1/recordings/{rid}/review", review_body(1))
    assert saved["score"]["parts"]["completeness"]["value"] == 0.9
    assert saved["score"]["image_source"] == "trainer" and saved["score"]["parts"]["image"]["value"] == 0

    status, error = await (await open_api("sono_b")).get(f"/api/v1/recordings/{rid}/qc")
    assert (status, error["error"]) == (404, "not_found")


async def test_the_scheme_lists_the_items_and_weights(people: Any) -> None:
    client, world, open_api = people
    status, scheme = await (await open_api("trainer")).get("/api/v1/reviews/scheme")
    assert status == 200 and [i["key"] for i in scheme["osaus"]] == list(OSAUS_ITEMS)
    assert [i["key"] for i in scheme["image_quality"]] == ["gain", "tgc", "depth", "colour_doppler",
                                                           "key_information", "overall"]
    assert scheme["weights"] == reviews.WEIGHTS and scheme["scale"] == [1, 5]


async def test_the_centres_weights_make_the_score(aiohttp_client: Any, db_url: str, tmp_path: Any) -> None:
    """TELEUS_QC_WEIGHTS: the scheme, every saved score and the dashboard use and show the configured weights."""
    weights = '{"osaus": 0.5, "link": 0}'
    async with people_of(aiohttp_client, db_url, tmp_path, qc_weights=weights) as (_, sono, expert, trainer, edge):
        wanted = {"completeness": 0.3, "image": 0.3, "link": 0.0, "osaus": 0.5}
        _, scheme = await trainer.get("/api/v1/reviews/scheme")
        assert scheme["weights"] == wanted
        recording = await record_session(sono, expert, edge)
        status, saved = await put(trainer, f"/api/v1/recordings/{recording['id']}/review", review_body(5))
        assert status == 201 and saved["score"]["weights"] == wanted
        assert saved["score"]["weights_used"] == {"completeness": 0.2727, "image": 0.2727, "link": 0.0, "osaus": 0.4545}
        _, board = await trainer.get("/api/v1/qc/dashboard")
        assert board["weights"] == wanted
    with pytest.raises(ValueError, match="no part 'luck'"):
        await make_app(db_url, tmp_path, qc_weights='{"luck": 1}')


def test_qc_moments_of_every_segment_are_on_the_session_clock() -> None:
    """Two segments, the second 5 s after the first on the wall clock: its alert and freeze land at 5 s + t."""

    def line(segment: int, started_ms: float, events: list[tl.Event]) -> tl.Timeline:
        return tl.Timeline(tl.Header("c1", started_ms, 320, 240, 30.0, segment=segment), tuple(events))

    first = line(0, 1_000_000.0, [tl.Qc(1.0, "frozen", "raised", "image frozen"), tl.Qc(2.0, "frozen", "cleared", ""),
                                  link(1.0, 30.0), link(2.0, 30.0), link(3.0, 30.0)])
    second = line(1, 1_005_000.0, [tl.Qc(0.5, "no_contact", "raised", "no contact"),
                                   link(1.0, 30.0), link(2.0, 5.0), link(3.0, 30.0)])
    qc = qc_record.from_timelines("thyroid", [second, first])  # any order in: segment order out
    assert segment_offsets([first, second]) == [0.0, 5.0]
    assert [(a.code, a.raised_at, a.cleared_at) for a in qc.alerts] == [("frozen", 1.0, 2.0), ("no_contact", 5.5, None)]
    assert len(qc.freezes) == 1 and 6.0 <= qc.freezes[0][0] < 7.0  # the second segment's frozen second
    assert qc.last_segment_offset == 5.0
    # a clock set back between two runs: the later segment never starts before the earlier one's last event
    assert segment_offsets([first, line(1, 999_000.0, [])]) == [0.0, 3.0]
