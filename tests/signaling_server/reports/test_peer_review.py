"""RADPEER peer review: the rules of a score (pure), then sample, submit and the per-reader summary through the real
app on SQLite and PostgreSQL, over reports drafted, signed and approved through the reports API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from signaling_server import errors
from signaling_server.reports import peer_review
from tests.conftest import Api, make_app, seed
from tests.signaling_server.reading.studies import arrive

SAMPLE_PATH = "/api/v1/peer-reviews/sample"


@pytest.fixture
async def readers(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, Any, Any]]:
    app = await make_app(db_url, tmp_path)
    client = await aiohttp_client(app)
    world = await seed(app)
    opened: list[Api] = []

    async def open_api(username: str) -> Api:
        api = Api(client)
        opened.append(api)
        await api.login(username)
        return api

    yield client, world, open_api
    for api in opened:
        await api.close()


async def final_report(app: web.Application, site: str, modality: str, author: Api, approver: Api) -> dict[str, Any]:
    """A study arrives, `author` claims it and signs a report, `approver` approves it: the final report's JSON."""
    study = await arrive(app, site, modality)
    status, _ = await author.post(f"/api/v1/studies/{study}/claim")
    assert status == 200
    content = {"findings": f"{modality}: no acute findings.", "impression": "Normal."}
    status, draft = await author.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": content})
    assert status == 201, draft
    status, _ = await author.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 200
    status, final = await approver.post(f"/api/v1/reports/{draft['id']}/approve")
    assert status == 200 and final["state"] == "final", final
    return dict(final)


# ---- the rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "category"),
    [
        ({"score": 1}, "1"),
        ({"score": 1, "significance": None, "comment": None}, "1"),
        ({"score": 2, "significance": "a"}, "2a"),
        ({"score": 2, "significance": "b", "comment": " missed rib fracture "}, "2b"),
        ({"score": 3, "significance": "a"}, "3a"),
        ({"score": 3, "significance": "b"}, "3b"),
    ],
)
def test_radpeer_categories(body: dict[str, Any], category: str) -> None:
    given = peer_review.parse(body)
    assert peer_review.category(given.score, given.significance) == category
    assert given.comment == (body.get("comment") or "").strip()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "score"),
        ({"score": 4}, "score"),
        ({"score": "1"}, "score"),
        ({"score": True}, "score"),
        ({"score": 1, "significance": "a"}, "significance"),
        ({"score": 2}, "significance"),
        ({"score": 3, "significance": "c"}, "significance"),
        ({"score": 1, "comment": 5}, "comment"),
        ({"score": 1, "comment": "x" * 2001}, "comment"),
    ],
)
def test_bad_scores_name_their_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidPeerReview) as caught:
        peer_review.parse(body)
    assert caught.value.as_json()["error"] == "invalid_peer_review" and caught.value.field == field


# ---- through the app -------------------------------------------------------------------------------------------


