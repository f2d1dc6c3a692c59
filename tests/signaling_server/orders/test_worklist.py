"""The Modality Worklist against a real peer: DCMTK's `findscu -W` asks the listener (on SQLite and PostgreSQL) for
the scheduled orders of its site, by the usual keys; the answers are read back with pydicom and checked with
dciodvfy where it can; another site's modality, a cancelled order and an order for another station are not shown."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent
from signaling_server.dicomstore import peers
from signaling_server.dicomstore.scp import DICOM_SCP
from signaling_server.settings import Settings
from tests.waiting import eventually

from .conftest import Running, Start, order_body

SITE_A_AE = "NORTH_CR"
ASKED = [
    "SpecificCharacterSet=ISO_IR 192",
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "ReferringPhysicianName",
    "RequestedProcedureID", "RequestedProcedureDescription", "RequestedProcedurePriority", "StudyInstanceUID",
    "ScheduledProcedureStepSequence[0].Modality", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
]  # fmt: skip


async def run(*command: str) -> tuple[int, str]:
    """A DCMTK tool as a subprocess (TCP_NODELAY: DCMTK otherwise waits on Nagle between PDUs)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def dciodvfy_finds_no_fault(path: Path) -> bool:
    """dciodvfy knows no worklist IOD ("Information Object Not found"), but checks every value against its VR:
    no other error, and no dubious or invalid value (a PN without '^' would be one: the retired form). The file
    meta is findscu's (an answer is no SOP instance), so its group 0002 is not ours to judge."""
    _, output = await run("dciodvfy", "-new", str(path))
    faults = [
        line for line in output.splitlines()
        if (line.startswith("Error") and "Information Object Not found" not in line and "(0002," not in line)
        or "Value " in line
    ]  # fmt: skip
    assert not faults, output
    return True


