"""`GET /api/v1/events` (events/stream.py) on the real app: who hears which change, and across two servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from signaling_server.events import hub as hub_module
from signaling_server.events import stream as stream_route
from signaling_server.events.changes import CONSULTATIONS, Change
from signaling_server.events.hub import CHANGES
from tests.conftest import THYROID_REQUEST, Api, seed
from tests.servers import two_apps
from tests.signaling_server.dicomstore.objects import image
from tests.waiting import eventually

EVENTS = "/api/v1/events"


class Stream:
    """One open event stream, read line by line as a browser's EventSource would."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []
        self.fields: list[str] = []

    async def notice(self, timeout: float = 30) -> dict[str, Any]:
        """The next `data:` line's JSON (comments and other fields are kept aside)."""

        async def read() -> dict[str, Any]:
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("the stream ended")
                line = line.rstrip("\n")
                if line.startswith("data: "):
                    return dict(json.loads(line[len("data: ") :]))
                if line.startswith(":"):
                    self.comments.append(line)
                elif line:
                    self.fields.append(line)

        return await asyncio.wait_for(read(), timeout)


@asynccontextmanager
async def stream(api: Api) -> AsyncIterator[Stream]:
    async with api.session.get(api.base + EVENTS) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-store"
        yield Stream(response)


async def listening(client: Any, count: int) -> None:
    await eventually(lambda: client.app[CHANGES].listening() == count, what=f"{count} event streams open")


async def test_an_expert_hears_of_a_requested_consultation_and_refetches_it(people: Any) -> None:
    client, _, open_api = people
    expert, sono = await open_api("expert"), await open_api("sono_a")
    async with stream(expert) as events:
        await listening(client, 1)
        status, made = await sono.post("/api/v1/consultations", THYROID_REQUEST)
        assert status == 201
        notice = await events.notice()
        # no patient data: the changed consultation's id alone (the expert serves its site)
        assert notice == {"topic": "consultations", "version": notice["version"], "ids": [made["id"]]}
        assert notice["version"] >= 1
        assert events.fields[0].startswith("retry: ") and ": ready" in events.comments
        # what the page does on the notice: the named rows alone
        _, listed = await expert.get(f"/api/v1/consultations?state=requested,live&ids={made['id']}")
        assert [c["id"] for c in listed["consultations"]] == [made["id"]]
        assert (await sono.post(f"/api/v1/consultations/{made['id']}/cancel"))[0] == 200
        assert (await events.notice())["ids"] == [made["id"]]
        # the cancelled row is no longer open: the page's question for it answers nothing, and the page drops it
        _, listed = await expert.get(f"/api/v1/consultations?state=requested,live&ids={made['id']}")
        assert listed["consultations"] == []


async def test_a_sonographer_of_another_site_hears_nothing_of_it(people: Any) -> None:
    client, _, open_api = people
    north, river = await open_api("sono_a"), await open_api("sono_b")
    async with stream(river) as events:
        await listening(client, 1)
        assert (await north.post("/api/v1/consultations", THYROID_REQUEST))[0] == 201  # change 1: north's
        assert (await river.post("/api/v1/consultations", THYROID_REQUEST))[0] == 201  # change 2: river's own
        # Had river heard north's request, its stream (woken before river's own request was even sent) would
        # have written version 1 first, or named north's id beside river's own.
        _, mine = await river.get("/api/v1/consultations")
        own = mine["consultations"][0]["id"]
        assert await events.notice() == {"topic": "consultations", "version": 2, "ids": [own]}


async def test_the_named_rows_are_asked_with_the_lists_own_access_check(people: Any) -> None:
    """`?ids=` answers only the consultations the caller sees (another site's is absent, as from the whole list);
    the single row of another site is refused with `not_found`; malformed ids are `invalid_request`."""
    _, _, open_api = people
    north, river = await open_api("sono_a"), await open_api("sono_b")
    _, theirs = await north.post("/api/v1/consultations", THYROID_REQUEST)
    _, mine = await river.post("/api/v1/consultations", THYROID_REQUEST)
    status, listed = await river.get(f"/api/v1/consultations?ids={theirs['id']},{mine['id']}")
    assert status == 200 and [c["id"] for c in listed["consultations"]] == [mine["id"]]
    status, refused = await river.get(f"/api/v1/consultations/{theirs['id']}")
    assert status == 404 and refused["error"] == "not_found"
    for bad in ("", "a.b", ",".join(f"c{k}" for k in range(51)), "x" * 33):
        status, refused = await river.get(f"/api/v1/consultations?ids={bad}")
        assert status == 400 and refused["error"] == "invalid_request", bad


async def test_a_site_no_longer_served_is_no_longer_named_at_once(people: Any) -> None:
    """Removing a site from an expert rescopes their open stream before its next write: a change at that site is
    not told to them (no id, no notice), while a change at a site they still serve is."""
    client, world, open_api = people
    expert, admin = await open_api("expert"), await open_api("admin")
    north, river = await open_api("sono_a"), await open_api("sono_b")
    async with stream(expert) as events:
        await listening(client, 1)
        path = f"/api/v1/users/{world.users['expert']}/sites/{world.site_a}"
        async with admin.session.delete(admin.base + path, headers={"X-CSRF-Token": admin.csrf or ""}) as r:
            assert r.status == 204
        assert (await north.post("/api/v1/consultations", THYROID_REQUEST))[0] == 201  # site A: not theirs now
        _, made = await river.post("/api/v1/consultations", THYROID_REQUEST)  # site B: still theirs
        assert (await events.notice())["ids"] == [made["id"]]


