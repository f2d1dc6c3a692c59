"""DICOM TLS: the listener against DCMTK's `storescu +tls` and pynetdicom, and the forward to a PACS that speaks TLS,
with a CA, server and client certificates made in the test."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.events import Event
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import ForwardJob
from signaling_server.dicomstore import peers, tls
from signaling_server.dicomstore.scp import DICOM_SCP, SUCCESS
from signaling_server.settings import Settings
from tests.waiting import eventually

from .certificates import Authority, Issued
from .conftest import Running, Start
from .objects import SOP_CLASSES, image, read, real_file, snapshot
from .orthanc import free_port
from .test_scp import SITE_A_AE, _run, _study


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    north: Issued  # the certificate pinned for north's modality
    other_client: Issued  # signed by the same CA, pinned by nobody
    stranger: Issued  # signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(folder, "district"), Authority(folder / "rogue", "rogue")
    return Pki(ca, ca.issue("teleus-server", server=True), ca.issue("north-cr"), ca.issue("north-other"),
               rogue.issue("north-cr"))  # fmt: skip


async def _tls_server(start: Start, pki: Pki, **settings: Any) -> tuple[Running, int]:
    server = await start(
        dicom_tls_port=0, dicom_tls_cert=str(pki.server.cert), dicom_tls_key=str(pki.server.key),
        dicom_tls_client_ca=str(pki.ca.cert), **settings,
    )  # fmt: skip
    async with server.app[DB]() as db:
        peer = await peers.find_peer(db, SITE_A_AE)
        await peers.update_peer(db, peer.id, peers.PeerChanges(pin=peers.Pin(pki.north.sha256)))
    return server, server.app[DICOM_SCP].tls_port


def _storescu(port: int, pki: Pki, client: Issued | None, *files: str) -> list[str]:
    identity = ["+tls", str(client.key), str(client.cert), "-pw"] if client else ["+tla"]
    return ["storescu", *identity, "+cf", str(pki.ca.cert), "-aet", SITE_A_AE, "-aec", "TELEUS",
            "-to", "20", "127.0.0.1", str(port), *files]  # fmt: skip


async def test_storescu_over_tls_with_the_pinned_certificate_stores(
    start: Start, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, port = await _tls_server(start, pki)
    (ct := tmp_path / "ct.dcm").write_bytes(real_file("CT_small.dcm"))
    before = await snapshot(server.app)

    code, output = await _run(*_storescu(port, pki, None, str(ct)))  # no client certificate: no handshake
    assert code != 0, output
    code, output = await _run(*_storescu(port, pki, pki.stranger, str(ct)))  # another CA's: no handshake
    assert code != 0, output
    assert await snapshot(server.app) == before

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "TLS handshake with 127.0.0.1 failed" in r.getMessage()]

    await eventually(lambda: len(failures()) >= 2, what="two logged handshake failures")

    code, output = await _run(*_storescu(port, pki, pki.north, str(ct)))
    assert code == 0, output
    study = await _study(server, str(read(real_file("CT_small.dcm")).StudyInstanceUID))
    assert study.site_id == server.world.site_a


async def test_a_certificate_of_the_right_ca_but_not_the_pinned_one_is_rejected(start: Start, pki: Pki) -> None:
    server, port = await _tls_server(start, pki)
    before = await snapshot(server.app)

    def associate(client: Issued) -> tuple[bool, int | None]:
        ae = AE(SITE_A_AE)
        ae.add_requested_context(SOP_CLASSES["CR"])
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS",
                             tls_args=(client.client_context(pki.ca.cert), "127.0.0.1"))  # fmt: skip
        try:
            rejection = assoc.acceptor.primitive if assoc.is_rejected else None
            return assoc.is_established, rejection.diagnostic if rejection is not None else None
        finally:
            if assoc.is_established:
                assoc.release()

    assert await asyncio.to_thread(associate, pki.other_client) == (False, 0x03)  # certificate_mismatch
    assert await asyncio.to_thread(associate, pki.north) == (True, None)
    assert await snapshot(server.app) == before


async def test_a_silent_client_does_not_hold_up_the_tls_listener(start: Start, pki: Pki, tmp_path: Path) -> None:
    """The handshake runs in the connection's thread: a client that connects and says nothing blocks nobody."""
    _, port = await _tls_server(start, pki)
    (cr := tmp_path / "cr.dcm").write_bytes(image(modality="CR"))
    with socket.create_connection(("127.0.0.1", port)):
        code, output = await _run(*_storescu(port, pki, pki.north, str(cr)))
    assert code == 0, output


async def test_optional_client_certificates_let_an_unpinned_peer_in_without_one(start: Start, pki: Pki) -> None:
    server, port = await _tls_server(start, pki, dicom_tls_client_cert_required=False)
    async with server.app[DB]() as db:
        peer = await peers.find_peer(db, SITE_A_AE)
        await peers.update_peer(db, peer.id, peers.PeerChanges(unpin=True))

    def associate() -> bool:
        ae = AE(SITE_A_AE)
        ae.add_requested_context(SOP_CLASSES["CR"])
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca.cert))
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS", tls_args=(context, "127.0.0.1"))
        established = assoc.is_established
        if established:
            assoc.release()
        return established

    assert await asyncio.to_thread(associate)


