"""Recorded sessions for the review, dashboard and console tests, made the way the edge makes them: a live
consultation, then the recording created and uploaded through the edge's own API (media.mp4 + timeline.jsonl).

The synthetic MP4 shows its frame number twice: as digits for a person, and as a row of 8 white or black blocks
(bit k of the frame number in block k) that a test decodes from pixels to know which frame is on screen.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp import web
from PIL import Image, ImageDraw

from qc.score import OSAUS_ITEMS
from recordings import timeline as tl
from signaling_server.quality.scorer import Scorer
from signaling_server.session_recordings.files import store_of
from tests.conftest import Api, make_app, seed

WIDTH, HEIGHT, FPS = 320, 240, 30
BITS = 8
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"  # edge_capture/recording/mp4.py
BLOCK_Y = (196, 228)  # rows of the counter's blocks


def block_x(bit: int) -> tuple[int, int]:
    return 8 + bit * 38, 8 + bit * 38 + 30


def synthetic_mp4(seconds: float = 3.0, fps: int = FPS, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """H.264 in a fragmented MP4 as the edge writes it (a keyframe, so a fragment, every second), frame n at
    pts n/fps showing n."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4", options={"movflags": MOVFLAGS}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        for n in range(round(seconds * fps)):
            picture = Image.new("RGB", (width, height), (40, 40, 40))
            ImageDraw.Draw(picture).text((12, 12), f"frame {n}", fill=(255, 255, 255))
            pixels = np.asarray(picture).copy()
            for bit in range(BITS):
                x0, x1 = block_x(bit)
                pixels[BLOCK_Y[0] : BLOCK_Y[1], x0:x1] = 255 if (n >> bit) & 1 else 0
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def timeline_bytes(cid: str, events: Sequence[tl.Event], fps: float = FPS) -> bytes:
    lines: list[tl.Header | tl.Event] = [tl.Header(cid, 1_790_000_000_000.0, WIDTH, HEIGHT, fps), *events]
    return "".join(tl.encode(line) + "\n" for line in lines).encode()


def link(t: float, fps: float, rtt_ms: float = 80.0, loss: float = 0.0, peer: str = "p-expert") -> tl.Link:
    return tl.Link(t, (tl.ViewerLink(peer, fps, 1500.0, rtt_ms, loss),))


def thyroid_events(mark_at: float = 1.5) -> list[tl.Event]:
    """An expert joins, points, draws an arrow at `mark_at`, clears it; two labelled stills; a QC alert; link."""
    return [
        tl.Join(0.0, "p-expert", "expert", "Expert"),
        tl.Join(0.0, "p-sono", "sonographer", "Sono A"),
        tl.Pointer(0.5, 0.5, 0.5, True, "p-expert"),
        tl.Mark(mark_at, "m1", "arrow", ((0.2, 0.2), (0.6, 0.6)), "#ff0000", "p-expert"),
        tl.Capture(1.0, "c1", "1.2.826.0.1.3680043.8.498.1", "still", 1,
                   {"side": "R", "structure": "thyroid right lobe", "plane": "transverse", "mode": "b_mode"}),
        tl.Chat(1.2, "Tilt the probe", "Expert", "expert", None),
        tl.Qc(1.8, "gain_saturation", "raised", "too much gain"),
        tl.Capture(2.0, "c2", "1.2.826.0.1.3680043.8.498.2", "still", 1,
                   {"side": "R", "structure": "thyroid right lobe", "plane": "longitudinal", "mode": "b_mode"}),
        tl.Qc(2.2, "gain_saturation", "cleared", ""),
        tl.Clear(2.5, "p-expert"),
        link(1.0, 30.0, 80.0, 0.0),
        link(2.0, 5.0, 120.0, 0.02),  # frozen second
        link(3.0, 29.0, 400.0, 0.01),
    ]


async def join(api: Api, cid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await api.ws(f"/api/v1/consultations/{cid}/signal")
    await ws.send_json({"type": "join"})
    while True:
        message = await ws.receive_json(timeout=5)
        if message["type"] == "welcome":
            return ws


async def live_consultation(sono: Api, expert: Api, exam_type: str = "thyroid") -> str:
    request = {
        "exam_type": exam_type,
        "patient": {"id": "P-0001", "name": "Doe^Jane", "sex": "F", "birth_date": "1970-05-01"},
        "accession": "ACC1",
    }
    status, consultation = await sono.post("/api/v1/consultations", request)
    assert status == 201, consultation
    ws = await join(expert, consultation["id"])  # the first expert in makes it live
    await ws.close()
    return str(consultation["id"])


async def upload(edge: Api, rid: str, name: str, data: bytes, chunk: int = 1 << 20) -> None:
    for offset in range(0, len(data), chunk):
        part = data[offset : offset + chunk]
        url = f"{edge.base}/api/v1/recordings/{rid}/files/{name}?offset={offset}"
        async with edge.session.put(url, data=part, headers={"X-Chunk-SHA256": hashlib.sha256(part).hexdigest()}) as r:
            assert r.status == 200, await r.text()
    digest = hashlib.sha256(data).hexdigest()
    status, answer = await edge.post(f"/api/v1/recordings/{rid}/files/{name}/complete",
                                     {"size": len(data), "sha256": digest})
    assert status == 200, answer


async def record_session(
    sono: Api, expert: Api, edge: Api, events: Sequence[tl.Event] | None = None, media: bytes | None = None,
    exam_type: str = "thyroid", seconds: float = 3.0,
) -> dict[str, Any]:
    """A live consultation of `sono`'s site recorded by `edge` and uploaded whole: the recording's JSON."""
    cid = await live_consultation(sono, expert, exam_type)
    status, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 201, recording
    rid = recording["id"]
    await upload(edge, rid, "media.mp4", media if media is not None else synthetic_mp4(seconds))
    await upload(edge, rid, "timeline.jsonl", timeline_bytes(cid, thyroid_events() if events is None else events))
    status, ended = await edge.post(f"/api/v1/recordings/{rid}/end",
                                    {"files": ["media.mp4", "timeline.jsonl"], "duration_seconds": seconds})
    assert status == 200 and ended["state"] == "complete", ended
    return dict(ended)


async def score(app: web.Application, *recording_ids: str) -> None:
    """Store each recording's QC record now, with the server's own scorer (a child process scoring the files), as a
    server with scoring on does when the recording becomes complete."""
    scorer = Scorer(app, store_of(app))
    for recording_id in recording_ids:
        await scorer.score(recording_id)


def review_body(score: int = 4, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "osaus": dict.fromkeys(OSAUS_ITEMS, score),
        "image_quality": {"gain": score, "tgc": score, "depth": score, "colour_doppler": None,
                          "key_information": score, "overall": score},
        "comments": [{"t": 1.5, "text": "Good arrow placement"}, {"t": None, "text": "A tidy exam"}],
    }
    body.update(changes)
    return body


@asynccontextmanager
async def people_of(
    aiohttp_client: Any, db_url: str, folder: Any, **settings: Any
) -> AsyncIterator[tuple[web.Application, Api, Api, Api, Api]]:
    """The real app with these settings, seeded: (app, sono_a, expert, trainer signed in, the site's edge)."""
    app = await make_app(db_url, folder, **settings)
    client = await aiohttp_client(app)
    world = await seed(app)
    apis = [Api(client) for _ in range(3)]
    for api, name in zip(apis, ("sono_a", "expert", "trainer"), strict=True):
        await api.login(name)
    edge = Api(client, world.device_a_credential)
    try:
        yield app, apis[0], apis[1], apis[2], edge
    finally:
        for api in (*apis, edge):
            await api.close()
