"""signaling_server.reports.service on the real database (SQLite and PostgreSQL), on an explicit clock: the report's
states (draft → preliminary → archiving → final, addenda as new versions) and the study's with them, who may write,
sign and approve, and each refusal's stable code. Routes, SR archiving and printing are tested beside this file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from signaling_server import errors
from signaling_server.appkeys import DB
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Report, Study, StudyEvent, User
from signaling_server.reading import service as queue
from signaling_server.reports import service
from signaling_server.reports.archiver import ARCHIVER
from tests.conftest import World, make_app, seed
from tests.signaling_server.reading.studies import arrive

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FREE_TEXT = {"kind": "free_text", "content": {"findings": "No acute findings.", "impression": "Normal."}}


class Desk:
    def __init__(self, app: web.Application, world: World) -> None:
        self.app, self.world = app, world

    async def caller(self, username: str) -> Caller:
        async with self.app[DB]() as db:
            user = await db.get(User, self.world.users[username])
            assert user is not None
            return Caller("cookie", user=user)

    async def do(self, action: Any, username: str, *args: Any) -> Any:
        async with self.app[DB]() as db:
            return await action(db, await self.caller(username), *args)

    async def claim(self, study: str, username: str = "expert", at: datetime = T0) -> None:
        await self.do(queue.claim, username, study, 60, at)

    async def study(self, study: str) -> Study:
        async with self.app[DB]() as db:
            found = await db.get(Study, study)
            assert found is not None
            return found

    async def events(self, study: str) -> list[str]:
        async with self.app[DB]() as db:
            query = select(StudyEvent.kind).where(StudyEvent.study_id == study).order_by(StudyEvent.id)
            return [k for k in (await db.scalars(query)).all() if k.startswith(("report", "addendum"))]


@pytest.fixture
async def desk(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    app = await make_app(db_url, tmp_path)
    await aiohttp_client(app)
    world = await seed(app)
    yield Desk(app, world)


async def refused(call: Awaitable[Any], kind: type[errors.TeleusError], code: str) -> str:
    with pytest.raises(kind) as caught:
        await call
    assert caught.value.code == code
    return caught.value.message


async def test_drafted_signed_approved_then_amended(desk: Desk) -> None:
    study = await arrive(desk.app, desk.world.site_a, "CR", at=T0 - timedelta(minutes=5))
    await desk.claim(study)
    draft = await desk.do(service.create_draft, "expert", study, FREE_TEXT, T0)
    assert (draft.version, draft.state, draft.author_id) == (1, "draft", desk.world.users["expert"])
    edited = await desk.do(
        service.edit_draft, "expert", draft.id, {"content": {"findings": "Small effusion."}}, T0 + timedelta(minutes=1)
    )
    assert edited.content["input"]["findings"] == "Small effusion."
    message = await refused(  # a draft may lack its impression; a signed report may not
        desk.do(service.sign, "expert", draft.id, T0 + timedelta(minutes=2)), errors.InvalidRequest, "invalid_request"
    )
    assert message == "content.impression: a signed report states its impression"
    await desk.do(
        service.edit_draft,
        "expert",
        draft.id,
        {"content": {"findings": "Small effusion.", "impression": "Effusion."}},
        T0 + timedelta(minutes=2),
    )
    signed = await desk.do(service.sign, "expert", draft.id, T0 + timedelta(minutes=2))
    study_row = await desk.study(study)
    assert signed.state == "preliminary" and study_row.state == "reported" and study_row.lock_holder_id is None

    report, approved_study = await desk.do(service.approve, "expert2", draft.id, T0 + timedelta(minutes=30))
    assert report.state == "archiving" and report.approver_id == desk.world.users["expert2"]
    assert approved_study.state == "approved"
    async with desk.app[DB]() as db:
        job = await service.archive_job(db, report)
    assert job is not None and (job.state, job.attempts) == ("pending", 0)
    assert job.next_attempt_at == T0 + timedelta(minutes=30)  # due at once
    assert await desk.app[ARCHIVER].attempt(job.id)  # the archiver stores the SR: final
    async with desk.app[DB]() as db:
        stored = await db.get(Report, report.id)
    assert stored is not None and stored.state == "final" and stored.sr_sop_uid == job.sop_uid

    await desk.claim(study, "expert2", T0 + timedelta(hours=2))
    addendum = await desk.do(
        service.add_addendum, "expert2", draft.id, {"content": {"findings": "Addendum."}}, T0 + timedelta(hours=2)
    )
    assert (addendum.version, addendum.state, addendum.amends_id) == (2, "draft", draft.id)
    async with desk.app[DB]() as db:
        assert (await service.predecessor(db, addendum)).id == draft.id
        listed = await service.list_for_study(db, await desk.caller("expert"), study)
    assert sorted(v.report.version for v in listed) == [1, 2]


async def test_who_may_write_sign_and_approve(desk: Desk) -> None:
    study = await arrive(desk.app, desk.world.site_a, "CR", at=T0 - timedelta(minutes=5))
    message = await refused(
        desk.do(service.create_draft, "expert", study, FREE_TEXT, T0), errors.NotLockHolder, "not_lock_holder"
    )
    assert message == "claim the study first: only the reader holding its lock may do this"
    await refused(desk.do(service.create_draft, "sono_a", study, FREE_TEXT, T0), errors.Forbidden, "forbidden")
    await desk.claim(study)
    draft = await desk.do(service.create_draft, "expert", study, FREE_TEXT, T0)
    message = await refused(desk.do(service.create_draft, "expert", study, FREE_TEXT, T0), errors.Conflict, "conflict")
    assert message == "this study already has a draft report: edit that one"
    message = await refused(desk.do(service.sign, "expert2", draft.id, T0), errors.Forbidden, "forbidden")
    assert message == "only the author edits or signs a draft"
    # The lock has run out: the author must claim again before signing.
    later = T0 + timedelta(minutes=61)
    await refused(desk.do(service.sign, "expert", draft.id, later), errors.NotLockHolder, "not_lock_holder")
    await desk.claim(study, at=later)
    await desk.do(service.sign, "expert", draft.id, later)
    message = await refused(desk.do(service.approve, "expert", draft.id, later), errors.Forbidden, "forbidden")
    assert message == "a report is approved by a different expert than its author"
    message = await refused(
        desk.do(service.edit_draft, "expert", draft.id, {"content": {}}, later),
        errors.InvalidTransition,
        "invalid_transition",
    )
    assert message == "a preliminary report cannot be edited; write an addendum"
    # A study that has its report takes addenda, not a second report; a preliminary report takes no addendum.
    await desk.claim(study, "expert2", later)
    message = await refused(
        desk.do(service.create_draft, "expert2", study, FREE_TEXT, later),
        errors.InvalidTransition,
        "invalid_transition",
    )
    assert message == "a study that is reported takes no new report; write an addendum to its final report"
    message = await refused(
        desk.do(service.add_addendum, "expert2", draft.id, {"content": {}}, later),
        errors.InvalidTransition,
        "invalid_transition",
    )
    assert message == "an addendum amends the newest final report only"
    await desk.do(service.approve, "expert2", draft.id, later)
    message = await refused(
        desk.do(service.approve, "expert2", draft.id, later), errors.AlreadyApproved, "already_approved"
    )
    assert message == "this report was approved by Expert2; its SR is being archived"


async def test_a_report_from_another_site_is_not_there_for_a_sonographer(desk: Desk) -> None:
    study = await arrive(desk.app, desk.world.site_a, "CR", at=T0 - timedelta(minutes=5))
    await desk.claim(study)
    draft = await desk.do(service.create_draft, "expert", study, FREE_TEXT, T0)
    (report, _) = await desk.do(service.get_visible, "sono_a", draft.id)
    assert report.id == draft.id
    for who, report_id in (("sono_b", draft.id), ("expert", "nope")):
        message = await refused(desk.do(service.get_visible, who, report_id), errors.NotFound, "not_found")
        assert message == "no such report"


async def test_a_bad_form_names_its_field(desk: Desk) -> None:
    study = await arrive(desk.app, desk.world.site_a, "CR", at=T0 - timedelta(minutes=5))
    await desk.claim(study)
    for data in ({"kind": "limerick", "content": {}}, {"kind": "free_text"}, {"kind": "free_text", "content": "x"}):
        await refused(
            desk.do(service.create_draft, "expert", study, data, T0), errors.InvalidRequest, "invalid_request"
        )
    assert await desk.events(study) == []
