"""edge_capture.recording.upload: the edge's resumable upload against the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from edge_capture.recording.api import RecordingApi
from edge_capture.recording.upload import RecordingUploader
from recordings import timeline as tl
from recordings.store import RecordingStore
from signaling_server.appkeys import SETTINGS
from tests.edge_capture.recording.test_mp4 import write
from tests.signaling_server.session_recordings.test_routes import live_consultation, put
from tests.waiting import eventually


async def wait_for(condition: Any, timeout: float = 60.0) -> None:
    await eventually(condition, timeout)


def recorded(folder: Path, cid: str, seconds: float = 2.0) -> None:
    folder.mkdir(parents=True)
    write(folder / "media.mp4", seconds)
    lines = [tl.Header(cid, 1.79e12, 320, 240, 30.0), tl.State(0, "live"), tl.Chat(0.5, "hello", "A", "expert")]
    (folder / "timeline.jsonl").write_text("".join(tl.encode(line) + "\n" for line in lines))


@asynccontextmanager
async def uploading(base: str, credential: str, root: Path, **options: Any) -> AsyncIterator[RecordingUploader]:
    async with aiohttp.ClientSession() as session:
        options = {"chunk_bytes": 8 * 1024, "poll_seconds": 0.05, "check_seconds": 0.1, "base_delay": 0.1, **options}
        uploader = RecordingUploader(root, RecordingApi(base, credential, session), **options)
        await uploader.start()
        try:
            yield uploader
        finally:
            await uploader.close()


async def recording_of(trainer: Any, cid: str) -> dict[str, Any] | None:
    _, listed = await trainer.get("/api/v1/recordings")
    return next((r for r in listed["recordings"] if r["consultation_id"] == cid), None)


async def test_a_recording_goes_up_while_live_and_is_deleted_once_complete(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    root = tmp_path / "edge"  # the server keeps its own in tmp_path / "recordings"
    recorded(root / cid, cid)
    local = {name: hashlib.sha256((root / cid / name).read_bytes()).hexdigest() for name in ("media.mp4",
                                                                                           "timeline.jsonl")}
    trainer = await open_api("trainer")
    async with uploading(str(client.make_url("")), world.device_a_credential, root) as uploader:
        async def whole() -> bool:
            rec = await recording_of(trainer, cid)
            return rec is not None and all(f["complete"] for f in rec["files"]) and len(rec["files"]) == 2

        await wait_for(whole)
        rec = await recording_of(trainer, cid)
        assert rec is not None and rec["state"] == "recording"  # still live: the edge may record more
        assert {f["name"]: f["sha256"] for f in rec["files"]} == local
        assert (root / cid).exists() and json.loads((root / cid / "state.json").read_text())["recording_id"]

        sono = await open_api("sono_a")
        status, _ = await sono.post(f"/api/v1/consultations/{cid}/end")
        assert status == 200
        await wait_for(lambda: not (root / cid).exists())
        rec = await recording_of(trainer, cid)
        assert rec is not None and rec["state"] == "complete" and rec["duration_seconds"] > 1.9
        assert uploader.stats.recordings_completed == 1 and uploader.stats.chunks_sent > 4
    store = RecordingStore(client.app[SETTINGS].data_dir / "recordings")
    assert store.sha256(rec["id"], "media.mp4")[1] == local["media.mp4"]


async def test_it_resumes_at_the_servers_offset_waits_for_growing_files_and_resends_a_bad_copy(
    people: Any, tmp_path: Path
) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    root = tmp_path / "edge"  # the server keeps its own in tmp_path / "recordings"
    recorded(root / cid, cid)
    media = (root / cid / "media.mp4").read_bytes()
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert (await put(edge, rec["id"], "media.mp4", 0, media[:40_000]))[0] == 200  # an earlier run got this far
    assert (await put(edge, rec["id"], "timeline.jsonl", 0, b"garbage\n"))[0] == 200  # and this went wrong
    # A second segment the recorder is still writing: only whole fragments may go, and it is not complete.
    growing = root / cid / "media.1.mp4"
    growing.write_bytes(media[: len(media) // 2])
    trainer = await open_api("trainer")
    async with uploading(str(client.make_url("")), world.device_a_credential, root) as uploader:
        uploader.writing.begin(cid, "media.1.mp4")

        async def settled() -> bool:
            found = await recording_of(trainer, cid)
            files = {f["name"]: f for f in found["files"]} if found else {}
            return files.get("timeline.jsonl", {}).get("complete", False) and files["media.mp4"]["complete"]

        await wait_for(settled)
        assert uploader.stats.bytes_sent < len(media) + 2_000  # media.mp4 was not sent again from 0
        assert uploader.stats.checksum_restarts == 1  # the bad timeline copy was found and sent again
        status, part = await trainer.get(f"/api/v1/recordings/{rec['id']}/files/media.1.mp4")
        assert 0 < part["offset"] < len(media) // 2 and not part["complete"]  # whole fragments only

        growing.write_bytes(media)  # the recorder finished it
        uploader.writing.end(cid, "media.1.mp4")
        uploader.wake()

        async def second_whole() -> bool:
            _, state = await trainer.get(f"/api/v1/recordings/{rec['id']}/files/media.1.mp4")
            return bool(state["complete"])

        await wait_for(second_whole)


async def test_a_dead_link_pauses_the_upload_and_a_refusal_keeps_the_files(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    root = tmp_path / "edge"  # the server keeps its own in tmp_path / "recordings"
    recorded(root / cid, cid, seconds=1.0)
    async with uploading("http://127.0.0.1:9", world.device_a_credential, root) as uploader:  # nobody listens
        await wait_for(lambda: uploader.stats.last_error is not None)
        uploader.api.base = str(client.make_url("/api/v1"))  # the link is back
        trainer = await open_api("trainer")

        async def arrived() -> bool:
            found = await recording_of(trainer, cid)
            return found is not None and len(found["files"]) == 2 and all(f["complete"] for f in found["files"])

        await wait_for(arrived)

    admin = await open_api("admin")
    await admin.post(f"/api/v1/sites/{world.site_a}/recording", {"enabled": False})
    other = await live_consultation(open_api)
    recorded(root / other, other, seconds=0.5)
    async with uploading(str(client.make_url("")), world.device_a_credential, root):
        await wait_for(lambda: (root / other / "state.json").exists())
    state = json.loads((root / other / "state.json").read_text())
    assert state["refused"].startswith("recording_disabled") and (root / other / "media.mp4").exists()
