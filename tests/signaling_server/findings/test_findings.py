"""Critical findings through the real app: flag while holding the lock, notify the site, acknowledge, escalate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from signaling_server.app import create_app
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
