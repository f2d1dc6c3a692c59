"""Forwarding to the regional PACS: a real Orthanc receives what teleus stored (Chinese names intact), and jobs
that cannot be delivered are retried with backoff until they fail."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.models import ForwardJob
from signaling_server.dicomstore.blobs import BLOBS, BlobStore
from signaling_server.dicomstore.forward import (
    FORWARDER,
    MACHINE,
    Destination,
    Forwarder,
    JobState,
    Outgoing,
    record_attempt,
    requeue,
    send_c_store,
)
from signaling_server.outbox import CLAIM
from signaling_server.states import IllegalMove
from tests.waiting import eventually

from .conftest import Running, Start
from .objects import image, read, real_file
from .orthanc import Orthanc, free_port, running_orthanc


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as pacs:
        yield pacs


async def _jobs_settle(server: Running, count: int, timeout: float = 30.0) -> list[ForwardJob]:
    """Wait until `count` jobs exist and none is pending any more."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with server.app[DB]() as db:
            jobs = list(await db.scalars(select(ForwardJob).order_by(ForwardJob.id)))
        if len(jobs) == count and all(j.state != JobState.PENDING for j in jobs):
            return jobs
        assert asyncio.get_running_loop().time() < deadline, [(j.state, j.attempts, j.last_error) for j in jobs]
        await asyncio.sleep(0.05)


