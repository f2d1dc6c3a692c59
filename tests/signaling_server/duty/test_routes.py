"""The on-duty roster over REST on the real app (SQLite and PostgreSQL): who may keep it, who is on duty now,
refusals with their codes, and the `duty` notice every console hears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Api
from tests.signaling_server.events.test_stream import stream


def at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def delete(api: Api, path: str) -> int:
    async with api.session.delete(api.base + path, headers=api._headers()) as response:
        return response.status


async def test_an_admin_puts_an_expert_on_duty_and_everyone_sees_who_is(people: Any) -> None:
    _, world, open_api = people
    admin, expert, sono = await open_api("admin"), await open_api("expert"), await open_api("sono_a")
    status, shift = await admin.post(
        "/api/v1/duty", {"user_id": world.users["expert"], "starts_at": at(-1), "ends_at": at(11), "note": "白班"}
    )
    assert status == 201, shift
    assert shift["user"] == {"id": world.users["expert"], "name": "Expert"} and shift["note"] == "白班"
    later = (await admin.post("/api/v1/duty", {"user_id": world.users["expert2"], "starts_at": at(12),
                                               "ends_at": at(24)}))[1]  # fmt: skip

    status, now = await expert.get("/api/v1/duty/now")
    assert status == 200
    assert [row["user"]["id"] for row in now["on_duty"]] == [world.users["expert"]]
    assert now["me"]["on_duty"] is True and now["me"]["until"] == shift["ends_at"]
    assert (await (await open_api("expert2")).get("/api/v1/duty/now"))[1]["me"] == {"on_duty": False, "until": None}

    # a sonographer sees who will answer a request from their site: experts on duty who serve it
    status, for_north = await sono.get(f"/api/v1/duty/now?site_id={world.site_a}")
    assert status == 200 and [row["user"]["name"] for row in for_north["on_duty"]] == ["Expert"]

    status, week = await sono.get("/api/v1/duty")
    assert status == 200 and [s["id"] for s in week["shifts"]] == [shift["id"], later["id"]]

    assert await delete(admin, f"/api/v1/duty/{shift['id']}") == 204
    assert (await expert.get("/api/v1/duty/now"))[1]["me"]["on_duty"] is False
    assert await delete(admin, f"/api/v1/duty/{shift['id']}") == 404


async def test_an_expert_who_does_not_serve_the_site_is_not_named_for_it(people: Any) -> None:
    _, world, open_api = people
    admin = await open_api("admin")
    await admin.post("/api/v1/duty", {"user_id": world.users["expert2"], "starts_at": at(-1), "ends_at": at(1)})
    assert await delete(admin, f"/api/v1/users/{world.users['expert2']}/sites/{world.site_b}") == 204
    sono_b = await open_api("sono_b")
    assert (await sono_b.get(f"/api/v1/duty/now?site_id={world.site_b}"))[1]["on_duty"] == []
    named = (await sono_b.get(f"/api/v1/duty/now?site_id={world.site_a}"))[1]["on_duty"]
    assert [row["user"]["id"] for row in named] == [world.users["expert2"]]


BAD_SHIFTS = [
    ({"starts_at": "2026-12-07T08:00:00", "ends_at": "2026-12-07T20:00:00+08:00"}, "time zone"),
    ({"starts_at": "tomorrow", "ends_at": "2026-12-07T20:00:00+08:00"}, "ISO 8601"),
    ({"starts_at": "2026-12-07T20:00:00+08:00", "ends_at": "2026-12-07T08:00:00+08:00"}, "after"),
    ({"starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-20T08:00:00+08:00"}, "at most 7 days"),
    ({"starts_at": "2020-01-01T08:00:00+08:00", "ends_at": "2020-01-01T20:00:00+08:00"}, "past"),
    ({"user": "sono_a"}, "only experts"),
    ({"user_id": "nobody"}, "no such active user"),
    ({"note": "x" * 201}, "longer than 200"),
]


async def test_a_bad_shift_is_refused_with_its_code_and_nothing_is_stored(people: Any) -> None:
    _, world, open_api = people
    admin = await open_api("admin")
    for shift, says in BAD_SHIFTS:
        body: dict[str, Any] = {"user_id": world.users["expert"], "starts_at": at(1), "ends_at": at(5), **shift}
        if "user" in body:
            body["user_id"] = world.users[body.pop("user")]
        status, answer = await admin.post("/api/v1/duty", body)
        assert status == 400 and answer["error"] == "invalid_request" and says in answer["message"], (shift, answer)
    for window in (
        "",
        "?from=2026-11-30T00:00:00Z&to=2027-01-30T00:00:00Z",
        "?from=2019-12-15T00:00Z&to=2020-01-15T00:00Z",
    ):
        status, listed = await admin.get("/api/v1/duty" + window)
        assert status == 200 and listed["shifts"] == []


async def test_a_bad_window_is_refused(people: Any) -> None:
    _, _, open_api = people
    expert = await open_api("expert")
    for window in (
        "?from=2026-12-01T00:00Z&to=2026-11-01T00:00Z",
        "?from=2026-01-01T00:00Z&to=2026-12-01T00:00Z",
        "?from=yesterday",
    ):
        status, answer = await expert.get("/api/v1/duty" + window)
        assert status == 400 and answer["error"] == "invalid_request", window


async def test_only_an_admin_keeps_the_roster(people: Any) -> None:
    _, world, open_api = people
    expert = await open_api("expert")
    status, answer = await expert.post(
        "/api/v1/duty", {"user_id": world.users["expert"], "starts_at": at(0), "ends_at": at(8)}
    )
    assert status == 403 and answer["error"] == "forbidden"
    anonymous = await open_api()
    assert (await anonymous.get("/api/v1/duty/now"))[0] == 401


async def test_a_roster_change_is_told_to_every_console(people: Any) -> None:
    _, world, open_api = people
    admin, sono = await open_api("admin"), await open_api("sono_b")
    async with stream(sono) as events:
        await admin.post("/api/v1/duty", {"user_id": world.users["expert"], "starts_at": at(0), "ends_at": at(8)})
        notice = await events.notice()
    assert notice["topic"] == "duty"
