"""edge_capture.recording.upload: the edge's resumable upload against the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from edge_capture.recording.api import RecordingApi
from edge_capture.recording.upload import RecordingUploader
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.repairs import seal_in_place
from edge_capture.sealing.sealed import SealedReader, SealedWriter, read_sealed
from recordings import timeline as tl
from recordings.store import RecordingStore
from signaling_server.appkeys import SETTINGS
from tests.edge_capture.recording.test_mp4 import write
from tests.edge_capture.sealing.damage import flip_byte
from tests.signaling_server.session_recordings.test_routes import live_consultation, put
from tests.waiting import eventually


async def wait_for(condition: Any, timeout: float = 60.0) -> None:
    await eventually(condition, timeout)


KEYS = Keyring.generate()


def recorded(folder: Path, cid: str, seconds: float = 2.0) -> None:
    """A finished recording as the recorder leaves it: sealed media and timeline."""
    folder.mkdir(parents=True)
    write(folder / "media.mp4", seconds)
    lines = [tl.Header(cid, 1.79e12, 320, 240, 30.0), tl.State(0, "live"), tl.Chat(0.5, "hello", "A", "expert")]
    (folder / "timeline.jsonl").write_text("".join(tl.encode(line) + "\n" for line in lines))
    for name in ("media.mp4", "timeline.jsonl"):
        seal_in_place(folder / name, KEYS.current)


def plaintext(path: Path) -> bytes:
    return read_sealed(path, KEYS)


@asynccontextmanager
async def uploading(base: str, credential: str, root: Path, **options: Any) -> AsyncIterator[RecordingUploader]:
    async with aiohttp.ClientSession() as session:
        options = {"chunk_bytes": 8 * 1024, "poll_seconds": 0.05, "check_seconds": 0.1, "base_delay": 0.1, **options}
        uploader = RecordingUploader(root, RecordingApi(base, credential, session), keys=KEYS, **options)
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
    local = {name: hashlib.sha256(plaintext(root / cid / name)).hexdigest() for name in ("media.mp4", "timeline.jsonl")}
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
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root, root / cid, *(root / cid).iterdir())}
        assert modes == {"edge": 0o700, cid: 0o700, "media.mp4": 0o600, "timeline.jsonl": 0o600, "state.json": 0o600}

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
    media = plaintext(root / cid / "media.mp4")
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert (await put(edge, rec["id"], "media.mp4", 0, media[:40_000]))[0] == 200  # an earlier run got this far
    assert (await put(edge, rec["id"], "timeline.jsonl", 0, b"garbage\n"))[0] == 200  # and this went wrong
    trainer = await open_api("trainer")
    async with uploading(str(client.make_url("")), world.device_a_credential, root) as uploader:
        # A second segment a recorder (started after the uploader's recovery, as in the agent) is still writing:
        # only whole fragments may go, and it is not complete.
        uploader.writing.begin(cid, "media.1.mp4")
        growing = SealedWriter(root / cid / "media.1.mp4", KEYS.current)
        growing.write(media[: len(media) // 2])
        growing.flush()
        uploader.wake()

        async def settled() -> bool:
            found = await recording_of(trainer, cid)
            files = {f["name"]: f for f in found["files"]} if found else {}
            return files.get("timeline.jsonl", {}).get("complete", False) and files["media.mp4"]["complete"]

        await wait_for(settled)
        assert uploader.stats.bytes_sent < len(media) + 2_000  # media.mp4 was not sent again from 0
        assert uploader.stats.checksum_restarts == 1  # the bad timeline copy was found and sent again
        status, part = await trainer.get(f"/api/v1/recordings/{rec['id']}/files/media.1.mp4")
        assert 0 < part["offset"] < len(media) // 2 and not part["complete"]  # whole fragments only

        growing.write(media[len(media) // 2 :])  # the recorder finished it
        growing.close()
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


def damaged(folder: Path) -> str | None:
    try:
        return json.loads((folder / "state.json").read_text()).get("damaged")
    except (FileNotFoundError, ValueError):
        return None


async def test_a_recording_that_fails_authentication_is_never_sent_and_kept(people: Any, tmp_path: Path) -> None:
    """One byte changed on the clinic PC's disk: the record holding it fails authentication, nothing from it on is
    sent (the server holds a true prefix, never garbage), and the folder is kept as ``damaged``, not retried."""
    client, world, open_api = people
    cid = await live_consultation(open_api)
    root = tmp_path / "edge"
    recorded(root / cid, cid)
    path = root / cid / "media.mp4"
    media = plaintext(path)
    with SealedReader(path, KEYS) as view:
        changed_from, at = view.record_at(len(media) // 2)
    flip_byte(path, at + 40)  # inside the record's ciphertext
    trainer = await open_api("trainer")
    async with uploading(str(client.make_url("")), world.device_a_credential, root) as uploader:
        await wait_for(lambda: damaged(root / cid) is not None)
        assert "spool_tampered" in (uploader.stats.last_error or "")
    assert str(damaged(root / cid)).startswith("spool_tampered: ") and path.exists()
    rec = await recording_of(trainer, cid)
    assert rec is not None and not {f["name"]: f for f in rec["files"]}.get("media.mp4", {}).get("complete")
    stored = RecordingStore(client.app[SETTINGS].data_dir / "recordings").path(rec["id"], "media.mp4")
    held = stored.read_bytes() if stored.exists() else b""
    assert len(held) <= changed_from and media.startswith(held)
