"""signaling_server.findings.service on the real database (SQLite and PostgreSQL), on an explicit clock: a
critical finding is flagged by the reader holding the lock, seen by the readers and the study's own site,
escalated one level per period until someone at that site acknowledges it, and never after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from signaling_server import errors
from signaling_server.access import assignments
from signaling_server.appkeys import DB
from signaling_server.auth.identity import Caller
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.models import CriticalFinding, StudyEvent, User
from signaling_server.findings import escalation, service
from signaling_server.reading import service as queue
from tests.conftest import World, make_app, seed
from tests.signaling_server.reading.studies import arrive

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=15)


@pytest.fixture
async def place(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[web.Application, World]]:
    app = await make_app(db_url, tmp_path)
    # the tests escalate on their own clock: the app's timer (real time, long past T0) would escalate meanwhile
    app.cleanup_ctx.remove(escalation.escalation_timer)
    await aiohttp_client(app)
    yield app, await seed(app)


async def caller(app: web.Application, world: World, username: str) -> Caller:
    async with app[DB]() as db:
        user = await db.get(User, world.users[username])
        assert user is not None
        return Caller("cookie", user=user)


async def claimed_study(app: web.Application, world: World, reader: str = "expert", site: str = "a") -> str:
    study = await arrive(app, world.site_a if site == "a" else world.site_b, "CR", at=T0 - timedelta(minutes=5))
    async with app[DB]() as db:
        await queue.claim(db, await caller(app, world, reader), study, 60, T0 - timedelta(minutes=1))
    return study


async def flag(app: web.Application, world: World, study: str, reader: str = "expert", **data: Any) -> Any:
    async with app[DB]() as db:
        body = {"finding": "Large right pneumothorax", **data}
        return await service.flag(db, await caller(app, world, reader), study, body, PERIOD, T0)


async def test_the_reader_holding_the_lock_flags_with_the_six_fields(place: Any) -> None:
    app, world = place
    study = await claimed_study(app, world)
    finding = await flag(app, world, study, method="phone", notified_person="Dr Wang")
    assert (finding.finding, finding.found_at.replace(tzinfo=UTC), finding.reported_by_id) == (
        "Large right pneumothorax",
        T0,
        world.users["expert"],
    )
    assert (finding.method, finding.notified_person, finding.site_id) == ("phone", "Dr Wang", world.site_a)
    assert finding.escalation_level == 0 and finding.next_escalation_at.replace(tzinfo=UTC) == T0 + PERIOD
    assert (await flag(app, world, study)).method == "in-system"  # the default
    async with app[DB]() as db:
        kinds = (await db.scalars(select(StudyEvent.kind).where(StudyEvent.study_id == study))).all()
        reporter, acknowledger, accession = await service.names(db, finding)
    assert list(kinds).count("critical_finding") == 2
    assert (reporter, acknowledger) == ("Expert", None) and accession.startswith("A")


async def test_only_the_lock_holder_flags_and_the_form_is_checked(place: Any) -> None:
    app, world = place
    study = await claimed_study(app, world)
    with pytest.raises(errors.NotLockHolder) as caught:
        await flag(app, world, study, reader="expert2")
    assert caught.value.code == "not_lock_holder"
    with pytest.raises(errors.Forbidden) as forbidden:
        await flag(app, world, study, reader="sono_a")
    assert forbidden.value.code == "forbidden"
    with pytest.raises(errors.InvalidRequest) as bad:
        await flag(app, world, study, method="carrier pigeon")
    assert bad.value.code == "invalid_request" and "method" in bad.value.message
    with pytest.raises(errors.InvalidRequest):
        await flag(app, world, study, finding="")


async def test_who_sees_which_findings(place: Any) -> None:
    app, world = place
    north = await flag(app, world, await claimed_study(app, world, site="a"))
    river = await flag(app, world, await claimed_study(app, world, site="b"))

    async def seen(username: str, open_only: bool = True) -> set[str]:
        async with app[DB]() as db:
            found = await service.list_visible(db, await caller(app, world, username), open_only=open_only)
            return {f.id for f in found}

    assert await seen("sono_a") == await seen("sono_a2") == {north.id}
    assert await seen("sono_b") == {river.id}
    for reader in ("expert", "expert2"):  # they serve both sites
        assert await seen(reader) == {north.id, river.id}
    for nobody in ("admin", "trainer", "registrar"):  # no assignment, no grant: no patient's finding
        assert await seen(nobody) == set()


async def test_unacknowledged_it_escalates_each_period_and_acknowledged_never_again(place: Any) -> None:
    app, world = place
    finding = await flag(app, world, await claimed_study(app, world))

    async def escalate(at: datetime) -> list[int]:
        async with app[DB]() as db:
            return [f.escalation_level for f in await service.escalate_due(db, PERIOD, at)]

    assert await escalate(T0 + PERIOD - timedelta(seconds=1)) == []  # not yet due
    assert await escalate(T0 + PERIOD) == [1]
    assert await escalate(T0 + PERIOD + timedelta(minutes=1)) == []  # the next one is a whole period later
    assert await escalate(T0 + 2 * PERIOD) == [2]

    # Another site's sonographer cannot acknowledge it (for them it does not exist); its own site's can.
    for username, kind, code in (("sono_b", errors.NotFound, "not_found"), ("expert", errors.Forbidden, "forbidden")):
        async with app[DB]() as db:
            with pytest.raises(kind) as caught:
                await service.acknowledge(db, await caller(app, world, username), finding.id, {}, T0 + 2 * PERIOD)
        assert caught.value.code == code
    at = T0 + 2 * PERIOD + timedelta(minutes=3)
    async with app[DB]() as db:
        acked = await service.acknowledge(db, await caller(app, world, "sono_a2"), finding.id, {}, at)
        reporter, acknowledger, _ = await service.names(db, acked)
    assert acked.acknowledged_at.replace(tzinfo=UTC) == at and acked.next_escalation_at is None
    assert acked.notified_person == "Sono A2" and (reporter, acknowledger) == ("Expert", "Sono A2")
    async with app[DB]() as db:
        with pytest.raises(errors.InvalidTransition) as again:
            await service.acknowledge(db, await caller(app, world, "sono_a"), finding.id, {}, at)
    assert again.value.code == "invalid_transition"
    assert again.value.message == "this critical finding is already acknowledged"

    assert await escalate(T0 + 10 * PERIOD) == []  # acknowledged: never again
    async with app[DB]() as db:
        (stored,) = await service.for_study(db, finding.study_id)
        levels = [
            e.detail["level"]
            for e in (await db.scalars(select(StudyEvent).where(StudyEvent.kind == "critical_escalated"))).all()
        ]
    assert stored.escalation_level == 2 and levels == [1, 2]
    assert await list_open(app, world) == []


async def list_open(app: web.Application, world: World) -> list[Any]:
    async with app[DB]() as db:
        return await service.list_visible(db, await caller(app, world, "expert"), open_only=True)


async def test_an_admin_acknowledges_on_the_centres_behalf_naming_the_person(place: Any) -> None:
    app, world = place
    finding = await flag(app, world, await claimed_study(app, world, site="b"))
    async with app[DB]() as db:
        with pytest.raises(errors.NotFound):  # an admin who does not serve the centre does not see the finding
            await service.acknowledge(db, await caller(app, world, "admin"), finding.id, {}, T0)
        await assignments.assign(db, world.users["admin"], world.site_b, by=None, at=T0)
        await db.commit()
    async with app[DB]() as db:
        acked = await service.acknowledge(
            db, await caller(app, world, "admin"), finding.id, {"notified_person": "Nurse Zhao"}, T0
        )
    assert acked.acknowledged_by_id == world.users["admin"] and acked.notified_person == "Nurse Zhao"


async def test_two_servers_escalating_at_once_raise_each_finding_once(place: Any, db_url: str) -> None:
    """Every server runs the escalation timer: two at the same moment, each with its own connections to the one
    database, share the due findings between them (the claim rule, outbox.Claims) and raise each one level once."""
    app, world = place
    findings = [await flag(app, world, await claimed_study(app, world)) for _ in range(6)]
    engine = make_engine(db_url)
    other_server = make_sessionmaker(engine)
    at = T0 + PERIOD

    async def escalate(sessions: Any) -> list[str]:
        async with sessions() as db:
            return [f.id for f in await service.escalate_due(db, PERIOD, at)]

    try:
        for _ in range(2):  # the second round finds nothing due: the next escalation is a period later
            first, second = await asyncio.gather(escalate(app[DB]), escalate(other_server))
            if _ == 0:
                assert sorted(first + second) == sorted(f.id for f in findings)
            else:
                assert first == second == []
    finally:
        await engine.dispose()
    async with app[DB]() as db:
        rows = list(await db.scalars(select(CriticalFinding)))
        events = await db.scalar(select(func.count()).where(StudyEvent.kind == "critical_escalated"))
    assert [(r.escalation_level, r.next_escalation_at.replace(tzinfo=UTC)) for r in rows] == [(1, at + PERIOD)] * 6
    assert events == 6
