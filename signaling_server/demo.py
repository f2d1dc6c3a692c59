"""`teleus demo` / `make demo`: the server on SQLite, a seeded site with people and one edge device, and that edge
streaming the synthetic thyroid, all in one process. Prints the console URL and the demo logins."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from edge_capture.agent import EdgeAgent, EdgeConfig
from signaling_server import admin
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.consultations import service
from signaling_server.consultations.state import OPEN_STATES
from signaling_server.db.models import Consultation, Device, Site, User
from signaling_server.settings import Settings

log = logging.getLogger(__name__)

DEMO_PASSWORD = "teleus-demo"
DEMO_PEOPLE = [
    ("sono", "Li Na (sonographer)", "sonographer"),
    ("expert", "Dr Wang Fang (expert)", "expert"),
    ("expert2", "Dr Chen Jie (expert)", "expert"),
    ("trainer", "Zhao Min (trainer)", "trainer"),
    ("admin", "Centre administrator", "admin"),
]


async def seed(app: web.Application) -> str:
    """Create the demo site, people and device once; return a fresh device credential every run."""
    async with app[DB]() as db:
        site = (await db.scalars(select(Site).where(Site.code == "demo"))).first()
        if site is None:
            site = await admin.create_site(db, "demo", "Demo Community Health Centre", "DEMO_US")
            for username, name, role in DEMO_PEOPLE:
                site_id = site.id if role == "sonographer" else None
                await admin.create_user(db, username, name, role, DEMO_PASSWORD, site_id)
            await admin.register_device(db, site.id, "demo ultrasound (synthetic thyroid)")
        device = (await db.scalars(select(Device).where(Device.site_id == site.id))).first()
        assert device is not None
        _, credential = await admin.rotate_device(db, device.id)
        waiting = await db.scalars(select(Consultation).where(Consultation.state.in_(OPEN_STATES)))
        if waiting.first() is None:
            sono = (await db.scalars(select(User).where(User.username == "sono"))).one()
            await service.create(
                db,
                sono,
                {
                    "exam_type": "thyroid",
                    "patient": {"id": "DEMO-001", "name": "张^三", "sex": "F", "birth_date": "1968-03-14"},
                    "accession": "DEMO1",
                },
            )
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


async def _main(port: int, data_dir: Path) -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the edge polls every second
    settings = Settings.from_env().with_overrides(data_dir=data_dir, port=port)
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.host, port).start()
    credential = await seed(app)
    async with app[DB]() as db:
        demo_site = (await db.scalars(select(Site).where(Site.code == "demo"))).one()
    await seed_queue(app, demo_site.id)
    url = f"http://{settings.host}:{port}/"
    edge = EdgeAgent(
        EdgeConfig(
            server_url=url, credential=credential, source="synthetic:thyroid", spool_dir=data_dir / "edge-outbox"
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    edge_task = asyncio.create_task(edge.run())
    await asyncio.wait([asyncio.create_task(edge.ready.wait()), edge_task], return_when=asyncio.FIRST_COMPLETED)
    print(
        f"\nteleus demo is running.\n  console:  {url}\n  logins (password '{DEMO_PASSWORD}'):\n"
        + "".join(f"    {u:<8} {name}\n" for u, name, _ in DEMO_PEOPLE)
        + "  A thyroid consultation is waiting: sign in as 'expert' and join it; sign in as 'sono' in another\n"
        "  browser profile to see the sonographer's screen. The edge streams a synthetic thyroid at 720p30.\n"
        "  The reading queue (#/queue) holds a STAT CT and a routine MR; captures from the live view join it.\n"
        "  Ctrl-C stops.\n",
        flush=True,
    )
    await stop.wait()
    edge.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(edge_task, 10)
    await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    asyncio.run(_main(args.port, Path(args.data_dir)))
    return 0
