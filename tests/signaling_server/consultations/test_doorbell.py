"""The edge device's long poll (consultations/doorbell.py and `GET /api/v1/devices/me/consultations?since&wait`):
the doorbell on its own, then the real app on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from signaling_server.consultations.doorbell import DOORBELL, Doorbell
from tests.conftest import THYROID_REQUEST, Api, seed
from tests.servers import two_apps
from tests.waiting import eventually

MINE = "/api/v1/devices/me/consultations"


async def test_a_ring_wakes_the_devices_waiters_only() -> None:
    bell = Doorbell()
    mine, other = bell.ticket("dev-a"), bell.ticket("dev-b")
    waiting = asyncio.create_task(mine.wait(30))
    bell.ring("dev-a")
    assert await waiting is True
    assert bell.waiting("dev-a") == 0 and bell.waiting("dev-b") == 1
    assert await other.wait(0.01) is False  # nobody rang b: the wait runs out
    assert bell.waiting() == 0


async def test_a_ring_between_the_read_and_the_wait_is_not_missed() -> None:
    bell = Doorbell()
    ticket = bell.ticket("dev-a")  # taken before the list is read
    bell.ring("dev-a")  # the list changes while the request is still reading it
    assert await ticket.wait(30) is True


async def test_closing_answers_every_waiter_and_every_later_one() -> None:
    bell = Doorbell()
    waits = [asyncio.create_task(bell.ticket(d).wait(30)) for d in ("a", "b", "b")]
    bell.close()
    assert await asyncio.gather(*waits) == [True, True, True]
    assert await bell.ticket("c").wait(30) is True


async def test_a_waiting_device_hears_of_a_new_consultation_at_once(people: Any) -> None:
    client, world, open_api = people
    device = await open_api(bearer=world.device_a_credential)
    status, first = await device.get(MINE)
    assert status == 200 and first["consultations"] == [] and first["version"]
    held = asyncio.create_task(device.get(f"{MINE}?since={first['version']}&wait=30"))
    bell = client.app[DOORBELL]
    await eventually(lambda: bell.waiting(world.device_a) == 1, what="the device's question held by the server")
    assert not held.done()
    sono = await open_api("sono_a")
    status, made = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    assert status == 201
    status, answer = await asyncio.wait_for(held, 30)
    assert status == 200
    assert [c["id"] for c in answer["consultations"]] == [made["id"]]
    assert answer["version"] != first["version"]
    # A version the device does not have yet is answered at once, without waiting.
    status, again = await asyncio.wait_for(device.get(f"{MINE}?since={first['version']}&wait=30"), 30)
    assert status == 200 and again["version"] == answer["version"]
    # Cancelling rings too: the waiting device learns the consultation is gone.
    held = asyncio.create_task(device.get(f"{MINE}?since={answer['version']}&wait=30"))
    await eventually(lambda: bell.waiting(world.device_a) == 1, what="held again")
    assert (await sono.post(f"/api/v1/consultations/{made['id']}/cancel"))[0] == 200
    status, gone = await asyncio.wait_for(held, 30)
    assert status == 200 and gone["consultations"] == []


async def test_another_sites_consultation_does_not_answer_the_wait(people: Any) -> None:
    client, world, open_api = people
    device = await open_api(bearer=world.device_a_credential)
    _, first = await device.get(MINE)
    status, answer = await device.get(f"{MINE}?since={first['version']}&wait=0.2")  # nothing changes: the wait ends
    assert status == 200 and answer == first
    river = await open_api("sono_b")
    held = asyncio.create_task(device.get(f"{MINE}?since={first['version']}&wait=30"))
    bell = client.app[DOORBELL]
    await eventually(lambda: bell.waiting(world.device_a) == 1, what="held")
    assert (await river.post("/api/v1/consultations", THYROID_REQUEST))[0] == 201  # rings river's device, not ours
    assert bell.waiting(world.device_a) == 1 and not held.done()
    bell.ring(world.device_a)  # a ring with nothing new (as after a restart): the same list, the same version
    status, answer = await asyncio.wait_for(held, 30)
    assert status == 200 and answer == first


async def test_a_device_revoked_while_waiting_is_refused(people: Any) -> None:
    client, world, open_api = people
    device = await open_api(bearer=world.device_a_credential)
    _, first = await device.get(MINE)
    held = asyncio.create_task(device.get(f"{MINE}?since={first['version']}&wait=30"))
    await eventually(lambda: client.app[DOORBELL].waiting(world.device_a) == 1, what="held")
    admin = await open_api("admin")
    assert (await admin.post(f"/api/v1/devices/{world.device_a}/revoke"))[0] == 200
    status, refused = await asyncio.wait_for(held, 30)
    assert status == 401 and refused["error"] == "device_revoked"


async def test_a_bad_wait_is_refused(people: Any) -> None:
    _, world, open_api = people
    device = await open_api(bearer=world.device_a_credential)
    for wait in ("abc", "-1", "31", "nan", "inf", ""):
        status, err = await device.get(f"{MINE}?since=x&wait={wait}")
        assert status == 400 and err["error"] == "invalid_request", (wait, err)
        assert "'wait'" in err["message"]


@pytest.mark.postgres
async def test_a_device_waiting_on_one_server_hears_of_a_request_made_on_another(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    async with two_apps(aiohttp_client, tmp_path) as (a, b):
        world = await seed(a.app)
        device, sono = Api(a, world.device_a_credential), Api(b, None)
        try:
            _, first = await device.get(MINE)
            held = asyncio.create_task(device.get(f"{MINE}?since={first['version']}&wait=30"))  # waiting on A
            await eventually(lambda: a.app[DOORBELL].waiting(world.device_a) == 1, what="held on A")
            await sono.login("sono_a")
            status, made = await sono.post("/api/v1/consultations", THYROID_REQUEST)  # requested on B
            assert status == 201
            status, answer = await asyncio.wait_for(held, 30)
            assert status == 200 and [c["id"] for c in answer["consultations"]] == [made["id"]]
        finally:
            await device.close()
            await sono.close()
