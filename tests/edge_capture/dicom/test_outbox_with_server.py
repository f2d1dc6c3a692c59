"""The edge's outbox against the real server: an upload that cannot get through waits on disk, survives a restart
of the agent, and lands exactly once in the reading queue when the server is reachable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from edge_capture.dicom.labels import CaptureLabels
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.stow import StowClient
from edge_capture.dicom.ultrasound import build_still
from edge_capture.frames import SourceFrame
from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from tests.edge_capture.dicom.conftest import context, make_source


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
    offline = Outbox(spool, unreachable, base_delay=0.05, max_delay=0.2)
    await offline.start()
    await offline.enqueue(ds)
    await asyncio.sleep(0.5)
    assert offline.status.pending == 1 and offline.status.last_error
    assert (spool / f"{uid}.dcm").exists()
    await offline.close()  # the agent is stopped (or killed): the file stays
    await unreachable.close()
    assert (spool / f"{uid}.dcm").exists()

    # The agent restarts with the server reachable: the outbox picks its folder up and uploads it.
    server = StowClient(str(client.make_url("/")), world.device_a_credential)
    online = Outbox(spool, server, base_delay=0.05, max_delay=0.2)
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
