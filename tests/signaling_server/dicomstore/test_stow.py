"""STOW-RS through the real app: real ultrasound files into the queue, and every refusal with its code and no trace."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore.blobs import BLOBS

from .conftest import Running, Start
from .objects import failure, image, multipart, real_file, snapshot, value

REAL_FILES = ("US1_UNCR.dcm", "color3d_jpeg_baseline.dcm", "gdcm-US-ALOKA-16.dcm", "CT_small.dcm")


def _sequence(body: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return list(body.get(tag, {}).get("Value", []))


async def test_real_files_go_into_the_store_and_the_queue(server: Running) -> None:
    device = server.device("a")
    files = [real_file(name) for name in REAL_FILES]
    status, body = await server.stow(device, files)
    assert status == 200, body
    referenced = _sequence(body, "00081199")
    assert len(referenced) == len(REAL_FILES) and "00081198" not in body
    assert all(value(item, "00081190").startswith(server.base + "/dicomweb/studies/") for item in referenced)
    async with server.app[DB]() as db:
        studies = {s.modality: s for s in await db.scalars(select(Study))}
        instances = {i.sop_uid: i for i in await db.scalars(select(Instance))}
    assert set(studies) == {"US", "CT"} and len(instances) == 4
    for study in studies.values():
        assert study.state == "matched" and study.site_id == server.world.site_a and study.examined_at is not None
        assert study.due_at == study.examined_at + timedelta(minutes=60)
    cine = next(i for i in instances.values() if i.frames == 120)
    assert cine.transfer_syntax_uid == "1.2.840.10008.1.2.4.50" and (cine.rows, cine.columns) == (480, 640)
    assert {i.received_via for i in instances.values()} == {"stow"}

    before = await snapshot(server.app)
    status, again = await server.stow(device, files[:1])  # a re-send (the edge's outbox after a lost answer)
    assert status == 200 and len(_sequence(again, "00081199")) == 1
    assert await snapshot(server.app) == before


async def test_refused_parts_carry_a_code_and_leave_no_trace(server: Running) -> None:
    device = server.device("a")
    good = image(patient_id="P-9")
    await server.stow(device, [image()])  # something already stored, so "unchanged" means something
    before = await snapshot(server.app)
    cases = [
        (good[: len(good) - 500], 0xC000, "invalid_dicom"),  # truncated inside the pixel data
        (real_file("CT_small.dcm")[:39000], 0xC000, "invalid_dicom"),
        (b"%PDF-1.4 not an image at all" * 20, 0xC000, "invalid_dicom"),
        (image(without=("SOPInstanceUID",)), 0xA900, "missing_attribute"),
        (("text/plain", b"hello"), 0xC000, "unsupported_media_type"),
    ]
    for part, reason, code in cases:
        status, body = await server.stow(device, [part])
        assert status == 409, body
        [item] = _sequence(body, "00081198")
        assert failure(item) == (reason, code), item
        assert "00081199" not in body
    assert await snapshot(server.app) == before

    status, body = await server.stow(device, [good, cases[0][0]])
    assert status == 202
    assert len(_sequence(body, "00081199")) == 1 and len(_sequence(body, "00081198")) == 1


async def test_same_uid_with_other_content_conflicts_and_the_original_stays(server: Running) -> None:
    device = server.device("a")
    uid = generate_uid()
    original, impostor = image(sop_uid=uid, seed=1), image(sop_uid=uid, seed=2)
    assert (await server.stow(device, [original]))[0] == 200
    before = await snapshot(server.app)
    status, body = await server.stow(device, [impostor])
    assert status == 409
    [item] = _sequence(body, "00081198")
    assert failure(item) == (0xC000, "instance_conflict") and value(item, "00081155") == uid
    assert "different content" in item["00091002"]["Value"][0]
    assert await snapshot(server.app) == before
    async with server.app[DB]() as db:
        stored = await db.scalar(select(Instance).where(Instance.sop_uid == uid))
    assert stored is not None and await server.app[BLOBS].read(stored.sha256) == original


async def test_study_in_the_path_must_match(server: Running) -> None:
    device = server.device("a")
    status, body = await server.stow(device, [image()], path=f"/dicomweb/studies/{generate_uid()}")
    assert status == 409
    assert failure(_sequence(body, "00081198")[0]) == (0xA900, "study_mismatch")
    study = generate_uid()
    status, body = await server.stow(device, [image(study_uid=study)], path=f"/dicomweb/studies/{study}")
    assert status == 200 and value(body, "00081190").endswith(f"/dicomweb/studies/{study}")


async def test_multipart_and_media_type_errors(server: Running) -> None:
    device = server.device("a")
    before = await snapshot(server.app)
    content_type, body = multipart([image()], boundary="right-boundary")
    wrong = [
        (content_type.replace("right-boundary", "wrong-boundary"), body, 400, "bad_multipart"),
        ('multipart/related; type="application/dicom"', body, 400, "bad_multipart"),
        (content_type, body[: len(body) - 30], 400, "bad_multipart"),  # no closing delimiter
        (content_type.replace("right-boundary", '"' + "x" * 80 + '"'), body, 400, "bad_multipart"),
        ("application/json", b"{}", 415, "unsupported_media_type"),
        (content_type.replace("application/dicom", "application/dicom+xml"), body, 415, "unsupported_media_type"),
        ('multipart/related; type="application/dicom"; boundary=b', b"--b--\r\n", 400, "bad_multipart"),
    ]
    for header, data, status, code in wrong:
        async with device.post(
            server.base + "/dicomweb/studies", data=io.BytesIO(data), headers={"Content-Type": header}
        ) as r:
            answer = await r.json()
            assert (r.status, answer["error"]) == (status, code), (header, answer)
            assert answer["message"]
    assert await snapshot(server.app) == before


async def _raw_post(server: Running, head: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """A hand-written HTTP request (the client libraries would refuse to lie about Content-Length)."""
    url = server.client.make_url("/dicomweb/studies")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        lines = [f"POST {url.path} HTTP/1.1", f"Host: {url.host}:{url.port}"] + [f"{k}: {v}" for k, v in head.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = int((await asyncio.wait_for(reader.readline(), 5)).split()[1])
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
            name, _, text = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(text)
        return status, json.loads(await asyncio.wait_for(reader.readexactly(length), 5))
    finally:
        writer.close()


async def test_a_declared_2gb_body_is_refused_before_it_is_read(server: Running) -> None:
    before = await snapshot(server.app)
    content_type, body = multipart([image()])
    head = {
        "Authorization": f"Bearer {server.world.device_a_credential}",
        "Content-Type": content_type,
        "Content-Length": str(2 << 30),
    }
    started = datetime.now()
    status, answer = await _raw_post(server, head, body)
    assert (status, answer["error"]) == (413, "too_large") and str(2 << 30) in answer["message"]
    assert datetime.now() - started < timedelta(seconds=3)
    assert await snapshot(server.app) == before


async def test_a_chunked_body_over_the_limit_stops_where_it_passes_it(start: Start) -> None:
    server = await start(max_dicom_bytes=100_000)
    before = await snapshot(server.app)
    content_type, body = multipart([image(rows=256, columns=256), image(rows=256, columns=256), image()])
    assert len(body) > 100_000

    async def chunks() -> Any:
        for at in range(0, len(body), 16_384):
            yield body[at : at + 16_384]

    device = server.device("a")
    headers = {"Content-Type": content_type}
    async with device.post(server.base + "/dicomweb/studies", data=chunks(), headers=headers) as response:
        assert response.status == 413 and (await response.json())["error"] == "too_large"
    assert await snapshot(server.app) == before
