"""The edge's outbox against the real server: an upload that cannot get through waits on disk, survives a restart
of the agent, and lands exactly once in the reading queue when the server is reachable."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from edge_capture.dicom.outbox import Outbox, UploadRejected
from edge_capture.dicom.stow import StowClient
from edge_capture.dicom.ultrasound import build_still
from edge_capture.frames import SourceFrame
from edge_capture.sealing.keys import Keyring
from qc.labels import CaptureLabels
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.edge_capture.dicom.conftest import context, make_source
from tests.signaling_server.dicomstore.objects import snapshot, with_transfer_syntax
from tests.waiting import eventually


def _still() -> Any:
    source = make_source("thyroid")
    image = source.read()
    assert image is not None
    frame = SourceFrame(index=0, capture_time_ns=1_780_000_000_000_000_000, monotonic_ns=1, image=image)
    return build_still(frame, context(), CaptureLabels(structure="thyroid right lobe"))


async def test_a_still_waits_on_disk_through_a_restart_and_lands_once(people: Any, tmp_path: Path) -> None:
    client, world, _ = people
    spool = tmp_path / "outbox"
    ds = _still()
    uid = str(ds.SOPInstanceUID)

    # The link is down: nothing listens on this port. The still waits on disk.
    unreachable = StowClient("http://127.0.0.1:9", world.device_a_credential, connect_timeout=0.5)
    keys = Keyring.generate()
    offline = Outbox(spool, unreachable, keys=keys, base_delay=0.05, max_delay=0.2)
    await offline.start()
    await offline.enqueue(ds)
    await eventually(lambda: offline.status.last_error, what="a failed attempt")
    assert offline.status.pending == 1
    assert (spool / f"{uid}.dcm").exists()
    await offline.close()  # the agent is stopped (or killed): the file stays
    await unreachable.close()
    assert (spool / f"{uid}.dcm").exists()

    # The agent restarts with the server reachable: the outbox picks its folder up and uploads it.
    server = StowClient(str(client.make_url("/")), world.device_a_credential)
    online = Outbox(spool, server, keys=keys, base_delay=0.05, max_delay=0.2)
    await online.start()
    assert await asyncio.wait_for(online.acknowledged(uid), 20) == uid
    assert not (spool / f"{uid}.dcm").exists()

    # Sent again (a replay after a crash between upload and acknowledgement): still one instance.
    again = await online.enqueue(ds)
    assert await asyncio.wait_for(again, 20) == uid
    await online.close()
    await server.close()
    async with client.app[DB]() as db:
        count = await db.scalar(select(func.count(Instance.id)).where(Instance.sop_uid == uid))
        study = await db.scalar(select(Study).where(Study.study_uid == str(ds.StudyInstanceUID)))
    assert count == 1
    assert study is not None and study.site_id == world.site_a and study.state == "matched"


async def test_a_still_the_server_cannot_read_is_rejected_once_not_retried_for_ever(
    people: Any, tmp_path: Path
) -> None:
    """An unknown (here truncated) Transfer Syntax UID used to answer 0110H, which the outbox retried for ever."""
    client, world, _ = people
    spool = tmp_path / "outbox"
    spool.mkdir()
    ds = _still()
    uid = str(ds.SOPInstanceUID)
    raw = await asyncio.to_thread(_part10, ds)
    (spool / f"{uid}.dcm").write_bytes(with_transfer_syntax(raw, "1.2.840.10008.1.2.4"))  # as a crash left it
    before = await snapshot(client.app)
    server = StowClient(str(client.make_url("/")), world.device_a_credential)
    outbox = Outbox(spool, server, keys=Keyring.generate(), base_delay=0.05, max_delay=0.2)  # seals it at start
    await outbox.start()
    try:
        with pytest.raises(UploadRejected) as caught:
            await asyncio.wait_for(outbox.acknowledged(uid), 20)
    finally:
        await outbox.close()
        await server.close()
    assert caught.value.code == "unknown_transfer_syntax" and outbox.uploads == 1
    reason = json.loads((spool / "rejected" / f"{uid}.json").read_text())
    assert reason["error"] == "unknown_transfer_syntax" and "1.2.840.10008.1.2.4" in reason["message"]
    assert (spool / "rejected" / f"{uid}.dcm").exists() and not (spool / f"{uid}.dcm").exists()
    assert await snapshot(client.app) == before


def _part10(ds: Any) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_stills_upload_over_https_to_a_server_that_speaks_tls(db_url: str, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=db_url, tls_cert=str(cert), tls_key=str(key))
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=settings.ssl_context())
    await site.start()
    try:
        world = await seed(app)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"https://127.0.0.1:{port}/"
        ds = _still()
        # An edge that does not trust the certificate cannot upload (and keeps the file).
        untrusting = StowClient(base, world.device_a_credential)
        keys = Keyring.generate()
        outbox = Outbox(tmp_path / "untrusting", untrusting, keys=keys, base_delay=0.05, max_delay=0.2)
        await outbox.start()
        await outbox.enqueue(ds)
        await eventually(lambda: outbox.status.last_error, what="a refused attempt")
        assert outbox.status.pending == 1 and "certificate" in (outbox.status.last_error or "").lower()
        await outbox.close()
        await untrusting.close()
        # Given the centre's CA (here the self-signed certificate itself) it uploads over HTTPS.
        trusting = StowClient(base, world.device_a_credential, ssl_context=ssl.create_default_context(cafile=cert))
        outbox = Outbox(tmp_path / "untrusting", trusting, keys=keys, base_delay=0.05, max_delay=0.2)
        await outbox.start()
        uid = str(ds.SOPInstanceUID)
        assert await asyncio.wait_for(outbox.acknowledged(uid), 20) == uid
        await outbox.close()
        await trusting.close()
    finally:
        await runner.cleanup()