async def _from_orthanc(pacs: Orthanc, sop_uid: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.post(pacs.http + "/tools/lookup", data=sop_uid) as response:
            [found] = await response.json()
            assert found["Type"] == "Instance"
        async with http.get(f"{pacs.http}/instances/{found['ID']}/file") as response:
            assert response.status == 200
            return await response.read()


async def test_stored_objects_reach_orthanc_intact(start: Start, orthanc: Orthanc) -> None:
    server = await start(pacs=orthanc.destination, forward_backoff_seconds=0.2)
    patient = "FWD-" + generate_uid()[-8:]
    chinese = image(patient_id=patient, name="张^三", study_uid=generate_uid(), rgb=True)
    cine = real_file("color3d_jpeg_baseline.dcm")
    status, _ = await server.stow(server.device("a"), [chinese, cine])
    assert status == 200
    jobs = await _jobs_settle(server, 2)
    assert [(j.state, j.attempts, j.last_error) for j in jobs] == [("sent", 1, None)] * 2
    assert jobs[0].destination == orthanc.destination

    for sent in (chinese, cine):
        original = read(sent)
        received = read(await _from_orthanc(orthanc, str(original.SOPInstanceUID)))
        assert received == original  # the dataset; Orthanc writes its own file meta
        assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert str(read(chinese).PatientName) == "张^三"

    async with aiohttp.ClientSession() as http:  # and Orthanc's DICOMweb finds it by patient
        async with http.get(f"{orthanc.http}/dicom-web/studies", params={"PatientID": patient}) as response:
            [study] = await response.json(content_type=None)
    assert study["00100010"]["Value"][0]["Alphabetic"] == "张^三"


async def _due_jobs(server: Any, destination: Destination, stored: list[Any]) -> None:
    """A pending forward job per stored instance, due a second ago (as the forwarder's own scheduling leaves them)."""
    async with server.app[DB]() as db:
        for instance in stored:
            db.add(ForwardJob(instance_id=instance.instance_id, destination=str(destination), state="pending",
                              attempts=0, next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        await db.commit()


async def test_two_forwarders_on_one_database_send_each_job_once(start: Start, orthanc: Orthanc) -> None:
    """Two server processes share the job table: the batch one forwarder sends is claimed before it goes out, so the
    other, looking for due jobs while the first is still sending, finds none of them."""
    server = await start()  # no forwarder of its own: the test's two are the only ones
    destination = Destination.parse(orthanc.destination)
    stored = [await server.store(image(patient_id=f"TWO-{n}", study_uid=generate_uid())) for n in range(3)]
    await _due_jobs(server, destination, stored)
    loop = asyncio.get_running_loop()
    sent: dict[str, list[int]] = {"first": [], "second": []}
    second_found: list[int] = []

    def make(name: str) -> Forwarder:
        def send(dest: Destination, ae: str, items: list[Outgoing], tls: ssl.SSLContext | None) -> dict[int, Any]:
            sent[name] += [item.job_id for item in items]
            if name == "first":  # while this batch is on its way, the other server looks for due jobs
                second_found.append(asyncio.run_coroutine_threadsafe(second.send_due(), loop).result(timeout=60))
            return send_c_store(dest, ae, items, None)

        return Forwarder(server.app[DB], server.app[BLOBS], destination, calling_ae="TELEUS", backoff_seconds=30,
                         max_attempts=3, send=send)  # fmt: skip

    first, second = make("first"), make("second")
    assert await first.send_due() == 3
    assert second_found == [0] and sent["second"] == [] and len(set(sent["first"])) == 3
    async with server.app[DB]() as db:
        jobs = list(await db.scalars(select(ForwardJob)))
    assert [(j.state, j.attempts) for j in jobs] == [("sent", 1)] * 3
    for instance in stored:
        await _from_orthanc(orthanc, instance.sop_uid)


async def test_a_batch_claimed_by_a_forwarder_that_died_is_sent_when_the_claim_runs_out(
    start: Start, orthanc: Orthanc
) -> None:
    """A server is killed while its batch is on the way: the other takes the batch again once the claim runs out,
    not before."""
    server = await start()
    destination = Destination.parse(orthanc.destination)
    stored = [await server.store(image(patient_id=f"DIED-{n}", study_uid=generate_uid())) for n in range(2)]
    await _due_jobs(server, destination, stored)
    loop = asyncio.get_running_loop()
    sending, never = asyncio.Event(), threading.Event()

    def hang(dest: Destination, ae: str, items: list[Outgoing], tls: ssl.SSLContext | None) -> dict[int, Any]:
        loop.call_soon_threadsafe(sending.set)
        never.wait(60)  # the association hangs until the process is killed
        return {}

    def forwarder(send: Any) -> Forwarder:
        return Forwarder(server.app[DB], server.app[BLOBS], destination, calling_ae="TELEUS", backoff_seconds=30,
                         max_attempts=3, send=send)  # fmt: skip

    dead, alive = forwarder(hang), forwarder(send_c_store)
    at = datetime.now(UTC)
    dying = asyncio.create_task(dead.send_due(at))
    await asyncio.wait_for(sending.wait(), 30)
    dying.cancel()  # the process is killed: nothing of it records anything
    never.set()
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert await alive.send_due(at + CLAIM - timedelta(seconds=1)) == 0
    assert await alive.soonest_due() == at + CLAIM  # it looks again when the claim runs out
    assert await alive.send_due(at + CLAIM) == 2
    async with server.app[DB]() as db:
        jobs = list(await db.scalars(select(ForwardJob)))
    assert [(j.state, j.attempts, j.claimed_until) for j in jobs] == [("sent", 1, None)] * 2
    for instance in stored:
        await _from_orthanc(orthanc, instance.sop_uid)


async def test_undeliverable_jobs_back_off_then_fail(start: Start) -> None:
    nobody = f"NOBODY@127.0.0.1:{free_port()}"  # nothing listens there
    server = await start(pacs=nobody, forward_backoff_seconds=0.05, forward_max_attempts=3)
    stored = await server.store(image())
    [job] = await _jobs_settle(server, 1)
    assert (job.instance_id, job.state, job.attempts) == (stored.instance_id, "failed", 3)
    assert job.last_error is not None and "association" in job.last_error
    assert server.app[FORWARDER].destination == Destination.parse(nobody)


def test_the_job_state_machine() -> None:
    now, backoff = datetime(2025, 1, 1, tzinfo=UTC), timedelta(seconds=30)
    job = ForwardJob(instance_id="i", destination="X@h:1", state="pending", attempts=0, next_attempt_at=now)
    assert record_attempt(job, "refused", now, backoff, 4) is JobState.PENDING
    assert job.next_attempt_at == now + timedelta(seconds=30) and job.last_error == "refused"
    assert record_attempt(job, "refused", now, backoff, 4) is JobState.PENDING
    assert job.next_attempt_at == now + timedelta(seconds=60)
    assert record_attempt(job, None, now, backoff, 4) is JobState.SENT
    assert (job.attempts, job.last_error) == (3, None)
    late = ForwardJob(instance_id="i", destination="X@h:1", state="pending", attempts=20, next_attempt_at=now)
    assert record_attempt(late, "down", now, backoff, 30) is JobState.PENDING
    assert late.next_attempt_at == now + timedelta(hours=1)  # capped
    assert record_attempt(late, "down", now, backoff, 22) is JobState.FAILED


def test_destinations() -> None:
    assert Destination.parse("PACS@10.0.0.5:104") == Destination("PACS", "10.0.0.5", 104)
    assert str(Destination.parse(" ORTHANC@pacs.local:4242 ")) == "ORTHANC@pacs.local:4242"
    for bad in ("PACS@host", "host:104", "A@h:0", "A@h:70000", "WAY-TOO-LONG-AE-TITLE@h:1"):
        with pytest.raises(ValueError):
            Destination.parse(bad)


@pytest.mark.parametrize(
    ("error", "max_attempts", "new"),
    [(None, 4, JobState.SENT), ("down", 4, JobState.PENDING), ("down", 1, JobState.FAILED)],
)
def test_every_move_of_a_pending_job(error: str | None, max_attempts: int, new: JobState) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    job = ForwardJob(id=7, instance_id="i", destination="X@h:1", state="pending", attempts=0, next_attempt_at=now)
    assert record_attempt(job, error, now, timedelta(seconds=30), max_attempts) is new
    assert (job.state, job.attempts, job.last_error) == (new, 1, error)
    assert new is JobState.PENDING or (JobState.PENDING, new) in MACHINE.edges()


@pytest.mark.parametrize("final", [JobState.SENT, JobState.FAILED])
def test_a_finished_job_takes_no_more_attempts(final: JobState) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    job = ForwardJob(id=7, instance_id="i", destination="X@h:1", state=final, attempts=3, next_attempt_at=now)
    other = JobState.FAILED if final is JobState.SENT else JobState.SENT
    with pytest.raises(IllegalMove, match=f"a forward job that is {final} cannot become"):
        record_attempt(job, None if other is JobState.SENT else "down", now, timedelta(seconds=30), 1)
    assert (job.state, job.attempts) == (final, 3)


async def test_the_forwarder_outlives_a_database_that_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A database that answers with errors (here: a real SQLite file without the tables) is logged and retried; the
    forwarding task keeps running and stops cleanly when cancelled. (The same holds now when the error comes while
    it asks for the next due time, which used to end the task: that path is not staged here.)"""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    forwarder = Forwarder(
        make_sessionmaker(engine), BlobStore(tmp_path / "blobs"), Destination.parse("PACS@127.0.0.1:1"),
        calling_ae="TELEUS", backoff_seconds=0.05, max_attempts=3,
    )  # fmt: skip
    task = asyncio.create_task(forwarder.run())
    try:
        await eventually(lambda: sum("trying again later" in r.getMessage() for r in caplog.records) >= 2,
                         timeout=60, what="two logged failures")  # fmt: skip
        assert not task.done()  # two failures survived
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


def test_only_a_failed_job_is_requeued_and_it_starts_afresh() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    job = ForwardJob(id=7, instance_id="i", destination="X@h:1", state="failed", attempts=10, last_error="down",
                     next_attempt_at=now - timedelta(days=1))  # fmt: skip
    requeue(job, now)
    assert (job.state, job.attempts, job.next_attempt_at, job.last_error) == ("pending", 0, now, "down")
    assert (JobState.FAILED, JobState.PENDING) in MACHINE.edges()
    for state in (JobState.PENDING, JobState.SENT):
        other = ForwardJob(id=8, instance_id="i", destination="X@h:1", state=state, attempts=2, next_attempt_at=now)
        with pytest.raises(IllegalMove, match=f"a forward job that is {state} cannot become pending"):
            requeue(other, now)
        assert (other.state, other.attempts) == (state, 2)
