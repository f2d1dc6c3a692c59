"""signaling_server.quality.dashboard: the filters and the per-metric values, then GET /api/v1/qc/dashboard with the
real app on SQLite and PostgreSQL over sessions of two sites, recorded days apart, some reviewed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event

from qc.score import OSAUS_ITEMS
from recordings import qc_record
from recordings import timeline as tl
from signaling_server import errors
from signaling_server.appkeys import DB, ENGINE
from signaling_server.db.models import Consultation, QcResult, Recording, TrainerReview
from signaling_server.quality import dashboard
from tests.recordings.sessions import link, record_session, review_body, score, timeline_bytes
from tests.signaling_server.training.test_reviews import put

DAY = dt.timedelta(days=1)


def test_dates_are_whole_days_and_times_need_a_zone() -> None:
    assert dashboard.parse_time("2025-03-01", "from") == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert dashboard.parse_time("2025-03-01", "to", end=True) == dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    assert dashboard.parse_time("2025-03-01T08:00:00+08:00", "from") == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert dashboard.parse_time("", "from") is None
    for bad in ("2025-13-01", "yesterday", "2025-03-01T08:00:00"):
        with pytest.raises(errors.InvalidRequest):
            dashboard.parse_time(bad, "from")
    with pytest.raises(errors.InvalidRequest, match="after"):
        dashboard.parse_filters({"from": "2025-03-02", "to": "2025-03-01"})


def test_metric_values_are_on_their_charts_scale() -> None:
    row: dict[str, Any] = {
        "score": 0.7125, "completeness": 0.4, "osaus": 3.5, "image_quality": {"gain": 4.0, "overall": None},
        "link": {"value": 0.5, "freeze_ratio": 0.25, "rtt_p95_ms": 120.0, "loss_pct": None},
    }
    got = {key: dashboard.metric_value(row, key) for key, _, _ in dashboard.METRICS}
    assert got["score"] == 71.25 and got["completeness"] == 40 and got["osaus"] == 3.5
    assert got["image_quality.gain"] == 4 and got["image_quality.overall"] is None
    assert got["link.value"] == 50 and got["link.freeze_ratio"] == 25 and got["link.rtt_p95_ms"] == 120
    assert got["link.loss_pct"] is None


def steady(seconds: int = 3) -> list[tl.Event]:
    """A session with a perfect link and no captures."""
    return [tl.Join(0.0, "p-expert", "expert", "Expert"), *(link(t, 30.0, 50.0, 0.0) for t in range(1, seconds + 1))]


async def backdate(app: Any, rid: str, days: int) -> None:
    async with app[DB]() as db:
        recording = await db.get(Recording, rid)
        assert recording is not None
        recording.started_at -= days * DAY
        await db.commit()


async def test_sessions_and_series_over_time_per_site_and_sonographer(people: Any) -> None:
    client, world, open_api = people
    sono_a, sono_b, expert = await open_api("sono_a"), await open_api("sono_b"), await open_api("expert")
    trainer = await open_api("trainer")
    edge_a = await open_api(bearer=world.device_a_credential)
    edge_b = await open_api(bearer=world.device_b_credential)
    old = await record_session(sono_a, expert, edge_a)  # thyroid with two stills and a frozen second
    middle = await record_session(sono_a, expert, edge_a, events=steady())
    other = await record_session(sono_b, expert, edge_b, events=steady())
    await score(client.app, old["id"], middle["id"], other["id"])  # the dashboard reads the stored QC records
    await backdate(client.app, old["id"], 10)
    await backdate(client.app, middle["id"], 5)
    await put(trainer, f"/api/v1/recordings/{old['id']}/review", review_body(2))
    await put(trainer, f"/api/v1/recordings/{middle['id']}/review", review_body(5))

    status, board = await trainer.get("/api/v1/qc/dashboard")
    assert status == 200, board
    sessions = board["sessions"]
    assert [s["recording_id"] for s in sessions] == [old["id"], middle["id"], other["id"]]  # oldest first
    assert [s["reviews"] for s in sessions] == [1, 1, 0]
    assert sessions[0]["osaus"] == 2 and sessions[0]["completeness"] == pytest.approx(1 / 3, abs=1e-4)
    assert sessions[0]["link"]["seconds"] == 3 and sessions[0]["image_source"] == "trainer"
    assert all(s["qc_source"] == "qc_results" for s in sessions)
    unreviewed = sessions[2]  # scored from its QC alone: a perfect link, nothing of the protocol captured
    assert unreviewed["osaus"] is None and unreviewed["link"]["value"] == 1 and unreviewed["completeness"] == 0
    weights, parts = board["weights"], unreviewed["parts"]
    assert parts["completeness"] == 0 and parts["link"] == 1 and parts["osaus"] is None
    assert unreviewed["image_source"] == "qc" and 0 <= parts["image"] <= 1  # the video's automatic image items
    used = weights["link"] + weights["completeness"] + weights["image"]
    expected = (weights["link"] + weights["image"] * parts["image"]) / used
    assert unreviewed["score"] == pytest.approx(expected, abs=1e-3)
    assert sessions[1]["score"] > sessions[0]["score"]
    series = board["series"]
    assert [p["recording_id"] for p in series["score"]] == [s["recording_id"] for s in sessions]
    assert [p["recording_id"] for p in series["osaus"]] == [old["id"], middle["id"]]  # only reviewed sessions
    assert [p["value"] for p in series["image_quality.gain"]] == [2, 5]
    assert 20 < series["link.freeze_ratio"][0]["value"] <= 33.34
    assert series["score"][0]["value"] == round(100 * sessions[0]["score"], 2)
    assert {s["name"] for s in board["sonographers"]} == {"Sono A", "Sono B"} and len(board["sites"]) == 2
    assert board["weights"]["osaus"] > 0 and board["metrics"][0] == {"key": "score", "label": "Session score (%)",
                                                                     "range": [0, 100]}

    _, by_site = await trainer.get("/api/v1/qc/dashboard?site=river")
    assert [s["recording_id"] for s in by_site["sessions"]] == [other["id"]]
    _, by_person = await trainer.get(f"/api/v1/qc/dashboard?sonographer={world.users['sono_a']}")
    assert [s["recording_id"] for s in by_person["sessions"]] == [old["id"], middle["id"]]
    today = dt.datetime.now(dt.UTC).date()
    _, recent = await trainer.get(f"/api/v1/qc/dashboard?from={today - 6 * DAY}&to={today}")
    assert [s["recording_id"] for s in recent["sessions"]] == [middle["id"], other["id"]]
    assert recent["filters"]["from"] == f"{today - 6 * DAY}T00:00:00Z"
    _, before = await trainer.get(f"/api/v1/qc/dashboard?to={today - 7 * DAY}")
    assert [s["recording_id"] for s in before["sessions"]] == [old["id"]]

    status, error = await trainer.get("/api/v1/qc/dashboard?from=soon")
    assert (status, error["error"]) == (400, "invalid_request")
    _, own = await sono_b.get("/api/v1/qc/dashboard")  # a sonographer sees their own sessions only
    assert [s["recording_id"] for s in own["sessions"]] == [other["id"]]
    status, error = await edge_a.get("/api/v1/qc/dashboard")
    assert (status, error["error"]) == (403, "forbidden")


async def test_the_dashboard_asks_the_same_few_queries_for_any_number_of_sessions(people: Any) -> None:
    """Stored rows only: the statements one dashboard request runs do not grow with its sessions (counted on the
    engine), and no timeline is read (the sessions here have no files at all)."""
    client, world, open_api = people
    trainer = await open_api("trainer")
    app = client.app
    record = qc_record.record_metrics(
        qc_record.from_timelines("thyroid", [tl.decode_timeline(timeline_bytes("c", steady()))]), {}, 0.5
    )
    statements: list[str] = []

    def counted(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "audit_events" not in statement and "advisory" not in statement:  # the audit row: a fixed cost per request
            statements.append(statement)

    async def add_sessions(count: int, reviewed: bool) -> None:
        async with app[DB]() as db:
            for _ in range(count):
                consultation = Consultation(
                    state="ended", exam_type="thyroid", site_id=world.site_a, device_id=world.device_a,
                    patient_id="P1", patient_name="Doe^Jane", patient_sex="F", patient_birth_date="1970-05-01",
                    accession="A1", requested_by_id=world.users["sono_a"],
                )  # fmt: skip
                db.add(consultation)
                await db.flush()
                recording = Recording(consultation_id=consultation.id, site_id=world.site_a, state="complete",
                                      sonographer_id=world.users["sono_a"])  # fmt: skip
                db.add_all([recording, QcResult(consultation_id=consultation.id, kind="offline", metrics=record)])
                await db.flush()
                if reviewed:
                    db.add(TrainerReview(
                        recording_id=recording.id, trainer_id=world.users["trainer"],
                        sonographer_id=world.users["sono_a"], osaus=dict.fromkeys(OSAUS_ITEMS, 4),
                        image_quality=review_body(4)["image_quality"], comments=[], score={},
                    ))  # fmt: skip
            await db.commit()

    async def board_statements() -> tuple[int, dict[str, Any]]:
        engine = app[ENGINE].sync_engine
        statements.clear()
        event.listen(engine, "before_cursor_execute", counted)
        try:
            status, board = await trainer.get("/api/v1/qc/dashboard")
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        assert status == 200, board
        return len(statements), board

    await add_sessions(2, reviewed=True)
    few, board = await board_statements()
    assert len(board["sessions"]) == 2 and board["sessions"][0]["qc_source"] == "qc_results"
    assert board["sessions"][0]["completeness"] == 0 and board["sessions"][0]["link"]["value"] == 1
    await add_sessions(20, reviewed=True)
    await add_sessions(20, reviewed=False)
    many, board = await board_statements()
    assert len(board["sessions"]) == 42 and sum(s["reviews"] for s in board["sessions"]) == 22
    # the caller's session, the grants they hold, then recordings, reviews, people, QC records
    assert many == few <= 7, statements
