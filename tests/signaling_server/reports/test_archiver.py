"""The report archive outbox through the real app on SQLite and PostgreSQL: approval with a blob store that cannot
be written leaves the report archiving (never final without its SR, nothing half-stored), and the archiver
finishes it once the store works again; an SR stored by an attempt that died is not stored twice; reports the old
approval left final without an SR are archived after the upgrade (SECURITY.md §8)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from aiohttp import web
from alembic import command
from sqlalchemy import func, select

from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.migrate import alembic_config, upgrade
from signaling_server.db.models import ForwardJob, Instance, Report, ReportArchiveJob, Study, StudyEvent
from signaling_server.dicomstore.blobs import BLOBS, BlobStore
from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from signaling_server.outbox import CLAIM
from signaling_server.reports import archive
from signaling_server.reports.archiver import ARCHIVER, MACHINE, Archiver, JobState
from signaling_server.settings import Settings
from signaling_server.states import IllegalMove, move
from tests.clocks import FakeWallClock
from tests.conftest import Api, seed
from tests.signaling_server.reading.studies import arrive
from tests.waiting import eventually

FREE_TEXT = {"findings": "No acute findings.", "impression": "Normal CT head."}


async def _signed(app: web.Application, site: str, reader: Api) -> tuple[str, str]:
    """A CT study whose report `reader` drafted and signed: (study id, report id)."""
    study = await arrive(app, site, "CT")
    assert (await reader.post(f"/api/v1/studies/{study}/claim"))[0] == 200
    status, draft = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": FREE_TEXT})
    assert status == 201, draft
    assert (await reader.post(f"/api/v1/reports/{draft['id']}/sign"))[0] == 200
    return study, str(draft["id"])


def _unwritable(blobs: BlobStore) -> Callable[[], None]:
    """Every blob write goes through tmp/: a file in its place makes the store refuse them all (even for root,
    whom a read-only mode would not stop). Returns what makes it writable again."""
    blobs.tmp.rmdir()
    blobs.tmp.write_text("not a folder")

    def writable() -> None:
        blobs.tmp.unlink()
        blobs.tmp.mkdir()

    return writable


def _blob_files(blobs: BlobStore) -> set[str]:
    return {path.name for path in blobs.root.glob("??/??/*.dcm")}


async def _job(app: web.Application, report_id: str) -> ReportArchiveJob:
    async with app[DB]() as db:
        job = await db.scalar(select(ReportArchiveJob).where(ReportArchiveJob.report_id == report_id))
    assert job is not None
    return job


async def _instances(app: web.Application, sop_uid: str | None = None) -> int:
    async with app[DB]() as db:
        query = select(func.count()).select_from(Instance)
        if sop_uid is not None:
            query = query.where(Instance.sop_uid == sop_uid)
        return int(await db.scalar(query) or 0)


async def test_with_the_store_unwritable_a_report_stays_archiving_until_its_sr_is_stored(people: Any) -> None:
    """The finding: approve answered 500, the report was final with no SR, and approving again answered 409."""
    client, world, open_api = people
    app = client.app
    reader, senior = await open_api("expert"), await open_api("expert2")
    study, report_id = await _signed(app, world.site_a, reader)
    clock = FakeWallClock()
    app[ARCHIVER].clock = clock  # retries come when the test moves time, not after real seconds
    blobs = app[BLOBS]
    blobs_before, instances_before = _blob_files(blobs), await _instances(app)
    writable = _unwritable(blobs)

    status, report = await senior.post(f"/api/v1/reports/{report_id}/approve")
    assert status == 202, report
    assert report["state"] == "archiving" and report["sr_sop_uid"] is None
    assert report["approver"]["name"] == "Expert2" and report["approved_at"]
    assert report["archiving"]["attempts"] == 1 and "storage failed" in report["archiving"]["last_error"]
    status, error = await senior.post(f"/api/v1/reports/{report_id}/approve")
    assert (status, error["error"]) == (409, "already_approved") and "being archived" in error["message"]
    _, shown = await reader.get(f"/api/v1/studies/{study}")
    assert shown["state"] == "approved"
    assert (await reader.post(f"/api/v1/studies/{study}/claim"))[0] == 200
    status, error = await reader.post(f"/api/v1/reports/{report_id}/addenda", {"content": FREE_TEXT})
    assert (status, error["error"]) == (409, "invalid_transition") and "being archived" in error["message"]
    # nothing half-done: no SR in the index, no blob, no forward job; the report is not final
    assert _blob_files(blobs) == blobs_before and await _instances(app) == instances_before
    job = await _job(app, report_id)
    assert (job.state, job.attempts) == ("pending", 1) and job.next_attempt_at > clock()

    clock.advance(5)  # the first retry is due (TELEUS_ARCHIVE_BACKOFF_SECONDS, default 5): it fails again
    app[ARCHIVER].wake()
    await eventually(lambda: _attempts_at_least(app, report_id, 2), what="a second attempt")
    assert (await reader.get(f"/api/v1/reports/{report_id}"))[1]["state"] == "archiving"
    assert await _instances(app) == instances_before

    writable()
    clock.advance(600)
    app[ARCHIVER].wake()

    async def final() -> dict[str, Any] | None:
        found = (await reader.get(f"/api/v1/reports/{report_id}"))[1]
        return found if found["state"] == "final" else None

    done = await eventually(final, what="the report final")
    job = await _job(app, report_id)
    assert done["sr_sop_uid"] == job.sop_uid and done["archiving"] is None
    assert (job.state, job.last_error) == ("done", None) and job.attempts == 3
    assert await _instances(app, job.sop_uid) == 1 and await _instances(app) == instances_before + 1
    async with app[DB]() as db:
        sr_row = await db.scalar(select(Instance).where(Instance.sop_uid == job.sop_uid))
        kinds = list(await db.scalars(select(StudyEvent.kind).where(StudyEvent.study_id == study)))
        assert await db.scalar(select(func.count()).select_from(ForwardJob)) == 0  # no PACS configured
    assert sr_row is not None
    sr = pydicom.dcmread(blobs.path_for(sr_row.sha256))
    assert sr.VerificationFlag == "VERIFIED" and sr.SeriesInstanceUID == job.series_uid
    assert kinds.count("report_approved") == 1 and kinds.count("report_archived") == 1
    status, error = await senior.post(f"/api/v1/reports/{report_id}/approve")
    assert (status, error["error"]) == (409, "already_approved") and "is final" in error["message"]
    status, addendum = await reader.post(f"/api/v1/reports/{report_id}/addenda", {"content": FREE_TEXT})
    assert status == 201, addendum


async def _attempts_at_least(app: web.Application, report_id: str, attempts: int) -> bool:
    return (await _job(app, report_id)).attempts >= attempts


async def test_an_sr_stored_by_an_attempt_that_died_is_not_stored_twice(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    reader, senior = await open_api("expert"), await open_api("expert2")
    _, report_id = await _signed(app, world.site_a, reader)
    clock = FakeWallClock()
    app[ARCHIVER].clock = clock
    writable = _unwritable(app[BLOBS])
    assert (await senior.post(f"/api/v1/reports/{report_id}/approve"))[0] == 202
    writable()
    job = await _job(app, report_id)
    async with app[DB]() as db:  # an attempt stores the SR, then dies before it can say so
        report = await db.get(Report, report_id)
        assert report is not None
        study = await db.get(Study, report.study_id)
        assert study is not None
        raw = await archive.sr_part10(db, report, study, sop_uid=job.sop_uid, series_uid=job.series_uid)
    await store_instance(app[DICOM_STORE], raw, site_id=world.site_a, received_via="report")
    instances = await _instances(app)
    clock.advance(600)
    app[ARCHIVER].wake()
    await eventually(lambda: _state(app, report_id, "final"), what="the report final")
    assert await _instances(app) == instances and await _instances(app, job.sop_uid) == 1


async def _state(app: web.Application, report_id: str, state: str) -> bool:
    async with app[DB]() as db:
        report = await db.get(Report, report_id)
        return report is not None and report.state == state


async def test_two_approvals_at_once_make_one_archive_job(people: Any) -> None:
    """A double click, or the senior's two browsers: one approval, one archive job, one SR."""
    client, world, open_api = people
    reader, senior, other = await open_api("expert"), await open_api("expert2"), await open_api("expert2")
    _, report_id = await _signed(client.app, world.site_a, reader)
    answers = await asyncio.gather(*(who.post(f"/api/v1/reports/{report_id}/approve") for who in (senior, other)))
    statuses = sorted(status for status, _ in answers)
    assert statuses[0] in (200, 202) and statuses[1] == 409, answers
    assert [body["error"] for status, body in answers if status == 409] == ["already_approved"]
    async with client.app[DB]() as db:
        jobs = await db.scalar(select(func.count()).select_from(ReportArchiveJob))
    assert jobs == 1
    await eventually(lambda: _state(client.app, report_id, "final"), what="the report final")


