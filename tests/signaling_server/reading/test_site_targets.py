"""A site's own turnaround targets and its kind, set by an admin on the real app (SQLite and PostgreSQL): studies
examined afterwards are due by the site's targets, other sites keep the server's, bad targets are refused whole."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .studies import arrive


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def due_minutes(api: Any, study_id: str) -> float:
    status, study = await api.get(f"/api/v1/studies/{study_id}")
    assert status == 200, study
    return (_at(study["due_at"]) - _at(study["examined_at"])) / timedelta(minutes=1)


async def test_a_sites_own_targets_hold_for_its_studies_and_no_other(people: Any) -> None:
    client, world, open_api = people
    admin, expert = await open_api("admin"), await open_api("expert")
    status, site = await admin.post(
        f"/api/v1/sites/{world.site_a}/turnaround", {"turnaround": {"ct": {"routine": 45}, "CR": 20}}
    )
    assert status == 200, site
    assert site["turnaround"] == {"CT": {"routine": 45}, "CR": 20}

    north_ct = await arrive(client.app, world.site_a, "CT")
    north_stat_ct = await arrive(client.app, world.site_a, "CT", priority="STAT")
    north_cr = await arrive(client.app, world.site_a, "CR")
    river_ct = await arrive(client.app, world.site_b, "CT")
    assert await due_minutes(expert, north_ct) == 45
    assert await due_minutes(expert, north_stat_ct) == 30  # not overridden: the server's stat target
    assert await due_minutes(expert, north_cr) == 20
    assert await due_minutes(expert, river_ct) == 60

    # a priority change recomputes by the site's targets too
    status, _ = await expert.post(f"/api/v1/studies/{north_cr}/priority", {"priority": "stat"})
    assert status in (200, 204)
    assert await due_minutes(expert, north_cr) == 20

    status, site = await admin.post(f"/api/v1/sites/{world.site_a}/turnaround", {"turnaround": {}})
    assert status == 200 and site["turnaround"] == {}
    assert await due_minutes(expert, await arrive(client.app, world.site_a, "CT")) == 60


BAD_TARGETS = [
    None,
    [],
    {"CT": 0},
    {"CT": -5},
    {"CT": True},
    {"CT": {"soon": 10}},
    {"CT": {"routine": "45"}},
    {"C T": 30},
    {"CT": 100_000},
    {"CT": {"routine": 45}, "US": "x"},
]


async def test_bad_targets_are_refused_whole(people: Any) -> None:
    _, world, open_api = people
    admin = await open_api("admin")
    await admin.post(f"/api/v1/sites/{world.site_a}/turnaround", {"turnaround": {"US": 50}})
    for turnaround in BAD_TARGETS:
        status, answer = await admin.post(f"/api/v1/sites/{world.site_a}/turnaround", {"turnaround": turnaround})
        assert status == 400 and answer["error"] == "invalid_request", (turnaround, answer)
    _, listed = await admin.get("/api/v1/sites")
    [north] = [s for s in listed["sites"] if s["id"] == world.site_a]
    assert north["turnaround"] == {"US": 50}  # what was stored before is kept


async def test_a_sites_kind_and_who_may_set_settings(people: Any) -> None:
    _, world, open_api = people
    admin, expert = await open_api("admin"), await open_api("expert")
    status, made = await admin.post(
        "/api/v1/sites", {"code": "district-hospital", "name": "区人民医院", "kind": "hospital"}
    )
    assert status == 201 and made["kind"] == "hospital"
    status, answer = await admin.post("/api/v1/sites", {"code": "x1", "name": "X", "kind": "clinic"})
    assert status == 400 and answer["error"] == "invalid_request"
    status, site = await admin.post(f"/api/v1/sites/{world.site_b}/kind", {"kind": "regional"})
    assert status == 200 and site["kind"] == "regional"
    for path, body in ((f"/api/v1/sites/{world.site_b}/kind", {"kind": "community"}),
                       (f"/api/v1/sites/{world.site_b}/turnaround", {"turnaround": {"CT": 30}})):  # fmt: skip
        status, answer = await expert.post(path, body)
        assert status == 403 and answer["error"] == "forbidden"
    status, answer = await admin.post("/api/v1/sites/nope/kind", {"kind": "community"})
    assert status == 404 and answer["error"] == "not_found"
