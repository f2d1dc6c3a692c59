"""signaling_server.consultations.service: the named actions on the real database (SQLite and PostgreSQL):
who may request, see, enter, end and cancel a consultation, the states each action moves it through, and the
event trail it leaves. Routes and sockets are tested in tests/signaling_server/test_consultations.py and
test_signaling.py; here the service is called as the routes call it, with a Caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from signaling_server import errors
from signaling_server.access import assignments
from signaling_server.appkeys import DB
from signaling_server.auth.identity import Caller
from signaling_server.consultations import service
from signaling_server.db.models import ConsultationEvent, Device, User
from tests.conftest import THYROID_REQUEST, World, make_app, seed


@dataclass
class Place:
    app: web.Application
    world: World

    async def user(self, username: str) -> Caller:
        async with self.app[DB]() as db:
            user = await db.get(User, self.world.users[username])
            assert user is not None
            return Caller("cookie", user=user)

    async def device(self, site: str = "a") -> Caller:
        async with self.app[DB]() as db:
            site_id = self.world.site_a if site == "a" else self.world.site_b
            device = (await db.scalars(select(Device).where(Device.site_id == site_id))).one()
            return Caller("device", device=device)

    async def request(self, username: str = "sono_a", **changes: Any) -> str:
        caller = await self.user(username)
        assert caller.user is not None
        async with self.app[DB]() as db:
            return (await service.create(db, caller.user, {**THYROID_REQUEST, **changes})).id

    async def assign(self, username: str, site: str = "a") -> None:
        async with self.app[DB]() as db:
            site_id = self.world.site_a if site == "a" else self.world.site_b
            await assignments.assign(db, self.world.users[username], site_id, by=None, at=datetime.now(UTC))
            await db.commit()

    async def call(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        async with self.app[DB]() as db:
            return await action(db, *args, **kwargs)

    async def trail(self, cid: str) -> list[dict[str, Any]]:
        async with self.app[DB]() as db:
            query = select(ConsultationEvent).where(ConsultationEvent.consultation_id == cid)
            return [
                e.detail for e in (await db.scalars(query.order_by(ConsultationEvent.id))).all() if e.kind == "state"
            ]


@pytest.fixture
async def place(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Place]:
    app = await make_app(db_url, tmp_path)
    await aiohttp_client(app)  # runs the app's cleanup contexts (the database engine)
    yield Place(app, await seed(app))


async def refused(call: Awaitable[Any], kind: type[errors.TeleusError], code: str) -> str:
    with pytest.raises(kind) as caught:
        await call
    assert caught.value.code == code
    return caught.value.message


async def test_a_sonographer_requests_for_their_site_on_its_device(place: Place) -> None:
    cid = await place.request()
    view = await place.call(service.get_visible, await place.user("sono_a"), cid)
    c = view.consultation
    assert (c.state, c.site_id, c.device_id, c.exam_type) == (
        "requested",
        place.world.site_a,
        place.world.device_a,
        "thyroid",
    )
    assert (c.patient_id, c.patient_name, c.expert_id) == ("P-0001", "张^三", None)
    assert c.study_uid and view.requested_by.username == "sono_a" and view.expert is None
    assert await place.trail(cid) == [{"to": "requested"}]


@pytest.mark.parametrize("username", ["expert", "trainer", "admin"])
async def test_only_a_sonographer_of_a_site_requests(place: Place, username: str) -> None:
    caller = await place.user(username)
    assert caller.user is not None
    async with place.app[DB]() as db:
        message = await refused(service.create(db, caller.user, THYROID_REQUEST), errors.Forbidden, "forbidden")
    assert message == "only a sonographer of a site requests a consultation"


async def test_a_request_names_an_active_device_of_the_site(place: Place) -> None:
    other_site = await place.device("b")
    assert other_site.device is not None
    message = await refused(place.request(device_id=other_site.device.id), errors.InvalidRequest, "invalid_request")
    assert "no such active edge device" in message


async def test_who_sees_which_consultation(place: Place) -> None:
    north, river = await place.request("sono_a"), await place.request("sono_b")
    states = ("requested", "live")

    async def visible(caller: Caller) -> set[str]:
        return {v.consultation.id for v in await place.call(service.list_visible, caller, states)}

    assert await visible(await place.user("sono_a")) == {north}
    assert await visible(await place.user("sono_a2")) == {north}  # the same site
    assert await visible(await place.user("sono_b")) == {river}
    assert await visible(await place.device("a")) == {north}
    assert await visible(await place.device("b")) == {river}
    for username in ("expert", "expert2"):  # they serve both sites
        assert await visible(await place.user(username)) == {north, river}
    for username in ("trainer", "admin", "registrar"):  # neither assigned nor granted: none
        assert await visible(await place.user(username)) == set()
    await place.assign("admin", "b")
    assert await visible(await place.user("admin")) == {river}
    assert await place.call(service.list_visible, await place.user("expert"), ("ended",)) == []
    # Another site's consultation does not exist for them: the same answer as an unknown id.
    for cid in (river, "nope"):
        message = await refused(
            place.call(service.get_visible, await place.user("sono_a"), cid), errors.NotFound, "not_found"
        )
        assert message == "no such consultation"
    await refused(place.call(service.get_visible, await place.device("a"), river), errors.NotFound, "not_found")


async def test_the_first_expert_makes_it_live_the_second_observes(place: Place) -> None:
    cid = await place.request()
    role, view = await place.call(service.admit, await place.user("expert"), cid, False)
    assert role == "expert" and view.consultation.state == "live" and view.expert.username == "expert"
    assert view.consultation.started_at is not None
    role, view = await place.call(service.admit, await place.user("expert"), cid, False)  # back after a reload
    assert role == "expert" and view.consultation.state == "live"
    role, _ = await place.call(service.admit, await place.user("expert2"), cid, False)
    assert role == "observer"
    assert await place.trail(cid) == [{"to": "requested"}, {"from": "requested", "to": "live"}]


async def test_who_enters_the_room_as_what(place: Place) -> None:
    cid = await place.request()
    for username in ("trainer", "admin"):  # not invited, not serving the site: for them it does not exist
        await refused(place.call(service.admit, await place.user(username), cid, False), errors.NotFound, "not_found")
        await place.call(service.invite, await place.user("sono_a"), cid, place.world.users[username])
    expected = {"sono_a": "sonographer", "trainer": "observer", "admin": "observer"}
    for username, role in expected.items():
        assert (await place.call(service.admit, await place.user(username), cid, False))[0] == role
    assert (await place.call(service.admit, await place.device("a"), cid, False))[0] == "edge"
    role, view = await place.call(service.admit, await place.user("expert"), cid, True)  # asks to observe
    assert role == "observer" and view.consultation.state == "requested"
    # The other sonographer of the same site sees the consultation but may not enter it.
    for action in (service.admissible, service.admit):
        args = (cid,) if action is service.admissible else (cid, False)
        message = await refused(
            place.call(action, await place.user("sono_a2"), *args), errors.NotParticipant, "not_participant"
        )
        assert message == "this consultation was requested by another sonographer"
    await place.call(service.admissible, await place.user("sono_a"), cid)  # passes
    await refused(place.call(service.admit, await place.user("sono_b"), cid, False), errors.NotFound, "not_found")
    await refused(place.call(service.admit, await place.device("b"), cid, False), errors.NotFound, "not_found")


async def test_ending_by_a_participant_only_and_once(place: Place) -> None:
    cid = await place.request()
    await place.call(service.admit, await place.user("expert"), cid, False)
    for username in ("trainer", "admin"):
        await refused(place.call(service.end, await place.user(username), cid), errors.NotFound, "not_found")
    for username in ("expert2", "sono_a2"):
        message = await refused(
            place.call(service.end, await place.user(username), cid), errors.NotParticipant, "not_participant"
        )
        assert message == "only the consultation's expert or sonographer ends it"
    view = await place.call(service.end, await place.user("sono_a"), cid)
    assert view.consultation.state == "ended" and view.consultation.ended_at is not None
    message = await refused(
        place.call(service.end, await place.user("expert"), cid), errors.InvalidTransition, "invalid_transition"
    )
    assert message == "a consultation that is ended cannot become ended"
    # An ended consultation has no room any more.
    message = await refused(
        place.call(service.admit, await place.user("expert"), cid, False),
        errors.InvalidTransition,
        "invalid_transition",
    )
    assert message == "the consultation is ended"
    await refused(
        place.call(service.admissible, await place.user("sono_a"), cid), errors.InvalidTransition, "invalid_transition"
    )
    assert await place.trail(cid) == [
        {"to": "requested"},
        {"from": "requested", "to": "live"},
        {"from": "live", "to": "ended"},
    ]


async def test_a_waiting_request_is_cancelled_by_its_sonographer_or_an_admin_not_ended(place: Place) -> None:
    mine, theirs = await place.request(), await place.request()
    await place.assign("admin", "a")  # an admin who serves the site
    message = await refused(
        place.call(service.end, await place.user("sono_a"), mine), errors.InvalidTransition, "invalid_transition"
    )
    assert message == "a consultation that is requested cannot become ended"
    for username in ("sono_a2", "expert"):
        message = await refused(
            place.call(service.cancel, await place.user(username), mine), errors.NotParticipant, "not_participant"
        )
        assert message == "only the requesting sonographer or an admin cancels"
    assert (await place.call(service.cancel, await place.user("sono_a"), mine)).consultation.state == "cancelled"
    assert (await place.call(service.cancel, await place.user("admin"), theirs)).consultation.state == "cancelled"
    await refused(
        place.call(service.cancel, await place.user("admin"), theirs), errors.InvalidTransition, "invalid_transition"
    )
    # A live consultation is ended, not cancelled.
    live = await place.request()
    await place.call(service.admit, await place.user("expert"), live, False)
    message = await refused(
        place.call(service.cancel, await place.user("sono_a"), live), errors.InvalidTransition, "invalid_transition"
    )
    assert message == "a consultation that is live cannot become cancelled"


async def test_a_stale_copy_cannot_move_the_consultation(place: Place) -> None:
    cid = await place.request()
    sono = await place.user("sono_a")
    await place.assign("admin", "a")
    async with place.app[DB]() as stale_db:
        stale = await service.get_visible(stale_db, sono, cid)  # read before someone else cancels it
        await place.call(service.cancel, await place.user("admin"), cid)
        with pytest.raises(errors.InvalidTransition) as caught:
            await service._compare_and_set(stale_db, stale.consultation, service.ConsultationState.LIVE)
    assert caught.value.message == "the consultation changed meanwhile; reload it"
    view = await place.call(service.get_visible, sono, cid)
    assert view.consultation.state == "cancelled" and view.consultation.expert_id is None


async def test_chat_is_kept_in_order_with_its_sender(place: Place) -> None:
    cid = await place.request()
    expert = place.world.users["expert"]
    await place.call(service.add_chat, cid, "expert", expert, "Expert", "Tilt the probe")
    await place.call(service.add_chat, cid, "sonographer", place.world.users["sono_a"], "Sono A", "好的")
    history, more = await place.call(service.chat_page, cid, before=None, limit=100)
    assert [(m.sender_role, m.sender_user_id, m.text) for m in history] == [
        ("expert", expert, "Tilt the probe"),
        ("sonographer", place.world.users["sono_a"], "好的"),
    ]
    assert more is None
    assert history[0].id < history[1].id and history[0].at <= history[1].at
    assert await place.call(service.chat_page, await place.request(), before=None, limit=100) == ([], None)


async def test_chat_pages_go_back_from_the_newest_line(place: Place) -> None:
    cid = await place.request()
    for n in range(5):
        await place.call(service.add_chat, cid, "expert", place.world.users["expert"], "Expert", f"line {n}")
    newest, before = await place.call(service.chat_page, cid, before=None, limit=2)
    assert [m.text for m in newest] == ["line 3", "line 4"] and before == newest[0].id
    middle, before = await place.call(service.chat_page, cid, before=before, limit=2)
    assert [m.text for m in middle] == ["line 1", "line 2"] and before == middle[0].id
    oldest, before = await place.call(service.chat_page, cid, before=before, limit=2)
    assert [m.text for m in oldest] == ["line 0"] and before is None