async def test_reports_left_final_without_an_sr_are_archived_after_the_upgrade(
    db_url: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    """A database from before the outbox, holding a report the old approval left final without its SR."""
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url))
    client = await aiohttp_client(app)
    world = await seed(app)
    reader, senior = Api(client), Api(client)
    await reader.login("expert")
    await senior.login("expert2")
    _, report_id = await _signed(app, world.site_a, reader)
    assert (await senior.post(f"/api/v1/reports/{report_id}/approve"))[0] == 200
    await reader.close()
    await senior.close()
    async with app[DB]() as db:  # what the old approval left when its SR store failed
        report = await db.get(Report, report_id)
        assert report is not None and report.sr_sop_uid is not None
        stored = report.sr_sop_uid
        report.sr_sop_uid = None
        await db.execute(Instance.__table__.delete().where(Instance.sop_uid == stored))
        await db.commit()
    await client.close()
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0008")
    await upgrade(db_url)
    restarted = create_app(Settings(data_dir=tmp_path, database_url=db_url))
    client = await aiohttp_client(restarted)
    await eventually(lambda: _state(restarted, report_id, "final"), what="the stranded report archived")
    async with restarted[DB]() as db:
        report = await db.get(Report, report_id)
        assert report is not None and report.sr_sop_uid is not None and report.sr_sop_uid != stored
        assert await db.scalar(select(func.count()).where(Instance.sop_uid == report.sr_sop_uid)) == 1
    await client.close()


