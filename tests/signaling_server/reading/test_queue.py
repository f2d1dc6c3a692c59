"""The reading queue through the real app on SQLite and PostgreSQL: clocks, order, filters, visibility, locks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.models import Study
from signaling_server.reading.service import now
from signaling_server.settings import Settings
from tests.conftest import Api, seed
from tests.waiting import eventually

from .studies import arrive


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_arriving_images_start_the_turnaround_clock_per_modality(people: Any) -> None:
    client, world, open_api = people
    cr = await arrive(client.app, world.site_a, "CR")
    ct = await arrive(client.app, world.site_a, "CT")
    stat = await arrive(client.app, world.site_a, "CT", priority="STAT")
    api = await open_api("expert")
    for study_id, minutes in ((cr, 30), (ct, 60), (stat, 30)):
        status, study = await api.get(f"/api/v1/studies/{study_id}")
        assert status == 200
        assert study["state"] == "matched"
        due = _at(study["due_at"]) - _at(study["examined_at"])
        assert due == timedelta(minutes=minutes), study
        assert 0 < study["seconds_left"] <= minutes * 60
        assert study["overdue"] is False


async def test_queue_orders_by_priority_then_deadline_and_filters(people: Any) -> None:
    client, world, open_api = people
    routine_early = await arrive(client.app, world.site_a, "CR", at=now() - timedelta(minutes=20))
    routine_late = await arrive(client.app, world.site_b, "CT")
    urgent = await arrive(client.app, world.site_b, "CR", priority="HIGH")
    stat = await arrive(client.app, world.site_a, "CT", priority="STAT")
    api = await open_api("expert")
    status, data = await api.get("/api/v1/studies")
    assert status == 200
    assert [s["id"] for s in data["studies"]] == [stat, urgent, routine_early, routine_late]
    assert data["counts"] == {"open": 4, "overdue": 0}

    _, data = await api.get("/api/v1/studies?modality=CT")
    assert {s["id"] for s in data["studies"]} == {routine_late, stat}
    _, data = await api.get("/api/v1/studies?site=river&priority=urgent,routine")
    assert [s["id"] for s in data["studies"]] == [urgent, routine_late]
    _, data = await api.get("/api/v1/studies?state=registered")
    assert data["studies"] == []

    status, error = await api.get("/api/v1/studies?modality=XX")
    assert status == 400 and error["error"] == "invalid_request" and "modality" in error["message"]


async def test_overdue_studies_are_flagged_and_counted(people: Any) -> None:
    client, world, open_api = people
    late = await arrive(client.app, world.site_a, "CR", at=now() - timedelta(minutes=31))
    await arrive(client.app, world.site_a, "CT", at=now() - timedelta(minutes=31))
    api = await open_api("expert")
    _, data = await api.get("/api/v1/studies?overdue=1")
    assert [s["id"] for s in data["studies"]] == [late]
    assert data["studies"][0]["overdue"] is True and data["studies"][0]["seconds_left"] < 0
    assert data["counts"]["overdue"] == 1


async def test_a_sonographer_sees_only_their_own_sites_studies(people: Any) -> None:
    client, world, open_api = people
    mine = await arrive(client.app, world.site_a, "CR")
    theirs = await arrive(client.app, world.site_b, "CR")
    api = await open_api("sono_a")
    _, data = await api.get("/api/v1/studies")
    assert [s["id"] for s in data["studies"]] == [mine]
    status, error = await api.get(f"/api/v1/studies/{theirs}")
    assert status == 404 and error["error"] == "not_found"
    status, error = await api.post(f"/api/v1/studies/{mine}/claim")
    assert status == 403 and error["error"] == "forbidden"


async def test_only_the_lock_holder_releases_and_the_other_reader_is_told_who_holds_it(people: Any) -> None:
    client, world, open_api = people
    study = await arrive(client.app, world.site_a, "CR")
    first, second = await open_api("expert"), await open_api("expert2")
    status, data = await first.post(f"/api/v1/studies/{study}/claim")
    assert status == 200 and data["lock"]["holder"]["name"] == "Expert"
    status, error = await second.post(f"/api/v1/studies/{study}/claim")
    assert status == 409 and error["error"] == "study_locked" and "Expert" in error["message"]
    status, error = await second.post(f"/api/v1/studies/{study}/release")
    assert status == 409 and error["error"] == "not_lock_holder"
    status, data = await first.post(f"/api/v1/studies/{study}/claim")  # renewing is allowed
    assert status == 200
    status, data = await first.post(f"/api/v1/studies/{study}/release")
    assert status == 200 and data["lock"] is None
    status, data = await second.post(f"/api/v1/studies/{study}/claim")
    assert status == 200 and data["lock"]["holder"]["name"] == "Expert2"


async def test_two_readers_claiming_at_the_same_moment_exactly_one_wins(people: Any) -> None:
    client, world, open_api = people
    readers = [await open_api("expert"), await open_api("expert2")]
    for _ in range(5):
        study = await arrive(client.app, world.site_a, "CT")
        results = await asyncio.gather(*(r.post(f"/api/v1/studies/{study}/claim") for r in readers))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409], results
        loser = next(body for status, body in results if status == 409)
        assert loser["error"] == "study_locked"
        async with client.app[DB]() as db:
            row = await db.get(Study, study)
            assert row is not None and row.lock_holder_id is not None


async def test_an_abandoned_lock_expires_and_another_reader_can_claim(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url, lock_minutes=0.02))  # 1.2 s
    client = await aiohttp_client(app)
    world = await seed(app)
    study = await arrive(app, world.site_a, "CR")
    first, second = Api(client), Api(client)
    await first.login("expert")
    await second.login("expert2")
    assert (await first.post(f"/api/v1/studies/{study}/claim"))[0] == 200
    assert (await second.post(f"/api/v1/studies/{study}/claim"))[0] == 409

    async def unlocked() -> bool:  # the first reader's browser is gone: no renewal, the lease runs out
        _, data = await second.get(f"/api/v1/studies/{study}")
        return data["lock"] is None

    await eventually(unlocked, what="the lease to run out")
    status, data = await second.post(f"/api/v1/studies/{study}/claim")
    assert status == 200 and data["lock"]["holder"]["name"] == "Expert2"
    status, error = await first.post(f"/api/v1/studies/{study}/release")
    assert status == 409 and error["error"] == "not_lock_holder"
    await first.close()
    await second.close()


async def test_a_registered_order_starts_its_clock_when_its_images_arrive(people: Any) -> None:
    client, world, open_api = people
    sono = await open_api("sono_a")
    order = {
        "patient": {"id": "H-77", "name": "Wang^Fang", "sex": "F", "birth_date": "1961-04-02"},
        "accession": "ACC77",
        "modality": "CT",
        "priority": "urgent",
    }
    status, study = await sono.post("/api/v1/studies", order)
    assert status == 201, study
    assert study["state"] == "registered" and study["due_at"] is None and study["priority"] == "urgent"
    status, error = await sono.post("/api/v1/studies", {**order, "modality": "ZZ"})
    assert status == 400 and "modality" in error["message"]

    await arrive(client.app, world.site_a, "CT", study_uid=study["study_uid"])
    expert = await open_api("expert")
    _, data = await expert.get(f"/api/v1/studies/{study['id']}")
    assert data["state"] == "matched"
    assert _at(data["due_at"]) - _at(data["examined_at"]) == timedelta(minutes=60)