def test_tls_settings() -> None:
    assert Settings().dicom_tls_port is None and not Settings().pacs_tls
    env = Settings.from_env({"TELEUS_DICOM_TLS_PORT": "2762", "TELEUS_DICOM_TLS_CLIENT_CERT": "optional",
                             "TELEUS_PACS_TLS": "1", "TELEUS_PACS_TLS_CA": "/etc/pacs-ca.pem"})  # fmt: skip
    assert (env.dicom_tls_port, env.dicom_tls_client_cert_required) == (2762, False)
    assert (env.pacs_tls, env.pacs_tls_ca) == (True, "/etc/pacs-ca.pem")
    with pytest.raises(ValueError, match="TELEUS_DICOM_TLS_CERT"):
        tls.listener_context(Settings(dicom_tls_port=0))
    assert tls.parse_pin("AB:" * 31 + "AB") == "ab" * 32
    with pytest.raises(ValueError):
        tls.parse_pin("abc")


# --- the forward to a PACS over TLS ---------------------------------------------------------------------------------


@dataclass
class TlsPacs:
    """A pynetdicom Storage SCP over TLS that wants a client certificate of the test CA: what it received."""

    port: int
    received: list[Dataset] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)

    @property
    def destination(self) -> str:
        return f"PACS@127.0.0.1:{self.port}"


@contextmanager
def tls_pacs(pki: Pki, port: int = 0) -> Iterator[TlsPacs]:
    ae = AE("PACS")
    for sop_class in SOP_CLASSES.values():
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    pacs = TlsPacs(port)

    def on_store(event: Event) -> int:
        pacs.received.append(event.dataset)
        pacs.callers.append(str(event.assoc.requestor.ae_title))
        return SUCCESS

    context = pki.ca.issue("pacs", server=True).server_context(client_ca=pki.ca.cert)
    server = ae.start_server(("127.0.0.1", port), block=False, ssl_context=context,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    pacs.port = int(server.server_address[1])
    try:
        yield pacs
    finally:
        ae.shutdown()


def _pacs_settings(pki: Pki, pacs: str, **more: Any) -> dict[str, Any]:
    client = pki.ca.issue("teleus-forward")
    return {"pacs": pacs, "pacs_tls": True, "pacs_tls_ca": str(pki.ca.cert), "pacs_tls_cert": str(client.cert),
            "pacs_tls_key": str(client.key), "forward_backoff_seconds": 0.05, **more}  # fmt: skip


async def _jobs(server: Running) -> list[ForwardJob]:
    async with server.app[DB]() as db:
        return list(await db.scalars(select(ForwardJob).order_by(ForwardJob.id)))


async def _settled(server: Running) -> list[ForwardJob]:
    """The jobs, once there are some and none is pending."""
    jobs = await _jobs(server)
    return jobs if jobs and all(j.state != "pending" for j in jobs) else []


async def test_forwarding_to_a_tls_pacs(start: Start, pki: Pki) -> None:
    with tls_pacs(pki) as pacs:
        server = await start(**_pacs_settings(pki, pacs.destination))
        sent = image(modality="CR", name="李^四")
        await server.store(sent)
        [job] = await eventually(lambda: _settled(server), what="the job to be sent")
    assert (job.state, job.attempts, job.last_error) == ("sent", 1, None)
    assert pacs.received[0] == read(sent) and pacs.callers == ["TELEUS"]


async def test_a_pacs_whose_certificate_we_do_not_trust_gets_nothing(start: Start, pki: Pki, tmp_path: Path) -> None:
    other = Authority(tmp_path / "elsewhere", "elsewhere")
    with tls_pacs(pki) as pacs:
        server = await start(**_pacs_settings(pki, pacs.destination, pacs_tls_ca=str(other.cert),
                                              forward_max_attempts=1))  # fmt: skip
        await server.store(image(modality="CR"))

        async def failed() -> list[ForwardJob]:
            return [j for j in await _jobs(server) if j.state == "failed"]

        [job] = await eventually(failed, what="the job to fail")
        assert pacs.received == []
    assert job.last_error is not None and "certificate verify failed" in job.last_error, job.last_error


async def test_an_admin_requeues_what_failed_while_the_pacs_was_down(start: Start, pki: Pki) -> None:
    port = free_port()  # nothing listens there yet
    server = await start(**_pacs_settings(pki, f"PACS@127.0.0.1:{port}", forward_max_attempts=2))
    await server.store(image(modality="CR"))

    async def failed() -> list[ForwardJob]:
        return [j for j in await _jobs(server) if j.state == "failed"]

    [job] = await eventually(failed, what="the job to fail")
    assert job.attempts == 2 and job.last_error is not None
    admin = await server.api("admin")
    with tls_pacs(pki, port) as pacs:
        status, requeued = await admin.post(f"/api/v1/forward-jobs/{job.id}/requeue")
        assert status == 200 and (requeued["state"], requeued["attempts"]) == ("pending", 0), requeued
        [job] = await eventually(lambda: _settled(server), what="the re-queued job to be sent")
    assert len(pacs.received) == 1
    assert (job.state, job.attempts, job.last_error) == ("sent", 1, None)
