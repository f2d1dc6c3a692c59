"""signaling_server.session_recordings.routes with the real app on SQLite and PostgreSQL: create, resumable chunks,
checks, readers."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

from sqlalchemy import update

from recordings import timeline as tl
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.db.models import RecordingFile
from tests.conftest import THYROID_REQUEST, Api
from tests.signaling_server.test_signaling import join


async def live_consultation(open_api: Any) -> str:
    sono = await open_api("sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    expert_ws, welcome = await join(await open_api("expert"), c["id"])  # the first expert makes it live
    assert welcome["consultation"]["state"] == "live"
    await expert_ws.close()
    return str(c["id"])


async def put(api: Api, rid: str, name: str, offset: int, data: bytes, sha: str | None = None) -> tuple[int, Any]:
    headers = {"X-Chunk-SHA256": sha or hashlib.sha256(data).hexdigest()}
    url = f"{api.base}/api/v1/recordings/{rid}/files/{name}?offset={offset}"
    async with api.session.put(url, data=data, headers=headers) as response:
        return response.status, await response.json()


async def upload(api: Api, rid: str, name: str, data: bytes, chunk: int = 1000) -> None:
    for offset in range(0, len(data), chunk):
        status, answer = await put(api, rid, name, offset, data[offset : offset + chunk])
        assert status == 200 and answer["offset"] == min(len(data), offset + chunk), answer
    status, answer = await api.post(
        f"/api/v1/recordings/{rid}/files/{name}/complete",
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    assert status == 200 and answer["complete"], answer


def timeline_bytes(cid: str) -> bytes:
    lines = [
        tl.Header(cid, 1_790_000_000_000.0, 1280, 720, 30.0),
        tl.Join(0.0, "p1", "expert", "Expert"),
        tl.Mark(1.5, "m1", "arrow", ((0.1, 0.2), (0.3, 0.4)), "#ff0000", "p1"),
    ]
    return "".join(tl.encode(line) + "\n" for line in lines).encode()


async def test_create_is_idempotent_and_only_for_the_consultations_own_device(people: Any) -> None:
    client, world, open_api = people
    sono = await open_api("sono_a")
    _, waiting = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    edge = await open_api(bearer=world.device_a_credential)
    status, error = await edge.post("/api/v1/recordings", {"consultation_id": waiting["id"]})
    assert status == 409 and error["error"] == "invalid_transition"  # nobody to record before it is live

    cid = await live_consultation(open_api)
    status, first = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 201 and first["state"] == "recording" and first["consultation_id"] == cid
    assert first["sonographer"]["name"] == "Sono A" and first["files"] == []
    status, again = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 200 and again["id"] == first["id"]

    other = await open_api(bearer=world.device_b_credential)
    status, error = await other.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 404 and error["error"] == "not_found"
    status, error = await put(other, first["id"], "media.mp4", 0, b"x")
    assert status == 404
    status, error = await sono.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 403 and error["error"] == "forbidden"


async def test_chunks_are_appended_only_at_the_servers_offset_and_checked(people: Any) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = rec["id"]
    data = bytes(range(256)) * 20

    assert await put(edge, rid, "media.mp4", 0, data[:1000]) == (200, {"name": "media.mp4", "offset": 1000,
                                                                       "complete": False})
    status, error = await put(edge, rid, "media.mp4", 0, data[:1000])  # a resend the client did not know arrived
    assert status == 409 and error["error"] == "wrong_offset" and error["offset"] == 1000
    status, error = await put(edge, rid, "media.mp4", 5000, data[5000:6000])
    assert status == 409 and error["offset"] == 1000

    status, error = await put(edge, rid, "media.mp4", 1000, data[1000:2000], sha="0" * 64)
    assert status == 400 and error["error"] == "chunk_checksum_mismatch" and "nothing was appended" in error["message"]
    status, state = await edge.get(f"/api/v1/recordings/{rid}/files/media.mp4")
    assert status == 200 and state["offset"] == 1000 and not state["complete"]

    for bad_name in ("../media.mp4", "media.avi", "media.mp4.jsonl", "video.mp4"):
        status, error = await put(edge, rid, bad_name, 0, b"x")
        assert status in (400, 404), bad_name

    # The edge's whole file is not what the server assembled: the server says so and the file restarts.
    status, _ = await put(edge, rid, "media.mp4", 1000, b"\0" * (len(data) - 1000))
    assert status == 200
    status, error = await edge.post(
        f"/api/v1/recordings/{rid}/files/media.mp4/complete",
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    assert status == 409 and error["error"] == "checksum_mismatch" and error["offset"] == 0
    assert (await edge.get(f"/api/v1/recordings/{rid}/files/media.mp4"))[1]["offset"] == 0

    status, error = await edge.post(
        f"/api/v1/recordings/{rid}/files/media.mp4/complete", {"size": 10, "sha256": "a" * 64}
    )
    assert status == 409 and error["error"] == "wrong_offset" and error["offset"] == 0
    await upload(edge, rid, "media.mp4", data)
    status, error = await put(edge, rid, "media.mp4", len(data), b"more")
    assert status == 409 and error["error"] == "file_complete"
    status, again = await edge.post(  # a repeated complete (the first answer was lost) is fine
        f"/api/v1/recordings/{rid}/files/media.mp4/complete",
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    assert status == 200 and again["sha256"] == hashlib.sha256(data).hexdigest()

    big = await edge.session.put(
        f"{edge.base}/api/v1/recordings/{rid}/files/timeline.jsonl?offset=0",
        data=io.BytesIO(b"x" * (5 << 20)),
        headers={"X-Chunk-SHA256": "0" * 64},
    )
    assert big.status == 413 and (await big.json())["error"] == "too_large"
    big.release()


async def test_a_recording_completes_when_every_listed_file_is_whole_and_reads_back(people: Any) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = rec["id"]
    media = bytes(range(256)) * 40
    await upload(edge, rid, "media.mp4", media)
    await put(edge, rid, "timeline.jsonl", 0, timeline_bytes(cid)[:50])

    status, ended = await edge.post(
        f"/api/v1/recordings/{rid}/end", {"files": ["media.mp4", "timeline.jsonl"], "duration_seconds": 12.5}
    )
    assert status == 200 and ended["state"] == "uploading" and ended["duration_seconds"] == 12.5
    status, error = await put(edge, rid, "media.1.mp4", 0, b"late")
    assert status == 409 and error["error"] == "invalid_transition"  # not listed at the end

    rest = timeline_bytes(cid)
    status, _ = await put(edge, rid, "timeline.jsonl", 50, rest[50:])
    assert status == 200
    status, done = await edge.post(
        f"/api/v1/recordings/{rid}/files/timeline.jsonl/complete",
        {"size": len(rest), "sha256": hashlib.sha256(rest).hexdigest()},
    )
    assert status == 200
    trainer = await open_api("trainer")
    status, rec = await trainer.get(f"/api/v1/recordings/{rid}")
    assert status == 200 and rec["state"] == "complete" and rec["completed_at"] and rec["segments"] == [0]
    assert [f["name"] for f in rec["files"]] == ["media.mp4", "timeline.jsonl"]

    expert = await open_api("expert")  # identified: the original as stored (a trainer's copy: test_review_copies.py)
    async with expert.session.get(
        f"{expert.base}/api/v1/recordings/{rid}/media", headers={"Range": "bytes=100-199"}
    ) as response:
        assert response.status == 206 and await response.read() == media[100:200]
        assert response.headers["Content-Type"] == "video/mp4"
    status, line = await trainer.get(f"/api/v1/recordings/{rid}/timeline")
    assert status == 200 and line["header"]["consultation_id"] == cid
    assert [e["type"] for e in line["events"]] == ["join", "mark"] and line["events"][1]["t"] == 1.5
    status, _ = await trainer.get(f"/api/v1/recordings/{rid}/media?segment=3")
    assert status == 404

    status, again = await edge.post(f"/api/v1/recordings/{rid}/end", {"files": ["media.mp4", "timeline.jsonl"]})
    assert status == 200 and again["state"] == "complete"  # idempotent
    status, error = await edge.post(f"/api/v1/recordings/{rid}/fail", {"reason": "disk"})
    assert status == 409 and error["error"] == "invalid_transition"


async def test_readers_see_what_their_role_allows(people: Any) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    for username, sees in (("sono_a", True), ("sono_a2", False), ("sono_b", False), ("expert2", True),
                           ("trainer", True), ("admin", False), ("registrar", False)):
        api = await open_api(username)
        status, listed = await api.get("/api/v1/recordings")
        assert status == 200 and [r["id"] for r in listed["recordings"]] == ([rec["id"]] if sees else []), username
        status, _ = await api.get(f"/api/v1/recordings/{rec['id']}")
        assert status == (200 if sees else 404), username
    trainer = await open_api("trainer")
    sono_id = world.users["sono_a"]
    for query, found in (("?site=north", 1), ("?site=river", 0), (f"?sonographer={sono_id}", 1),
                         ("?sonographer=nobody", 0), ("?state=recording", 1), ("?state=complete", 0)):
        _, listed = await trainer.get("/api/v1/recordings" + query)
        assert len(listed["recordings"]) == found, query
    status, error = await edge.get("/api/v1/recordings")
    assert status == 403


async def test_the_site_policy_turns_recording_off_and_every_page_sees_it(people: Any) -> None:
    client, world, open_api = people
    admin = await open_api("admin")
    sono = await open_api("sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    assert c["recording"] is True
    status, site = await admin.post(f"/api/v1/sites/{world.site_a}/recording", {"enabled": False})
    assert status == 200 and site["recording_enabled"] is False
    _, c = await sono.get(f"/api/v1/consultations/{c['id']}")
    assert c["recording"] is False
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    status, error = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 403 and error["error"] == "recording_disabled"
    status, error = await sono.post(f"/api/v1/sites/{world.site_a}/recording", {"enabled": True})
    assert status == 403
    status, error = await admin.post(f"/api/v1/sites/{world.site_a}/recording", {"enabled": "yes"})
    assert status == 400 and error["error"] == "invalid_request"


async def test_a_server_that_lost_the_tail_of_a_file_asks_for_it_again(people: Any) -> None:
    client, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    data = bytes(range(256)) * 8
    await put(edge, rec["id"], "media.mp4", 0, data[:1500])
    stored = client.app[SETTINGS].data_dir / "recordings" / rec["id"] / "media.mp4"
    os.truncate(stored, 1000)  # the machine went down before the disk had the last chunk
    status, error = await put(edge, rec["id"], "media.mp4", 1500, data[1500:])
    assert status == 409 and error["error"] == "wrong_offset" and error["offset"] == 1000
    status, answer = await put(edge, rec["id"], "media.mp4", 1000, data[1000:])
    assert status == 200 and answer["offset"] == len(data)
    assert stored.read_bytes() == data


async def test_offsets_past_4_gib_are_kept(people: Any) -> None:
    """A long 1080p session can pass 4 GiB in one file: sizes and offsets are 64-bit on every database."""
    client, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    await put(edge, rec["id"], "media.mp4", 0, b"x" * 100)
    far = 5 << 30
    stored = client.app[SETTINGS].data_dir / "recordings" / rec["id"] / "media.mp4"
    os.truncate(stored, far)  # sparse: as if 5 GiB had arrived, without writing them
    async with client.app[DB]() as db:
        await db.execute(update(RecordingFile).where(RecordingFile.name == "media.mp4").values(received=far))
        await db.commit()
    status, answer = await put(edge, rec["id"], "media.mp4", far, b"tail")
    assert status == 200 and answer["offset"] == far + 4
    status, state = await edge.get(f"/api/v1/recordings/{rec['id']}/files/media.mp4")
    assert state["offset"] == far + 4 and stored.stat().st_size == far + 4


async def test_a_trainer_reads_the_timelines_chat_with_the_patient_struck_out(people: Any) -> None:
    _, world, open_api = people
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, rec = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = rec["id"]
    said = "张三 (P-0001, born 1970-05-01, ACC1): left lobe nodule, see 19700501"
    lines = [
        tl.Header(cid, 1_790_000_000_000.0, 1280, 720, 30.0),
        tl.Chat(2.0, said, "Sono A", "sonographer", world.users["sono_a"]),
        tl.Chat(3.0, "probe angle 30 degrees", "Expert", "expert", world.users["expert"]),
    ]
    await upload(edge, rid, "timeline.jsonl", "".join(tl.encode(line) + "\n" for line in lines).encode())
    status, as_trainer = await (await open_api("trainer")).get(f"/api/v1/recordings/{rid}/timeline")
    assert status == 200
    texts = [e["text"] for e in as_trainer["events"] if e["type"] == "chat"]
    assert texts == ["■■■ (■■■, born ■■■, ■■■): left lobe nodule, see ■■■", "probe angle 30 degrees"]
    status, as_expert = await (await open_api("expert")).get(f"/api/v1/recordings/{rid}/timeline")
    assert status == 200 and [e["text"] for e in as_expert["events"] if e["type"] == "chat"] == [said, texts[1]]