async def test_sample_submit_and_summary(readers: Any) -> None:
    client, world, open_api = readers
    expert, expert2, trainer = await open_api("expert"), await open_api("expert2"), await open_api("trainer")
    app = client.app
    by_expert = [await final_report(app, world.site_a, modality, expert, expert2) for modality in ("CR", "DX", "CT")]
    by_expert2 = await final_report(app, world.site_b, "CT", expert2, expert)
    ultrasound = await final_report(app, world.site_a, "US", expert, expert2)
    study = await arrive(app, world.site_a, "CT")  # a report still being written is not sampled
    await expert.post(f"/api/v1/studies/{study}/claim")
    _, draft = await expert.post(f"/api/v1/studies/{study}/reports",
                                 {"kind": "free_text", "content": {"findings": "x", "impression": "y"}})

    status, sample = await expert2.get(f"{SAMPLE_PATH}?n=20")
    assert status == 200
    assert {s["report"]["id"] for s in sample["reports"]} == {r["id"] for r in by_expert}  # not theirs, not US
    first = next(s for s in sample["reports"] if s["study"]["modality"] == "CT")
    assert first["report"]["author"]["name"] == "Expert" and first["report"]["content"]["impression"] == "Normal."
    assert first["study"]["site"]["code"] == "north" and first["study"]["study_uid"]
    _, small = await expert2.get(f"{SAMPLE_PATH}?n=2")
    assert len(small["reports"]) == 2
    _, mine = await expert.get(SAMPLE_PATH)
    assert [s["report"]["id"] for s in mine["reports"]] == [by_expert2["id"]]

    scores = [{"score": 1}, {"score": 2, "significance": "a", "comment": "subtle"}, {"score": 3, "significance": "b"}]
    for report, body in zip(by_expert, scores, strict=True):
        status, saved = await expert2.post(f"/api/v1/reports/{report['id']}/peer-reviews", body)
        assert status == 201, saved
        assert saved["reader"]["name"] == "Expert" and saved["reviewer"]["name"] == "Expert2"
    assert saved["category"] == "3b" and saved["modality"] in ("CR", "DX", "CT")
    status, saved = await expert.post(f"/api/v1/reports/{by_expert2['id']}/peer-reviews", {"score": 1})
    assert status == 201
    _, sample = await expert2.get(SAMPLE_PATH)
    assert sample["reports"] == []  # everything reviewed

    refusals = [
        (expert2, by_expert[0]["id"], {"score": 1}, 409, "already_reviewed"),
        (expert, by_expert[0]["id"], {"score": 1}, 403, "own_report"),
        (expert2, ultrasound["id"], {"score": 1}, 409, "not_reviewable"),
        (expert2, draft["id"], {"score": 1}, 409, "not_reviewable"),
        (expert2, "nope", {"score": 1}, 404, "not_found"),
        (trainer, by_expert[0]["id"], {"score": 1}, 403, "forbidden"),
        (expert, by_expert2["id"], {"score": 2}, 400, "invalid_peer_review"),
    ]
    for api, report_id, body, code, error in refusals:
        status, answer = await api.post(f"/api/v1/reports/{report_id}/peer-reviews", body)
        assert (status, answer["error"]) == (code, error), (report_id, body)
    status, answer = await trainer.get(SAMPLE_PATH)
    assert (status, answer["error"]) == (403, "forbidden")

    status, listed = await trainer.get(f"/api/v1/reports/{by_expert[1]['id']}/peer-reviews")
    assert status == 200 and [p["category"] for p in listed["peer_reviews"]] == ["2a"]
    assert listed["peer_reviews"][0]["comment"] == "subtle"

    status, summary = await trainer.get("/api/v1/peer-reviews/summary")
    assert status == 200 and summary["categories"] == ["1", "2a", "2b", "3a", "3b"]
    rows = {r["reader"]["name"]: r for r in summary["readers"]}
    assert rows["Expert"]["counts"] == {"1": 1, "2a": 1, "2b": 0, "3a": 0, "3b": 1}
    assert rows["Expert"]["total"] == 3 and rows["Expert"]["discrepancies"] == 2 and rows["Expert"]["significant"] == 1
    assert rows["Expert"]["discrepancy_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert rows["Expert2"]["counts"]["1"] == 1 and rows["Expert2"]["discrepancy_rate"] == 0
    assert [r["reader"]["name"] for r in summary["readers"]] == ["Expert", "Expert2"]  # most reviewed first
    _, later = await trainer.get("/api/v1/peer-reviews/summary?from=2999-01-01")
    assert later["readers"] == []
    status, answer = await trainer.get("/api/v1/peer-reviews/summary?to=tomorrow")
    assert (status, answer["error"]) == (400, "invalid_request")
    status, answer = await (await open_api("sono_a")).get("/api/v1/peer-reviews/summary")
    assert (status, answer["error"]) == (403, "forbidden")
