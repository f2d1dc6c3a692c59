"""The C-STORE / C-ECHO listener against real peers: DCMTK's storescu and echoscu, and a pynetdicom SCU."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.scp import CANNOT_UNDERSTAND, DICOM_SCP, SUCCESS
from signaling_server.settings import Settings

from .conftest import Running, Start
from .objects import SOP_CLASSES, image, read, real_file, snapshot

SITE_A_AE = "NORTH_CR"  # the seeded site A's AE title


async def _run(*command: str) -> tuple[int, str]:
    """A DCMTK tool as a subprocess, without blocking the loop the listener hands its work to."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def _listening(start: Start) -> tuple[Running, int]:
    server = await start(dicom_port=0)
    return server, server.app[DICOM_SCP].port


async def _study(server: Running, study_uid: str) -> Study:
    async with server.app[DB]() as db:
        study = await db.scalar(select(Study).where(Study.study_uid == study_uid))
    assert study is not None
    return study


async def test_storescu_stores_into_the_queue(start: Start, tmp_path: Path) -> None:
    server, port = await _listening(start)
    files = []
    for name in ("CT_small.dcm", "color3d_jpeg_baseline.dcm"):
        (path := tmp_path / name).write_bytes(real_file(name))
        files.append(str(path))
    code, output = await _run(
        "storescu", "-aet", SITE_A_AE, "-aec", "TELEUS", "-xy", "-to", "20", "127.0.0.1", str(port), *files
    )
    assert code == 0, output
    ct = await _study(server, str(read(real_file("CT_small.dcm")).StudyInstanceUID))
    assert ct.site_id == server.world.site_a and ct.state == "matched"
    assert ct.examined_at is not None and ct.due_at == ct.examined_at + timedelta(minutes=60)
    async with server.app[DB]() as db:
        instances = list(await db.scalars(select(Instance)))
    assert {(i.received_via, i.calling_ae) for i in instances} == {("c-store", SITE_A_AE)}
    cine = next(i for i in instances if i.frames == 120)
    assert cine.transfer_syntax_uid == "1.2.840.10008.1.2.4.50"  # JPEG Baseline kept as sent
    kept = read(await server.app[BLOBS].read(cine.sha256))
    assert kept == read(real_file("color3d_jpeg_baseline.dcm"))  # the dataset as sent (file meta is the listener's)


async def test_echo_and_unknown_callers(start: Start, tmp_path: Path) -> None:
    server, port = await _listening(start)
    code, output = await _run("echoscu", "-aet", SITE_A_AE, "-aec", "TELEUS", "127.0.0.1", str(port))
    assert code == 0, output
    before = await snapshot(server.app)
    code, output = await _run("echoscu", "-aet", "STRANGER", "-aec", "TELEUS", "127.0.0.1", str(port))
    assert code != 0 and "Rejected" in output, output
    (path := tmp_path / "ct.dcm").write_bytes(real_file("CT_small.dcm"))
    code, output = await _run("storescu", "-aet", "STRANGER", "-aec", "TELEUS", "127.0.0.1", str(port), str(path))
    assert code != 0 and "Rejected" in output, output
    assert await snapshot(server.app) == before

    def associate_as(title: str) -> tuple[bool, int | None]:
        ae = AE(title)
        ae.add_requested_context(SOP_CLASSES["CR"])
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS")
        try:
            rejection = assoc.acceptor.primitive
            return assoc.is_rejected, rejection.diagnostic if rejection is not None else None
        finally:
            if assoc.is_established:
                assoc.release()

    assert await asyncio.to_thread(associate_as, "STRANGER") == (True, 0x03)  # calling AE title not recognised
    assert (await asyncio.to_thread(associate_as, SITE_A_AE))[0] is False


async def test_pynetdicom_scu_stores_and_gets_a_status_per_object(start: Start) -> None:
    server, port = await _listening(start)
    uid = generate_uid()
    cr, impostor = read(image(modality="CR", sop_uid=uid, seed=1)), read(image(modality="CR", sop_uid=uid, seed=2))

    def send(datasets: list[Dataset]) -> list[tuple[int, str]]:
        ae = AE(SITE_A_AE)
        ae.add_requested_context(SOP_CLASSES["CR"], [str(cr.file_meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS")
        assert assoc.is_established
        try:
            answers = [assoc.send_c_store(ds) for ds in datasets]
        finally:
            assoc.release()
        return [(a.Status, str(a.get("ErrorComment", ""))) for a in answers]

    answers = await asyncio.to_thread(send, [cr, cr, impostor])
    assert answers[0] == (SUCCESS, "") and answers[1] == (SUCCESS, "")
    assert answers[2][0] == CANNOT_UNDERSTAND and answers[2][1].startswith("instance_conflict")
    study = await _study(server, str(cr.StudyInstanceUID))
    assert study.state == "matched" and study.instance_count == 1 and study.modality == "CR"
    assert study.examined_at is not None and study.due_at == study.examined_at + timedelta(minutes=30)


def test_the_listener_is_off_in_bare_settings_and_on_from_the_environment() -> None:
    assert Settings().dicom_port is None
    assert Settings.from_env({}).dicom_port == 11112
    assert Settings.from_env({"TELEUS_DICOM_PORT": "104"}).dicom_port == 104
    assert Settings.from_env({"TELEUS_DICOM_PORT": "off"}).dicom_port is None
    assert Settings.from_env({}).dicom_ae_title == "TELEUS"