async def findscu(server: Running, folder: Path, *keys: str, ae: str = SITE_A_AE) -> list[Dataset]:
    """`findscu -W` with `keys` (besides ASKED) as `ae`; the answers it wrote, in order."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    arguments = [k for key in [*ASKED, *keys] for k in ("-k", key)]
    code, output = await run(
        "findscu", "-W", "-aet", ae, "-aec", "TELEUS", "-X", "-od", str(folder), "-to", "20", *arguments,
        "127.0.0.1", str(server.app[DICOM_SCP].port),
    )  # fmt: skip
    assert code == 0, output
    return await asyncio.to_thread(answers_in, folder)


def answers_in(folder: Path) -> list[Dataset]:
    """The answers findscu -X wrote (rsp0001.dcm, …), in order."""
    return [pydicom.dcmread(path) for path in sorted(folder.glob("rsp*.dcm"))]


async def test_findscu_sees_its_sites_scheduled_orders_by_the_usual_keys(ordering: Running, tmp_path: Path) -> None:
    doctor = await ordering.api("doc_a")
    _, thyroid = await doctor.post("/api/v1/orders", order_body(scheduled_at="2026-12-08T09:30:00+08:00"))
    _, chest = await doctor.post("/api/v1/orders", order_body(
        patient={"id": "MZ-0002", "name": "Wang^Fang=王^芳", "birth_date": "1950-01-02", "sex": "M"},
        exam={"modality": "DX", "body_part": "CHEST", "description": "胸部正位片"}, priority="stat",
        reason="咳嗽两周", scheduled_at="2026-12-09T14:00:00+08:00",
    ))  # fmt: skip
    _, cancelled = await doctor.post("/api/v1/orders", order_body(scheduled_at="2026-12-08T10:00:00+08:00"))
    await doctor.post(f"/api/v1/orders/{cancelled['id']}/cancel", {"reason": "重复开单"})
    _, elsewhere = await (await ordering.api("doc_b")).post("/api/v1/orders", order_body())

    everything = await findscu(ordering, tmp_path / "all")
    assert [a.AccessionNumber for a in everything] == [thyroid["accession"], chest["accession"]]
    first = everything[0]
    assert first.SpecificCharacterSet == "ISO_IR 192"
    assert str(first.PatientName) == "张^三" and first.PatientID == "MZ-0001"
    assert (first.PatientBirthDate, first.PatientSex) == ("19700501", "F")
    assert str(first.ReferringPhysicianName) == "李^医生"  # the doctor's name "李医生", as a PN
    assert first.RequestedProcedureID == thyroid["accession"]
    assert first.RequestedProcedureDescription == "甲状腺超声" and first.RequestedProcedurePriority == "ROUTINE"
    assert first.StudyInstanceUID == thyroid["study_uid"]
    step = first.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle) == ("US", SITE_A_AE)
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20261208", "093000")
    assert step.ScheduledProcedureStepID == thyroid["accession"] and step.ScheduledPerformingPhysicianName == ""
    second = everything[1]
    assert str(second.PatientName) == "Wang^Fang=王^芳" and second.RequestedProcedurePriority == "STAT"
    assert "ImagingServiceRequestComments" not in first  # only what was asked for
    for path in await asyncio.to_thread(lambda: sorted((tmp_path / "all").glob("rsp*.dcm"))):
        assert await dciodvfy_finds_no_fault(path)

    async def accessions(name: str, *keys: str) -> list[str]:
        return [a.AccessionNumber for a in await findscu(ordering, tmp_path / name, *keys)]

    step_key = "ScheduledProcedureStepSequence[0]."
    assert await accessions("by-modality", f"{step_key}Modality=DX") == [chest["accession"]]
    assert await accessions("by-date", f"{step_key}ScheduledProcedureStepStartDate=20261208") == [
        thyroid["accession"]
    ]
    assert await accessions("by-range", f"{step_key}ScheduledProcedureStepStartDate=20261209-20261231") == [
        chest["accession"]
    ]
    assert await accessions("by-time", f"{step_key}ScheduledProcedureStepStartTime=1200-1800") == [
        chest["accession"]
    ]
    assert await accessions("by-station", f"{step_key}ScheduledStationAETitle={SITE_A_AE}") == [
        thyroid["accession"], chest["accession"]
    ]
    assert await accessions("by-other-station", f"{step_key}ScheduledStationAETitle=OTHER") == []
    assert await accessions("by-id", "PatientID=MZ-0002") == [chest["accession"]]
    assert await accessions("by-name", "PatientName=wang*") == [chest["accession"]]
    assert await accessions("by-chinese-name", "PatientName=张*") == [thyroid["accession"]]
    assert await accessions("by-accession", f"AccessionNumber={thyroid['accession']}") == [thyroid["accession"]]
    assert await accessions("nobody", "PatientName=Nobody*") == []

    async with ordering.app[DB]() as db:  # river's modality sees river's order only
        await peers.create_peer(db, "RIVER_US", ordering.world.site_b, ["127.0.0.1/32"])
    theirs = await findscu(ordering, tmp_path / "river", ae="RIVER_US")
    assert [a.AccessionNumber for a in theirs] == [elsewhere["accession"]]

    async def audited() -> list[AuditEvent] | None:
        async with ordering.app[DB]() as db:
            rows = list(await db.scalars(select(AuditEvent).where(AuditEvent.method == "C-FIND")))
        return rows if len(rows) >= 13 else None

    rows = await eventually(audited, what="an audit row per worklist query")
    assert rows[0].actor_id == SITE_A_AE and rows[0].action == "search" and rows[0].site_id == ordering.world.site_a
    assert rows[0].detail["orders"] == [thyroid["id"], chest["id"]]
    assert rows[1].detail["keys"] == {"Modality": "DX"} and rows[1].detail["orders"] == [chest["id"]]


async def test_an_order_for_one_station_is_on_that_stations_worklist_only(ordering: Running, tmp_path: Path) -> None:
    async with ordering.app[DB]() as db:
        await peers.create_peer(db, "NORTH_US", ordering.world.site_a, ["127.0.0.1/32"])
    doctor = await ordering.api("doc_a")
    _, order = await doctor.post("/api/v1/orders", order_body(station_ae="NORTH_US"))
    assert [a.AccessionNumber for a in await findscu(ordering, tmp_path / "cr")] == []
    answers = await findscu(ordering, tmp_path / "us", ae="NORTH_US")
    assert [a.AccessionNumber for a in answers] == [order["accession"]]
    assert answers[0].ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "NORTH_US"


async def test_a_stranger_is_refused_before_any_query(ordering: Running, tmp_path: Path) -> None:
    doctor = await ordering.api("doc_a")
    await doctor.post("/api/v1/orders", order_body())
    code, output = await run(
        "findscu", "-W", "-aet", "STRANGER", "-aec", "TELEUS", "-k", "PatientName", "-X", "-od", str(tmp_path),
        "127.0.0.1", str(ordering.app[DICOM_SCP].port),
    )  # fmt: skip
    assert code != 0 and "Rejected" in output, output
    assert answers_in(tmp_path) == []


async def test_the_worklist_can_be_left_out_of_the_listener(start: Start, tmp_path: Path) -> None:
    assert Settings.from_env({}).worklist and Settings.from_env({}).worklist_timezone == "Asia/Shanghai"
    assert not Settings.from_env({"TELEUS_WORKLIST": "off"}).worklist
    server = await start(dicom_port=0, worklist=False)
    code, output = await run(
        "findscu", "-W", "-aet", SITE_A_AE, "-aec", "TELEUS", "-k", "PatientName", "127.0.0.1",
        str(server.app[DICOM_SCP].port),
    )  # fmt: skip
    assert code != 0 and "No Acceptable Presentation Contexts" in output, output
    code, output = await run("echoscu", "-aet", SITE_A_AE, "-aec", "TELEUS", "127.0.0.1",
                             str(server.app[DICOM_SCP].port))  # fmt: skip
    assert code == 0, output  # the rest of the listener is there
