"""Critical findings through the real app: flag while holding the lock, notify the site, acknowledge, escalate."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.models import CriticalFinding
from signaling_server.findings import service, state
from signaling_server.settings import Settings
from tests.conftest import Api, seed
from tests.signaling_server.reading.studies import arrive
from tests.waiting import eventually


async def test_a_flagged_finding_reaches_the_referring_site_and_records_six_fields(people: Any) -> None:
    client, world, open_api = people
    study = await arrive(client.app, world.site_a, "CT")
    expert, other_reader = await open_api("expert"), await open_api("expert2")
    sono_a, sono_b = await open_api("sono_a"), await open_api("sono_b")

    status, error = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": "Tension pneumothorax"})
    assert status == 409 and error["error"] == "not_lock_holder"
    assert (await expert.post(f"/api/v1/studies/{study}/claim"))[0] == 200
    status, error = await other_reader.post(f"/api/v1/studies/{study}/findings", {"finding": "x"})
    assert status == 409 and error["error"] == "not_lock_holder"
    status, error = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": ""})
    assert status == 400 and "finding" in error["message"]

    status, finding = await expert.post(
        f"/api/v1/studies/{study}/findings", {"finding": "Tension pneumothorax, right", "method": "in-system"}
    )
    assert status == 201, finding
    _, seen = await sono_a.get("/api/v1/findings")
    assert [f["id"] for f in seen["findings"]] == [finding["id"]]
    _, unseen = await sono_b.get("/api/v1/findings")
    assert unseen["findings"] == []
    status, error = await sono_b.post(f"/api/v1/findings/{finding['id']}/acknowledge", {})
    assert status == 404

    status, acked = await sono_a.post(f"/api/v1/findings/{finding['id']}/acknowledge", {"notified_person": "Dr Li"})
    assert status == 200
    assert acked["finding"] == "Tension pneumothorax, right"
    assert acked["found_at"] and acked["reported_by"] == "Expert"
    assert acked["notified_person"] == "Dr Li" and acked["acknowledged_by"] == "Sono A"
    assert acked["acknowledged_at"] >= acked["found_at"] and acked["method"] == "in-system"
    status, error = await sono_a.post(f"/api/v1/findings/{finding['id']}/acknowledge", {})
    assert status == 409 and error["error"] == "invalid_transition"
    _, still_open = await sono_a.get("/api/v1/findings")
    assert still_open["findings"] == []
    _, on_study = await expert.get(f"/api/v1/studies/{study}/findings")
    assert [f["acknowledged_by"] for f in on_study["findings"]] == ["Sono A"]


async def test_an_unacknowledged_finding_escalates_until_acknowledged(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url, finding_escalation_minutes=0.01))  # 0.6 s
    client = await aiohttp_client(app)
    world = await seed(app)
    study = await arrive(app, world.site_a, "CR")
    expert, sono = Api(client), Api(client)
    await expert.login("expert")
    await sono.login("sono_a")
    await expert.post(f"/api/v1/studies/{study}/claim")
    _, finding = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": "Free air under the diaphragm"})
    assert finding["escalation_level"] == 0

    async def escalated() -> int:
        _, listed = await expert.get("/api/v1/findings")
        return int(listed["findings"][0]["escalation_level"])

    level = await eventually(escalated, what="the first escalation")
    _, acked = await sono.post(f"/api/v1/findings/{finding['id']}/acknowledge", {})
    assert acked["next_escalation_at"] is None and acked["escalation_level"] >= level
    await asyncio.sleep(1.2)  # two escalation periods: an acknowledged finding escalates no further
    _, everything = await expert.get("/api/v1/findings?state=all")
    after = everything["findings"][0]
    assert after["acknowledged_at"] and after["escalation_level"] == acked["escalation_level"]
    await expert.close()
    await sono.close()


async def test_an_escalation_never_lands_on_a_finding_being_acknowledged(people: Any, db_url: str) -> None:
    """The timer and an acknowledgement at the same moment (PostgreSQL, where they truly overlap): the timer skips the
    finding whose acknowledgement holds it, so the acknowledged finding is not raised a level after the fact."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: the second's stale snapshot fails and is retried")
    client, world, open_api = people
    study = await arrive(client.app, world.site_a, "CR")
    expert = await open_api("expert")
    await expert.post(f"/api/v1/studies/{study}/claim")
    _, flagged = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": "Free air under the diaphragm"})
    due = service.now() + timedelta(days=1)  # past any escalation time the app's settings give
    sessions = client.app[DB]
    async with sessions() as acknowledging:
        finding = await acknowledging.get(CriticalFinding, flagged["id"], with_for_update=True)  # as acknowledge()
        assert finding is not None
        async with sessions() as timer:
            escalated = await asyncio.wait_for(service.escalate_due(timer, timedelta(hours=1), due), 30)
        assert escalated == []
        state.acknowledge(finding, world.users["sono_a"], service.now(), acknowledging.add)
        await acknowledging.commit()
    async with sessions() as check:
        after = await check.get(CriticalFinding, flagged["id"])
        assert after is not None
        assert after.acknowledged_at is not None and after.escalation_level == 0 and after.next_escalation_at is None
    async with sessions() as timer:  # and once acknowledged, never again
        assert await service.escalate_due(timer, timedelta(hours=1), due) == []