async def test_a_burst_past_the_id_limit_is_told_without_ids(people: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """More changes than a notice names ids for, before the stream writes: it names none (the page asks for its
    whole list); the next change is named again."""
    client, world, open_api = people
    monkeypatch.setattr(hub_module, "MAX_IDS", 2)
    expert = await open_api("expert")
    async with stream(expert) as events:
        await listening(client, 1)
        hub = client.app[CHANGES]
        for k in range(3):  # in one go: all three are pending when the stream wakes
            hub.changed(Change(CONSULTATIONS, world.site_a, consultation_id=f"c{k}"))
        assert "ids" not in await events.notice()
        hub.changed(Change(CONSULTATIONS, world.site_a, consultation_id="c3"))
        assert (await events.notice())["ids"] == ["c3"]


async def test_an_arriving_study_and_a_critical_finding_are_told_to_those_who_see_them(people: Any) -> None:
    client, world, open_api = people
    expert, trainer, river = await open_api("expert"), await open_api("trainer"), await open_api("sono_b")
    async with stream(expert) as reader, stream(trainer) as teacher, stream(river) as other_site:
        await listening(client, 3)
        store = client.app[DICOM_STORE]
        stored = await store_instance(store, image(patient_id="EV-1"), site_id=world.site_a, received_via="test")
        study = stored.study_id  # stored as STOW-RS and C-STORE store
        assert (await reader.notice())["topic"] == "queue"
        assert (await teacher.notice())["topic"] == "queue"  # trainers see every study, de-identified
        assert (await expert.post(f"/api/v1/studies/{study}/claim"))[0] == 200
        assert (await reader.notice())["topic"] == "queue"
        status, _ = await expert.post(f"/api/v1/studies/{study}/findings", {"finding": "Tension pneumothorax"})
        assert status == 201
        assert (await reader.notice())["topic"] == "findings"
        await store_instance(store, image(patient_id="EV-2"), site_id=world.site_b, received_via="test")  # river's
        # north's arrival and claim were queue changes 1 and 2: river's first notice is its own, the third
        assert await other_site.notice() == {"topic": "queue", "version": 3}
        assert (await teacher.notice())["topic"] == "queue"  # never the finding: trainers do not see findings


async def test_the_stream_is_for_signed_in_users(people: Any) -> None:
    client, world, open_api = people
    anonymous = await open_api()
    async with anonymous.session.get(anonymous.base + EVENTS) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "unauthenticated"
    device = await open_api(bearer=world.device_a_credential)
    async with device.session.get(device.base + EVENTS) as response:
        assert response.status == 403
        assert (await response.json())["error"] == "forbidden"
    assert client.app[CHANGES].listening() == 0


async def test_signing_out_ends_the_stream_and_it_is_not_opened_again(people: Any) -> None:
    client, _, open_api = people
    expert = await open_api("expert")
    other_tab = await open_api("expert")  # another session of the same user: its stream stays
    async with stream(expert) as events, stream(other_tab) as other_events:
        await listening(client, 2)
        assert (await expert.post("/api/v1/auth/logout"))[0] == 204
        with pytest.raises(EOFError):
            await events.notice()
        await listening(client, 1)
        assert (await (await open_api("sono_a")).post("/api/v1/consultations", THYROID_REQUEST))[0] == 201
        assert (await other_events.notice())["topic"] == "consultations"
    async with expert.session.get(expert.base + EVENTS) as response:  # the browser's reconnection
        assert response.status == 401


async def test_a_user_holds_a_bounded_number_of_streams(people: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, open_api = people
    monkeypatch.setattr(stream_route, "MAX_STREAMS_PER_USER", 1)
    expert = await open_api("expert")
    async with stream(expert):
        await listening(client, 1)
        async with expert.session.get(expert.base + EVENTS) as response:
            assert response.status == 429
            assert (await response.json())["error"] == "too_many_streams"
        async with stream(await open_api("expert2")):  # another user is not counted against this one
            await listening(client, 2)


@pytest.mark.postgres
async def test_a_change_on_one_server_is_heard_by_a_stream_on_another(aiohttp_client: Any, tmp_path: Path) -> None:
    async with two_apps(aiohttp_client, tmp_path) as (a, b):
        world = await seed(a.app)
        expert, sono = Api(b, None), Api(a, None)
        try:
            await expert.login("expert")
            await sono.login("sono_a")
            async with stream(expert) as events:  # listening on B
                await listening(b, 1)
                status, _ = await sono.post("/api/v1/consultations", THYROID_REQUEST)  # requested on A
                assert status == 201
                assert (await events.notice())["topic"] == "consultations"
                admin = Api(a, None)
                try:  # disabling the expert on A ends their stream on B at once
                    await admin.login("admin")
                    assert (await admin.post(f"/api/v1/users/{world.users['expert']}/disable"))[0] == 200
                finally:
                    await admin.close()
                with pytest.raises(EOFError):
                    await events.notice()
        finally:
            await expert.close()
            await sono.close()
