"""DICOM's own paths leave audit rows too: each C-STORE a modality sends (actor: its AE title), each object the
forwarder sends to the regional PACS (accepted or not), and the associations the listener rejects (the first of each
address and reason at once, the rest summed up per minute), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.audit.dicom import FORWARDED, RECEIVED
from signaling_server.audit.rejections import ASSOCIATION, WINDOW
from signaling_server.db.models import AuditEvent
from signaling_server.dicomstore.scp import CANNOT_UNDERSTAND, DICOM_SCP, SUCCESS
from tests.waiting import eventually

from .conftest import Running, Start
from .objects import SOP_CLASSES, image, read, real_file
from .orthanc import free_port

SITE_A_AE = "NORTH_CR"


async def rows(server: Running, route: str) -> list[AuditEvent]:
    async with server.app[DB]() as db:
        query = select(AuditEvent).where(AuditEvent.route == route).order_by(AuditEvent.seq)
        return list(await db.scalars(query))


async def test_each_c_store_leaves_a_row_naming_the_calling_ae_and_the_status(start: Start) -> None:
    server = await start(dicom_port=0)
    port = server.app[DICOM_SCP].port
    uid = generate_uid()
    cr, impostor = read(image(modality="CR", sop_uid=uid, seed=1)), read(image(modality="CR", sop_uid=uid, seed=2))

    def send(datasets: list[Dataset]) -> list[int]:
        ae = AE(SITE_A_AE)
        ae.add_requested_context(SOP_CLASSES["CR"], [str(cr.file_meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS")
        assert assoc.is_established
        try:
            return [int(assoc.send_c_store(ds).Status) for ds in datasets]
        finally:
            assoc.release()

    assert await asyncio.to_thread(send, [cr, impostor]) == [SUCCESS, CANNOT_UNDERSTAND]
    stored, refused = await rows(server, RECEIVED)
    for row in (stored, refused):
        assert (row.actor_kind, row.actor_id, row.actor_role, row.site_id) == ("ae", SITE_A_AE, "modality",
                                                                                server.world.site_a)
        assert (row.action, row.method, row.object_kind, row.object_id) == ("store", "C-STORE", "instance", uid)
        assert row.client == "127.0.0.1" and row.study_id is not None and row.patient_id is not None
    assert (stored.status, stored.outcome) == (SUCCESS, "ok")
    assert (refused.status, refused.outcome) == (CANNOT_UNDERSTAND, "instance_conflict")


@pytest.fixture
def pacs() -> Iterator[str]:
    """A real DICOM storage SCP (pynetdicom) standing in for the regional PACS: it accepts every object."""
    ae = AE("PACS")
    for context in AllStoragePresentationContexts:
        assert context.abstract_syntax is not None
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
    yield f"PACS@127.0.0.1:{server.server_address[1]}"
    ae.shutdown()


@pytest.mark.parametrize("reachable", [True, False])
async def test_each_forwarded_object_leaves_a_row(start: Start, pacs: str, reachable: bool) -> None:
    destination = pacs if reachable else f"PACS@127.0.0.1:{free_port()}"
    server = await start(pacs=destination, forward_backoff_seconds=0.05, forward_max_attempts=1)
    stored = await server.store(image(modality="CR", study_uid=generate_uid()))
    [row] = await eventually(lambda: rows(server, FORWARDED), what="the forwarder's audit row")
    assert (row.actor_kind, row.actor_id, row.action, row.method) == ("server", "TELEUS", "send", "C-STORE")
    assert (row.client, row.object_kind, row.object_id) == (destination, "instance", stored.sop_uid)
    assert (row.study_id, row.patient_id) == (stored.study_id, stored.patient_id)
    if reachable:
        assert (row.status, row.outcome, row.detail) == (0, "ok", {})
    else:
        assert (row.status, row.outcome) == (1, "not_sent") and "association" in row.detail["error"]


def _knock(port: int, title: str, source: str = "127.0.0.1") -> bool:
    """Ask for an association as `title` from `source` (any 127/8 address is this machine); whether it was rejected."""
    ae = AE(title)
    ae.add_requested_context(SOP_CLASSES["CR"])
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS", bind_address=(source, 0))
    if assoc.is_established:
        assoc.release()
    return bool(assoc.is_rejected)


async def test_rejected_associations_leave_rows_and_a_flood_is_summed_up(start: Start, tmp_path: Path) -> None:
    server = await start(dicom_port=0)
    scp = server.app[DICOM_SCP]
    port = scp.port
    (still := tmp_path / "CT_small.dcm").write_bytes(real_file("CT_small.dcm"))
    storescu = await asyncio.create_subprocess_exec(
        "storescu", "-aet", "STRANGER", "-aec", "TELEUS", "-to", "20", "127.0.0.1", str(port), str(still),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip
    output, _ = await asyncio.wait_for(storescu.communicate(), 60)
    assert storescu.returncode != 0 and b"Association Rejected" in output, output
    assert await asyncio.to_thread(_knock, port, SITE_A_AE, "127.0.0.2")  # a known AE title from elsewhere

    async def firsts() -> list[AuditEvent]:
        found = await rows(server, ASSOCIATION)
        return found if len(found) == 2 else []

    stranger, elsewhere = await eventually(firsts, timeout=30)
    assert (stranger.actor_kind, stranger.actor_id, stranger.client) == ("ae", "STRANGER", "127.0.0.1")
    assert (stranger.action, stranger.method, stranger.status, stranger.outcome) == ("associate", "A-ASSOCIATE", 1,
                                                                                   "unknown_ae")  # fmt: skip
    assert stranger.detail["result"] == "rejected" and stranger.detail["kind"] == "first"
    assert stranger.site_id is None and stranger.study_id is None and stranger.patient_id is None
    assert (elsewhere.actor_id, elsewhere.client, elsewhere.outcome) == (SITE_A_AE, "127.0.0.2", "address_not_allowed")
    assert elsewhere.site_id == server.world.site_a and "outside" in elsewhere.detail["why"]

    def flood() -> list[bool]:
        return [_knock(port, f"FLOOD{n % 3}") for n in range(40)]

    assert await asyncio.to_thread(flood) == [True] * 40
    scp.summarise_rejections(datetime.now(UTC) + WINDOW)

    async def summed() -> list[AuditEvent]:
        found = await rows(server, ASSOCIATION)
        return found[2:] if len(found) == 3 else []

    (summary,) = await eventually(summed, timeout=30)
    assert (summary.actor_id, summary.client, summary.outcome) == ("STRANGER", "127.0.0.1", "unknown_ae")
    assert summary.detail["kind"] == "summary" and summary.detail["count"] == 40
    assert summary.detail["ae_titles"] == ["STRANGER", "FLOOD0", "FLOOD1", "FLOOD2"]
    assert len(await rows(server, ASSOCIATION)) == 3  # 42 rejections, 3 rows
