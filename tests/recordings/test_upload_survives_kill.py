"""A recording survives a killed edge agent: the real `teleus edge` command as a subprocess, SIGKILLed while it
records and uploads (throttled so the kill lands mid-upload), then started again: the server ends up with the
edge's MP4 byte for byte, and it plays. On the edge's disk the recording is sealed throughout (a torn sealed file
is finished by the next start's recovery)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from edge_capture.recording.mp4 import complete_prefix
from edge_capture.sealing.keys import DEFAULT_NAME, load
from edge_capture.sealing.sealed import HEADER_BYTES, SealedReader, is_sealed, read_sealed
from recordings import timeline as tl
from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.conftest import THYROID_REQUEST, Api, seed
from tests.databases import database
from tests.edge_capture.recording.media import decode
from tests.waiting import eventually

TELEUS = str(Path(sys.executable).parent / "teleus")


def appending(path: Path) -> BinaryIO:
    return open(path, "ab")


async def start_edge(base: str, credential: str, folder: Path, log: Path, *extra: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    env["TELEUS_DEVICE_CREDENTIAL"] = credential  # never on the command line
    with appending(log) as out:
        return await asyncio.create_subprocess_exec(
            TELEUS, "edge", "--server", base, "--ice-host", "127.0.0.1",
            "--spool", str(folder / "outbox"), "--recordings", str(folder / "recordings"), "--keep-recordings",
            "--upload-chunk-kib", "32", *extra,
            stdout=out, stderr=out, env=env,
        )  # fmt: skip


async def until(condition: Any, what: str, timeout: float = 60.0) -> Any:
    return await eventually(condition, timeout, interval=0.1, what=what)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_recording_survives_a_killed_edge_agent(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    async with database("sqlite", tmp_path) as url:
        app = create_app(Settings(data_dir=tmp_path / "server", database_url=url))
        server = await aiohttp_server(app)
        client = await aiohttp_client(server)
        world = await seed(app)
        base, edge_dir, log = str(server.make_url("/")), tmp_path / "edge", tmp_path / "edge.log"
        sono, expert, trainer = Api(client), Api(client), Api(client)
        processes: list[asyncio.subprocess.Process] = []
        try:
            for api, username in ((sono, "sono_a"), (expert, "expert"), (trainer, "trainer")):
                await api.login(username)
            _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)
            cid = consultation["id"]
            processes.append(await start_edge(base, world.device_a_credential, edge_dir, log, "--upload-mbps", "0.4"))
            room = await expert.ws(f"/api/v1/consultations/{cid}/signal")
            await room.send_json({"type": "join"})  # the expert is in: live, and the edge records

            async def media_file() -> dict[str, Any] | None:
                _, listed = await trainer.get("/api/v1/recordings")
                files = [f for r in listed["recordings"] for f in r["files"] if f["name"] == "media.mp4"]
                return files[0] if files and files[0]["offset"] > 0 else None

            await until(media_file, "the first bytes of media.mp4 on the server")
            recorded = edge_dir / "recordings" / cid / "media.mp4"

            async def edge_ahead() -> bool:  # a whole fragment at the edge that the server does not have yet
                with SealedReader(recorded, load(edge_dir / DEFAULT_NAME)) as view:
                    whole = complete_prefix(view)
                on_server = await media_file()
                return on_server is not None and whole > on_server["offset"]

            await until(edge_ahead, "a fragment recorded at the edge and not yet uploaded")
            processes[0].send_signal(signal.SIGKILL)  # mid-upload, mid-fragment, mid-timeline-line
            await processes[0].wait()
            keys = load(edge_dir / DEFAULT_NAME)  # made by the first run, beside its outbox
            assert is_sealed(edge_dir / "recordings" / cid / "media.mp4")
            with SealedReader(edge_dir / "recordings" / cid / "media.mp4", keys) as view:
                killed = view.read_at(0, view.size)  # its whole records; a torn one is cut at the next start
                whole = complete_prefix(view)
            on_server = await media_file()
            assert on_server is not None
            assert 0 < on_server["offset"] < whole <= len(killed), (on_server, whole, len(killed))
            expected = sha256(killed[:whole])

            # Started again while the consultation is still live: it resumes the upload and records segment 1.
            processes.append(await start_edge(base, world.device_a_credential, edge_dir, log))
            second = edge_dir / "recordings" / cid / "media.1.mp4"
            await until(lambda: second.exists() and second.stat().st_size > HEADER_BYTES, "segment 1")
            await asyncio.sleep(1.0)
            status, _ = await sono.post(f"/api/v1/consultations/{cid}/end")
            assert status == 200

            async def complete() -> dict[str, Any] | None:
                _, listed = await trainer.get("/api/v1/recordings")
                done = [r for r in listed["recordings"] if r["state"] == "complete"]
                return done[0] if done else None

            recording = await until(complete, "the recording to be complete")
            async with expert.session.get(f"{expert.base}/api/v1/recordings/{recording['id']}/media") as response:
                (tmp_path / "from-server.mp4").write_bytes(await response.read())
            _, timeline = await trainer.get(f"/api/v1/recordings/{recording['id']}/timeline")
            _, timeline_1 = await trainer.get(f"/api/v1/recordings/{recording['id']}/timeline?segment=1")
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), 15)
                    except TimeoutError:
                        process.kill()
            for api in (sono, expert, trainer):
                await api.close()

    files = {f["name"]: f for f in recording["files"]}
    assert list(files) == ["media.mp4", "timeline.jsonl", "media.1.mp4", "timeline.1.jsonl"]
    assert all(f["complete"] for f in files.values())
    edge_copy = read_sealed(edge_dir / "recordings" / cid / "media.mp4", keys)  # finished by the second start
    assert files["media.mp4"]["sha256"] == expected == sha256(edge_copy)  # the server has the edge's file
    assert sha256((tmp_path / "from-server.mp4").read_bytes()) == expected
    played = decode(tmp_path / "from-server.mp4")
    assert (played.width, played.height) == (1280, 720) and len(played.video_pts) >= 30
    assert played.video_pts == sorted(played.video_pts)
    assert timeline["header"]["segment"] == 0 and not timeline["torn_tail"]
    assert timeline_1["header"]["segment"] == 1 and timeline_1["events"][-1] == tl.State(
        timeline_1["events"][-1]["t"], "ended"
    ).to_dict()
    assert recording["duration_seconds"] > played.video_pts[-1]  # both segments
