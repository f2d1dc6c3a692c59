"""`teleus demo` / `make demo`: the server on SQLite, a seeded site with people and one edge device, and that edge
streaming the synthetic thyroid. Prints the console URL and the demo logins once the edge is in the waiting
consultation's room (or after EDGE_WAIT_SECONDS).

The edge agent runs as a child process (`python -m edge_capture`, as at a clinic; the server imports nothing of
the edge), with the device credential in its environment rather than on its command line. Ctrl-C or SIGTERM stops
the edge first (SIGTERM, then SIGKILL after EDGE_STOP_SECONDS), then the server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select

from signaling_server import admin
from signaling_server.access import assignments, grants
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.audit.access_log import AccessLogger
from signaling_server.auth.identity import SITE_ROLES
from signaling_server.consultations import service
from signaling_server.consultations.state import OPEN_STATES
from signaling_server.db.models import Consultation, Device, Site, User
from signaling_server.dicomstore import peers
from signaling_server.settings import Settings
from signaling_server.signaling.rooms import ROOMS

log = logging.getLogger(__name__)

EDGE_WAIT_SECONDS = 60.0  # opening the synthetic source takes a few seconds; a slow machine gets this long
EDGE_STOP_SECONDS = 10.0
DEMO_PASSWORD = "teleus-demo"
DEMO_PEOPLE = [
    ("sono", "Li Na (sonographer)", "sonographer"),
    ("doctor", "Liu Yang (community doctor)", "doctor"),
    ("expert", "Dr Wang Fang (expert)", "expert"),
    ("expert2", "Dr Chen Jie (expert)", "expert"),
    ("trainer", "Zhao Min (trainer)", "trainer"),
    ("admin", "Centre administrator", "admin"),
    ("registrar", "Sun Li (regional registrar)", "registrar"),
]
DEMO_EXPERTS = ("expert", "expert2")  # serve the demo site (docs/SECURITY.md §2): experts see the sites they serve


async def seed(app: web.Application) -> str:
    """Create the demo site, people and device once; return a fresh device credential every run."""
    async with app[DB]() as db:
        site = (await db.scalars(select(Site).where(Site.code == "demo"))).first()
        if site is None:
            site = await admin.create_site(db, "demo", "Demo Community Health Centre")
            await peers.create_peer(db, "DEMO_US", site.id, ["127.0.0.0/8", "::1/128"])  # modalities on this machine
            for username, name, role in DEMO_PEOPLE:
                site_id = site.id if role in SITE_ROLES else None
                await admin.create_user(db, username, name, role, DEMO_PASSWORD, site_id)
            await admin.register_device(db, site.id, "demo ultrasound (synthetic thyroid)")
        for username in DEMO_EXPERTS:  # also for a demo database made before site assignments existed
            expert = (await db.scalars(select(User).where(User.username == username))).first()
            if expert is not None:
                await assignments.assign(db, expert.id, site.id, by=None, at=datetime.now(UTC))
        await db.commit()
        device = (await db.scalars(select(Device).where(Device.site_id == site.id))).first()
        assert device is not None
        _, credential = await admin.rotate_device(db, device.id)
        waiting = await db.scalars(select(Consultation).where(Consultation.state.in_(OPEN_STATES)))
        if waiting.first() is None:
            sono = (await db.scalars(select(User).where(User.username == "sono"))).one()
            consultation = await service.create(
                db,
                sono,
                {
                    "exam_type": "thyroid",
                    "patient": {"id": "DEMO-001", "name": "张^三", "sex": "F", "birth_date": "1968-03-14"},
                    "accession": "DEMO1",
                },
            )
            trainer = (await db.scalars(select(User).where(User.username == "trainer"))).first()
            if trainer is not None:  # invited to observe, as the sonographer would (a trainer sees no live view else)
                await grants.open_for_consultation(
                    db, consultation, trainer.id, by=sono.id, at=datetime.now(UTC), reason="demo: invited to observe"
                )
                await db.commit()
    return credential


# X-ray/CT studies for the reading queue: pydicom's own small test images, re-labelled as the demo centre's patients.
DEMO_STUDIES = [
    ("CT_small.dcm", "DEMO-101", "刘^洋", "STAT", "CT chest, query pneumothorax"),
    ("MR_small.dcm", "DEMO-102", "Zhou^Lei", "ROUTINE", "MR knee"),
]


async def seed_queue(app: web.Application, site_id: str) -> None:
    """Put a few studies in the reading queue (once), stored through the same ingest as a modality's C-STORE."""
    from io import BytesIO

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from signaling_server.db.models import Study
    from signaling_server.dicomstore.ingest import store_instance

    async with app[DB]() as db:
        if (await db.scalars(select(Study.id).where(Study.site_id == site_id))).first() is not None:
            return
    for name, patient_id, patient_name, priority, description in DEMO_STUDIES:
        path = get_testdata_file(name)
        if path is None:
            continue
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID, ds.PatientName = patient_id, patient_name
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber, ds.StudyDescription = patient_id.replace("DEMO-", "ACC"), description
        ds.RequestedProcedurePriority = priority
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        await store_instance(app, buffer.getvalue(), site_id=site_id, received_via="demo")


