"""signaling_server.session_recordings.service: the one place that settles a recording's state tells ``on_complete``
once, when the recording has just become complete (the offline QC scorer listens there), with the real app on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

from signaling_server.appkeys import DB
from signaling_server.db.models import Device
from signaling_server.session_recordings import service
from signaling_server.session_recordings.files import store_of
from tests.signaling_server.session_recordings.test_routes import live_consultation, put, timeline_bytes, upload

NAMES = ["media.mp4", "timeline.jsonl"]


async def test_on_complete_hears_a_recording_once_when_it_becomes_complete(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = recording["id"]
    await upload(edge, rid, "media.mp4", bytes(range(256)) * 4)
    timeline = timeline_bytes(cid)
    await put(edge, rid, "timeline.jsonl", 0, timeline)  # every byte there, not yet checked
    heard: list[str] = []
    async with app[DB]() as db:
        device = await db.get(Device, world.device_a)
        assert device is not None
        ended = await service.end(db, store_of(app), device, rid, NAMES, 3.0, heard.append)
        assert ended.state == "uploading" and heard == []  # a file is still to be checked
        digest = hashlib.sha256(timeline).hexdigest()
        await service.complete_file(db, store_of(app), device, rid, "timeline.jsonl", len(timeline), digest,
                                    heard.append)  # fmt: skip
        assert heard == [rid]  # the last file's check completed it
        # the edge did not hear the answers and says both again: nothing becomes complete a second time
        await service.complete_file(db, store_of(app), device, rid, "timeline.jsonl", len(timeline), digest,
                                    heard.append)  # fmt: skip
        again = await service.end(db, store_of(app), device, rid, NAMES, 3.0, heard.append)
    assert again.state == "complete" and heard == [rid]
