"""The C-STORE / C-ECHO listener against real peers: DCMTK's storescu and echoscu, and a pynetdicom SCU."""

from __future__ import annotations

import asyncio
import socket
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore import peers
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.scp import CANNOT_UNDERSTAND, DICOM_SCP, SUCCESS
from signaling_server.settings import Settings
from tests.waiting import eventually

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


# --- DICOM peers at association (peers.py): the finding "C-STORE is authenticated by the calling AE title alone" ---


def _associate(port: int, title: str, *, source: str = "127.0.0.1") -> tuple[str, int | None]:
    """Open an association as `title` from `source` (any 127/8 address is this machine); how it went."""
    ae = AE(title)
    ae.add_requested_context(SOP_CLASSES["CR"])
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS", bind_address=(source, 0))
    try:
        if assoc.is_rejected:
            rejection = assoc.acceptor.primitive
            return "rejected", rejection.diagnostic if rejection is not None else None
        return ("established" if assoc.is_established else "failed"), None
    finally:
        if assoc.is_established:
            assoc.release()


def _store_as(port: int, title: str, raw: bytes, *, source: str = "127.0.0.1") -> tuple[str, int | None]:
    """C-STORE one object as `title` from `source`: how the association went, and the status if one came."""
    ds = read(raw)
    ae = AE(title)
    ae.add_requested_context(ds.SOPClassUID, [str(ds.file_meta.TransferSyntaxUID)])
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS", bind_address=(source, 0))
    if not assoc.is_established:
        return ("rejected" if assoc.is_rejected else "failed"), None
    try:
        answer = assoc.send_c_store(ds)
    finally:
        if assoc.is_established:
            assoc.release()
    status = answer.get("Status") if answer else None
    return ("aborted" if assoc.is_aborted else "released"), status


async def _change_peer(server: Running, ae_title: str, **changes: Any) -> None:
    async with server.app[DB]() as db:
        peer = await peers.find_peer(db, ae_title)
        await peers.update_peer(db, peer.id, peers.PeerChanges(**changes))


async def test_a_known_ae_title_from_elsewhere_stores_nothing(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The finding's probe: C-STORE calling as site north's AE from an address outside its networks, an unknown AE,
    a disabled peer, and a peer that must show a certificate over plain TCP are all rejected at association
    (A-ASSOCIATE-RJ: calling AE title not recognised), each with its reason in the log, and nothing is stored."""
    server, port = await _listening(start)
    before = await snapshot(server.app)
    probe = image(modality="CR")
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, probe, source="127.0.0.2") == ("rejected", None)
    assert await asyncio.to_thread(_associate, port, SITE_A_AE, source="127.0.0.2") == ("rejected", 0x03)
    assert await asyncio.to_thread(_associate, port, "RIVER_CR") == ("rejected", 0x03)
    await _change_peer(server, SITE_A_AE, enabled=False)
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, probe) == ("rejected", None)
    await _change_peer(server, SITE_A_AE, enabled=True, pin=peers.Pin("ab" * 32))
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, probe) == ("rejected", None)
    assert await snapshot(server.app) == before
    reasons = [r.getMessage() for r in caplog.records if "rejected:" in r.getMessage()]
    assert any("address_not_allowed (127.0.0.2 is outside 127.0.0.1/32)" in r for r in reasons), reasons
    assert any("'RIVER_CR'" in r and "unknown_ae" in r for r in reasons), reasons
    assert any("disabled" in r for r in reasons) and any("certificate_required" in r for r in reasons), reasons

    await _change_peer(server, SITE_A_AE, unpin=True, networks=["127.0.0.0/30"])
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, probe, source="127.0.0.2") == ("released", SUCCESS)
    study = await _study(server, str(read(probe).StudyInstanceUID))
    assert study.site_id == server.world.site_a


async def test_a_dataset_over_the_peers_limit_aborts_and_stores_nothing(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server, port = await _listening(start)
    await _change_peer(server, SITE_A_AE, max_dataset_bytes=20_000)
    before = await snapshot(server.app)
    ct = real_file("CT_small.dcm")  # about 39 KB of dataset
    assert len(ct) > 20_000
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, ct) == ("aborted", None)
    assert await snapshot(server.app) == before
    assert any("over its limit of 20000 bytes" in r.getMessage() for r in caplog.records)
    small = image(modality="CR")  # under the limit, on a new association: stored
    assert len(small) < 20_000
    assert await asyncio.to_thread(_store_as, port, SITE_A_AE, small) == ("released", SUCCESS)


async def test_a_peer_gets_no_more_associations_than_its_limit(start: Start) -> None:
    server, port = await _listening(start)
    await _change_peer(server, SITE_A_AE, max_associations=1)

    def two_at_once() -> tuple[bool, tuple[int, int, int] | None]:
        ae = AE(SITE_A_AE)
        ae.add_requested_context(SOP_CLASSES["CR"])
        first = ae.associate("127.0.0.1", port, ae_title="TELEUS")
        try:
            second = ae.associate("127.0.0.1", port, ae_title="TELEUS")
            rejection = second.acceptor.primitive if second.is_rejected else None
            if second.is_established:
                second.release()
            answer = (rejection.result, rejection.result_source, rejection.diagnostic) if rejection else None
            return first.is_established, answer
        finally:
            if first.is_established:
                first.release()

    # the first stays open; the second is rejected-transient, presentation provider, local limit exceeded
    assert await asyncio.to_thread(two_at_once) == (True, (0x02, 0x03, 0x02))

    async def admitted_again() -> bool:  # once the first has ended on the listener's side too
        return (await asyncio.to_thread(_associate, port, SITE_A_AE))[0] == "established"

    await eventually(admitted_again, what="an association once the first one ended")


async def test_a_pdu_declaring_gigabytes_ends_the_connection_before_it_is_read(start: Start) -> None:
    _, port = await _listening(start)

    def knock() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(struct.pack(">BBL", 0x01, 0, 2**31) + b"\x00" * 1024)  # an A-ASSOCIATE-RQ of 2 GiB
            try:
                return conn.recv(1)
            except ConnectionResetError:
                return b""

    assert await asyncio.to_thread(knock) == b""  # closed by the listener, not after reading 2 GiB


async def test_a_pdu_that_stalls_half_way_ends_the_connection(start: Start) -> None:
    """One byte, then nothing: the listener gives up after its network timeout instead of holding an association."""
    server, port = await _listening(start)
    server.app[DICOM_SCP].ae.network_timeout = 1  # the real AE's own setting (60 s by default), read per connection

    def stall() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(b"\x01")  # the first byte of an A-ASSOCIATE-RQ
            try:
                return conn.recv(1)
            except ConnectionResetError:
                return b""

    assert await asyncio.to_thread(stall) == b""
    assert (await asyncio.to_thread(_associate, port, SITE_A_AE))[0] == "established"
