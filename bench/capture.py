"""Capture bench: from the capture click to the still being stored and searchable, at 1080p (issue 3's target:
p95 ≤ 300 ms), beside the bare-library floor measured in the same run.

    python -m bench.capture [--captures 30] [--resolution 1080p] [--interval 1.0]

teleus: a real `teleus server` and `teleus edge` (synthetic thyroid) as child processes, a live consultation
(the expert joined over the signaling socket; no browser is needed to ask for a capture). Each capture is timed
from the moment the REST request leaves (what the console's button does) to
- `stored`: the room's `capture-status stored` message arrives (what puts the still in the console's strip), and
- `visible`: a QIDO-RS search of the consultation's study lists the new SOP Instance UID (what the queue shows).
The edge did: pick the source frame from its ring, build the DICOM (and a presentation state when there are
marks), spool it to disk, upload it by STOW-RS; the server parsed, stored, indexed and announced it.

floor: the same 1080p source frame as a bare pydicom Part 10 object POSTed by aiohttp to the same STOW-RS endpoint,
timed to the server's answer; no DICOM building beyond pydicom's, no spool, no signaling.

Prints one JSON report and writes it to bench/out/capture-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

from bench import procs
from bench.live import OUT_DIR, PASSWORD, ROOT, TELEUS, Options, Teleus, _tempdir, api_post, end_consultation

TARGET_P95_MS = 300.0
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


async def recv_until(ws: aiohttp.ClientWebSocketResponse, match: Any, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no matching signaling message")
        msg = await ws.receive(timeout=remaining)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"signaling socket closed: {msg}")
        data = json.loads(msg.data)
        if match(data):
            return dict(data)


async def qido_lists(session: aiohttp.ClientSession, base: str, study_uid: str, sop: str) -> bool:
    url = f"{base}dicomweb/studies/{study_uid}/instances?SOPInstanceUID={sop}"
    async with session.get(url, headers={"Accept": "application/dicom+json"}) as r:
        if r.status == 204:
            return False
        body = await r.text()
        return r.status == 200 and sop in body


async def teleus_captures(
    world: Teleus, resolution: str, captures: int, interval: float, log_dir: Path
) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        spool = Path(stack.enter_context(_tempdir("teleus-bench-spool-")))
        edge = await procs.spawn(
            "edge-capture",
            [
                TELEUS,
                "edge",
                "--server",
                world.base,
                "--source",
                "synthetic:thyroid",
                "--resolution",
                resolution,
                "--ice-host",
                "127.0.0.1",
                "--spool",
                spool.as_posix(),
            ],
            log_dir,
            ROOT,
            env={"TELEUS_DEVICE_CREDENTIAL": world.credential},  # never on its argv
        )
        stack.push_async_callback(edge.stop)
        consultation = await api_post(
            world.sono,
            world.base,
            "api/v1/consultations",
            {
                "exam_type": "thyroid",
                "patient": {"id": "BENCH-1", "name": "BENCH^PATIENT", "sex": "F", "birth_date": ""},
            },
            world.sono_csrf,
        )
        cid, study_uid = consultation["id"], consultation["study_uid"]
        stack.push_async_callback(end_consultation, world, cid)
        expert = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        stack.push_async_callback(expert.close)
        async with expert.post(
            world.base + "api/v1/auth/login", json={"username": "expert", "password": PASSWORD}
        ) as r:
            csrf = (await r.json())["csrf_token"]
        ws = await expert.ws_connect(
            f"{world.base}api/v1/consultations/{cid}/signal", headers={"Origin": world.base.rstrip("/")}
        )
        stack.push_async_callback(ws.close)
        await ws.send_json({"type": "join"})
        welcome = await recv_until(ws, lambda m: m["type"] == "welcome", 10)
        if not any(p["role"] == "edge" for p in welcome["peers"]):
            log("  waiting for the edge to join the room")
            await recv_until(ws, lambda m: m["type"] == "peer-joined" and m["peer"]["role"] == "edge", 90)
        await asyncio.sleep(2.0)  # the ring fills, the first offer settles

        labels = {"structure": "thyroid right lobe", "plane": "transverse", "mode": "b_mode"}
        stored_ms: list[float] = []
        visible_ms: list[float] = []
        for i in range(captures + 2):  # the first two warm the paths up and are not counted
            t0 = time.perf_counter()
            async with expert.post(
                f"{world.base}api/v1/consultations/{cid}/captures",
                json={"kind": "still", "labels": labels},
                headers={"X-CSRF-Token": csrf},
            ) as r:
                if r.status != 202:
                    raise RuntimeError(f"capture refused: {r.status} {await r.text()}")
                capture_id = (await r.json())["id"]
            captured = await recv_until(
                ws,
                lambda m, capture_id=capture_id: (
                    m["type"] == "capture-status" and m.get("id") == capture_id and m["state"] in ("captured", "failed")
                ),
                30,
            )
            if captured["state"] == "failed":
                raise RuntimeError(f"capture failed: {captured}\nedge log:\n{edge.tail()}")
            sop = captured["sop_uid"]
            await recv_until(
                ws,
                lambda m, sop=sop: m["type"] == "capture-status" and m["state"] == "stored" and m.get("sop_uid") == sop,
                30,
            )
            t_stored = time.perf_counter()
            for _ in range(2000):  # stored is announced after the commit: the first search should find it
                if await qido_lists(expert, world.base, study_uid, sop):
                    break
            else:
                raise RuntimeError(f"{sop} announced as stored but not found by QIDO-RS")
            t_visible = time.perf_counter()
            if i >= 2:
                stored_ms.append((t_stored - t0) * 1000)
                visible_ms.append((t_visible - t0) * 1000)
            await asyncio.sleep(interval)
        return {
            "stored_ms": percentiles(stored_ms),
            "visible_ms": percentiles(visible_ms),
            "samples_visible_ms": [round(v, 1) for v in visible_ms],
        }


def source_frame(width: int, height: int) -> np.ndarray:
    """One synthetic thyroid frame (RGB), made once before the floor is timed."""
    from edge_capture.sources.synthetic import SyntheticSource

    frame = SyntheticSource("thyroid", width, height, 30.0, paced=False).read()
    assert frame is not None
    return np.ascontiguousarray(frame[:, :, ::-1])


def bare_still(rgb: np.ndarray, study_uid: str) -> bytes:
    """A pydicom US still of the frame, Part 10 in memory: the least a capture can cost."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "FLOOR^PATIENT", "FLOOR-1", "US"
    ds.set_pixel_data(rgb, "RGB", 8, generate_instance_uid=False)
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def floor_captures(world: Teleus, resolution: str, captures: int, interval: float) -> dict[str, Any]:
    width, height = RESOLUTIONS[resolution]
    study_uid = generate_uid()
    rgb = await asyncio.to_thread(source_frame, width, height)
    timings: list[float] = []
    headers = {"Authorization": f"Bearer {world.credential}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for i in range(captures + 2):
            t0 = time.perf_counter()
            raw = await asyncio.to_thread(bare_still, rgb, study_uid)
            boundary = uuid.uuid4().hex
            body = (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + raw
                + f"\r\n--{boundary}--\r\n".encode()
            )
            content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
            async with session.post(
                world.base + "dicomweb/studies", data=body, headers={"Content-Type": content_type}
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"floor STOW refused: {r.status} {await r.text()}")
                await r.read()
            if i >= 2:
                timings.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(interval)
    return {"stored_ms": percentiles(timings)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    opts = Options(
        duration=0,
        warmup=0,
        resolutions=[args.resolution],
        vp8=False,
        pointer_moves=0,
        pointer_hz=0,
        soak=None,
        profile=False,
        quick=False,
    )
    world = await Teleus.start("capture", opts)
    try:
        log(f"floor: bare pydicom + STOW-RS POST, {args.captures} stills at {args.resolution}")
        floor = await floor_captures(world, args.resolution, args.captures, args.interval)
        log(f"teleus: capture request → stored / visible, {args.captures} stills at {args.resolution}")
        teleus = await teleus_captures(world, args.resolution, args.captures, args.interval, opts.log_dir)
    finally:
        await world.aclose()
    p95 = teleus["visible_ms"]["p95"]
    return {
        "bench": "capture",
        "resolution": args.resolution,
        "floor": floor,
        "teleus": teleus,
        "targets": [
            {
                "name": "capture click → still visible, p95",
                "value_ms": p95,
                "limit_ms": TARGET_P95_MS,
                "met": p95 is not None and p95 <= TARGET_P95_MS,
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", type=int, default=30)
    parser.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="1080p")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between captures")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    out = OUT_DIR / f"capture-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(text + "\n")
    print(text)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