async def _archiving(app: web.Application, world: Any, open_api: Any, count: int) -> list[str]:
    """`count` approved reports left archiving (the store unwritable at approval), the store writable again."""
    reader, senior = await open_api("expert"), await open_api("expert2")
    signed = [(await _signed(app, world.site_a, reader))[1] for _ in range(count)]
    writable = _unwritable(app[BLOBS])
    for report_id in signed:
        assert (await senior.post(f"/api/v1/reports/{report_id}/approve"))[0] == 202
    writable()
    return signed


def _server(app: web.Application, clock: FakeWallClock, stored: list[str]) -> Archiver:
    """A server's archiver on the app's database and data folder; `stored` lists the SRs it stores."""

    async def store_sr(raw: bytes, site_id: str) -> None:
        stored.append(str(pydicom.dcmread(BytesIO(raw)).SOPInstanceUID))
        await store_instance(app[DICOM_STORE], raw, site_id=site_id, received_via="report")

    return Archiver(app[DB], store_sr, backoff_seconds=5, clock=clock)


def _later(app: web.Application) -> FakeWallClock:
    """The app's own archiver stays on a clock that never moves (its retries never fall due); the servers of the
    test get one 10 minutes on, when every retry is due."""
    frozen = FakeWallClock()
    app[ARCHIVER].clock = frozen
    return FakeWallClock(frozen.now + timedelta(minutes=10))


async def test_two_archivers_on_one_database_store_each_sr_once(people: Any) -> None:
    """Every server runs an archiver: each job is claimed by the one that attempts it, so while one stores an SR
    the other, looking for due jobs, takes only the others, and no SR is stored twice."""
    client, world, open_api = people
    app = client.app
    clock = _later(app)
    report_ids = await _archiving(app, world, open_api, 4)
    stored: dict[str, list[str]] = {"first": [], "second": []}
    first, second = _server(app, clock, stored["first"]), _server(app, clock, stored["second"])
    store_first = first.store_sr
    during: list[int] = []

    async def store_while_the_other_looks(raw: bytes, site_id: str) -> None:
        if not during:  # the other server looks for due jobs while this one holds its first
            during.append(await second.archive_due())
        await store_first(raw, site_id)

    first.store_sr = store_while_the_other_looks
    assert await first.archive_due() == 1  # the others were done meanwhile
    jobs = [await _job(app, report_id) for report_id in report_ids]
    assert during == [3] and len(stored["first"]) == 1 and len(stored["second"]) == 3
    assert sorted(stored["first"] + stored["second"]) == sorted(job.sop_uid for job in jobs)
    for report_id, job in zip(report_ids, jobs, strict=True):
        assert await _state(app, report_id, "final")
        assert (job.state, job.attempts, job.claimed_until) == ("done", 2, None)
        assert await _instances(app, job.sop_uid) == 1


async def test_a_job_claimed_by_a_server_that_died_is_taken_again_when_the_claim_runs_out(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    clock = _later(app)
    [report_id] = await _archiving(app, world, open_api, 1)
    dead, alive = _server(app, clock, []), _server(app, clock, [])
    job_id = await dead._claim()  # it claims the job, then its process is killed before it stores the SR
    assert job_id == (await _job(app, report_id)).id
    assert await alive.archive_due() == 0  # held: this server leaves it
    assert not await alive.attempt(job_id)  # even when asked for at once
    clock.advance(CLAIM.total_seconds() - 1)
    assert await alive.archive_due() == 0
    clock.advance(1)  # the claim ran out
    assert await alive.archive_due() == 1
    assert await _state(app, report_id, "final")
    assert (await _job(app, report_id)).attempts == 2


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_an_archive_job_only_ever_becomes_done(old: JobState, new: JobState) -> None:
    assert (old, new) == (JobState.PENDING, JobState.DONE)
    assert move(MACHINE, old, new, entity_id=1) is new
    with pytest.raises(IllegalMove):
        move(MACHINE, JobState.DONE, JobState.PENDING, entity_id=1)