def edge_url(host: str, port: int) -> str:
    """Where the demo's edge finds this server: over loopback when the server listens on every address."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_edge(url: str, credential: str, data_dir: Path) -> asyncio.subprocess.Process:
    """`python -m edge_capture` streaming the synthetic thyroid to this server, as the demo's device."""
    env = {**os.environ, "TELEUS_DEVICE_CREDENTIAL": credential}
    env.pop("TELEUS_DEVICE_CREDENTIAL_FILE", None)
    # The edge refuses plain http to another machine; this one is the same PC, on whichever address it listens.
    host = urlsplit(url).hostname or ""
    insecure = [] if _loopback(host) else ["--allow-insecure-http"]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_capture", "--server", url, *insecure, "--source", "synthetic:thyroid",
        "--spool", str(data_dir / "edge-outbox"), "--recordings", str(data_dir / "edge-recordings"),
        env=env,
    )  # fmt: skip


async def stop_edge(edge: asyncio.subprocess.Process) -> None:
    if edge.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            edge.terminate()  # the agent finishes its recordings and closes its peer connections
        try:
            await asyncio.wait_for(edge.wait(), EDGE_STOP_SECONDS)
        except TimeoutError:
            log.warning("the demo edge did not stop within %.0f s; killing it", EDGE_STOP_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                edge.kill()
            await edge.wait()


async def wait_for_edge(app: web.Application, edge: asyncio.subprocess.Process, timeout: float) -> bool:
    """Until the edge is in the room of an open consultation (True), it exited, or `timeout` passed."""
    async with app[DB]() as db:
        waiting = list(await db.scalars(select(Consultation.id).where(Consultation.state.in_(OPEN_STATES))))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while edge.returncode is None and loop.time() < deadline:
        rooms = [app[ROOMS].existing(cid) for cid in waiting]
        if any(room is not None and room.edge() is not None for room in rooms):
            return True
        await asyncio.sleep(0.2)
    return False


async def _main(port: int, data_dir: Path) -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the edge polls every second
    settings = Settings.from_env().with_overrides(data_dir=data_dir, port=port)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=AccessLogger)  # no query strings (patient names)
    await runner.setup()
    await web.TCPSite(runner, settings.host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    credential = await seed(app)
    async with app[DB]() as db:
        demo_site = (await db.scalars(select(Site).where(Site.code == "demo"))).one()
    await seed_queue(app, demo_site.id)
    url = f"http://{settings.host}:{port}/"
    edge = await start_edge(edge_url(settings.host, port), credential, data_dir)
    try:
        waited = asyncio.create_task(wait_for_edge(app, edge, EDGE_WAIT_SECONDS))
        await asyncio.wait([waited, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            if not waited.result():
                log.warning("the demo edge is not streaming yet (exit status %s); see its log above", edge.returncode)
            print(
                f"\nteleus demo is running.\n  console:  {url}\n  logins (password '{DEMO_PASSWORD}'):\n"
                + "".join(f"    {u:<8} {name}\n" for u, name, _ in DEMO_PEOPLE)
                + "  A thyroid consultation is waiting: sign in as 'expert' and join it; sign in as 'sono' in "
                "another\n  browser profile to see the sonographer's screen. The edge streams a synthetic thyroid "
                "at 720p30.\n  The reading queue (#/queue) holds a STAT CT and a routine MR; captures from the live "
                "view join it.\n  Ctrl-C stops.\n",
                flush=True,
            )
            await stop.wait()
        waited.cancel()
    finally:
        await stop_edge(edge)
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    os.umask(0o077)  # the demo's data folder and the edge's spools: this account's only (docs/SECURITY.md §9)
    asyncio.run(_main(args.port, Path(args.data_dir)))
    return 0
