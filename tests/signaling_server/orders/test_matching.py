"""Orders meet their images and their report, on SQLite and PostgreSQL: images sent by DCMTK's storescu (C-STORE)
or by STOW-RS with the order's accession number start it and put the study in the queue with the order's priority;
the approved report completes it with a link, and the ordering site's people hear of each step on their event
stream (another site's do not). Images of another site, or of a cancelled order, match nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Study, StudyEvent
from signaling_server.dicomstore.scp import DICOM_SCP
from signaling_server.events.hub import CHANGES
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.events.test_stream import Stream, listening, stream

from .conftest import Running, order_body
from .test_worklist import run

FREE_TEXT = {"findings": "甲状腺右叶低回声结节。", "impression": "C-TIRADS 4A类。"}


async def heard(reader: Stream, server: Running) -> None:
    """Read `reader`'s notices until one tells of the orders' latest change (notices coalesce: a later version)."""
    wanted = server.app[CHANGES].versions["orders"]
    while True:
        notice = await reader.notice()
        if notice["topic"] == "orders" and notice["version"] >= wanted:
            return


async def _study(server: Running, study_id: str) -> Study:
    async with server.app[DB]() as db:
        study = await db.get(Study, study_id)
    assert study is not None
    return study


async def test_images_by_storescu_start_the_order_and_the_approved_report_completes_it(
    ordering: Running, tmp_path: Path
) -> None:
    doctor, other_doctor = await ordering.api("doc_a"), await ordering.api("doc_b")
    async with stream(doctor) as ours, stream(other_doctor) as theirs:
        await listening(ordering.client, 2)
        _, order = await doctor.post("/api/v1/orders", order_body(priority="stat"))
        await heard(ours, ordering)
        path = tmp_path / "us.dcm"
        path.write_bytes(image(modality="US", patient_id="MZ-0001", name="张^三", accession=order["accession"]))
        code, output = await run("storescu", "-aet", "NORTH_CR", "-aec", "TELEUS", "-to", "20", "127.0.0.1",
                                 str(ordering.app[DICOM_SCP].port), str(path))  # fmt: skip
        assert code == 0, output
        await heard(ours, ordering)  # the order is in progress
        status, started = await doctor.get(f"/api/v1/orders/{order['id']}")
        assert status == 200 and started["state"] == "in_progress" and started["started_at"]
        assert started["links"] == {"study": f"/api/v1/studies/{started['study_id']}"}
        study = await _study(ordering, started["study_id"])
        assert study.priority == "stat" and study.state == "matched"
        assert study.examined_at is not None and study.due_at == study.examined_at + timedelta(minutes=30)
        async with ordering.app[DB]() as db:
            kinds = [e.kind for e in await db.scalars(select(StudyEvent).where(StudyEvent.study_id == study.id))]
        assert "order_matched" in kinds
        status, error = await doctor.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "太晚了"})
        assert (status, error["error"]) == (409, "invalid_transition")  # images arrived: no more cancelling

        reader, senior = await ordering.api("expert"), await ordering.api("expert2")
        assert (await reader.post(f"/api/v1/studies/{study.id}/claim"))[0] == 200
        status, draft = await reader.post(f"/api/v1/studies/{study.id}/reports",
                                          {"kind": "free_text", "content": FREE_TEXT})  # fmt: skip
        assert status == 201, draft
        assert (await reader.post(f"/api/v1/reports/{draft['id']}/sign"))[0] == 200
        assert (await doctor.get(f"/api/v1/orders/{order['id']}"))[1]["state"] == "in_progress"  # reported only
        assert (await senior.post(f"/api/v1/reports/{draft['id']}/approve"))[0] in (200, 202)
        status, done = await doctor.get(f"/api/v1/orders/{order['id']}")
        assert done["state"] == "completed" and done["report_id"] == draft["id"] and done["completed_at"]
        assert done["links"]["report"] == f"/api/v1/reports/{draft['id']}"
        assert [e["kind"] for e in done["events"]] == ["placed", "started", "completed"]
        assert (await doctor.get(done["links"]["report"]))[0] == 200  # the ordering doctor opens the report
        async with doctor.session.get(doctor.base + done["links"]["report_print"]) as printable:
            assert printable.status == 200 and "甲状腺右叶低回声结节" in await printable.text()  # and prints it
        await heard(ours, ordering)  # the order is completed
        # river's doctor heard nothing of north's order: the first notice of their stream is their own order's
        await other_doctor.post("/api/v1/orders", order_body())
        assert await theirs.notice() == {"topic": "orders", "version": ordering.app[CHANGES].versions["orders"]}


async def test_stow_images_match_by_accession_and_by_the_worklists_study_uid(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    _, by_accession = await doctor.post("/api/v1/orders", order_body(priority="urgent"))
    _, by_uid = await doctor.post("/api/v1/orders", order_body())
    edge = ordering.device("a")
    status, _ = await ordering.stow(edge, [image(accession=by_accession["accession"])])
    assert status == 200
    status, _ = await ordering.stow(edge, [image(accession="", study_uid=by_uid["study_uid"])])
    assert status == 200
    for order, priority in ((by_accession, "urgent"), (by_uid, "routine")):
        shown = (await doctor.get(f"/api/v1/orders/{order['id']}"))[1]
        assert shown["state"] == "in_progress", shown
        assert (await _study(ordering, shown["study_id"])).priority == priority


async def test_images_of_another_site_or_of_a_cancelled_order_match_nothing(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    _, waiting = await doctor.post("/api/v1/orders", order_body(priority="stat"))
    _, withdrawn = await doctor.post("/api/v1/orders", order_body())
    await doctor.post(f"/api/v1/orders/{withdrawn['id']}/cancel", {"reason": "患者取消"})
    river = await ordering.store(image(accession=waiting["accession"]), site="b")
    north = await ordering.store(image(accession=withdrawn["accession"]), site="a")
    assert river.order_id is None and north.order_id is None
    assert (await doctor.get(f"/api/v1/orders/{waiting['id']}"))[1]["state"] == "scheduled"
    assert (await doctor.get(f"/api/v1/orders/{withdrawn['id']}"))[1]["state"] == "cancelled"
    assert (await _study(ordering, river.study_id)).priority == "routine"  # not the order's stat


async def test_a_study_made_before_its_order_takes_the_orders_priority_when_the_next_image_matches(
    ordering: Running,
) -> None:
    doctor = await ordering.api("doc_a")
    study_uid = "1.2.826.0.1.3680043.8.498.77"
    first = await ordering.store(image(accession="LATE-1", study_uid=study_uid, modality="CT"))
    before = await _study(ordering, first.study_id)
    assert before.priority == "routine" and before.examined_at is not None
    _, order = await doctor.post("/api/v1/orders", order_body(accession="LATE-1", priority="stat",
                                                               exam={"modality": "CT", "body_part": "HEAD"}))
    second = await ordering.store(image(accession="LATE-1", study_uid=study_uid, modality="CT", seed=2))
    assert second.order_id == order["id"] and second.study_id == first.study_id
    after = await _study(ordering, first.study_id)
    assert after.priority == "stat" and after.due_at == before.examined_at + timedelta(minutes=30)  # CT stat
