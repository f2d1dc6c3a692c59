"""The floor: the barest aiortc sender of the same stamped synthetic frames, to a minimal page.

    python -m bench.floor_sender --width 1280 --height 720 --codec h264 [--port 0]

What it is: one capture thread reading ``StampedSource(open_source("synthetic:thyroid", w, h, fps))`` and
converting each frame to I420 (OpenCV's conversion, as teleus's ``frames.py``: PyAV's own swscale path costs
3–4× more and would handicap the floor) off the event loop, a latest-frame-wins hand-over to the event loop
(a newer frame overwrites one the encoder has not taken yet; overwrites are counted), one aiortc
``MediaStreamTrack`` whose pts come from the capture clock, and the encoder settings teleus uses
(``apply_encoding(VideoEncoding(...))``: x264 preset, bitrate cap). No data channels, no audio (``--audio``
adds a silent audio track in the video's stream, to show what lip sync costs; ``--audio-split`` puts it in a
stream of its own), no signaling server: the page
(served here at ``/``) POSTs its complete offer to ``/offer`` and gets the complete answer. ICE gathers on
127.0.0.1 only.

When ready it prints one JSON line on stdout: ``{"url": ..., "pid": ...}``; ``GET /stats`` reports the capture
counters, the event loop's lag since the last call and the thread names (bench/loopwatch.py). SIGTERM or
SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import os
import signal
import threading
import time
import uuid
from typing import Any, cast

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from bench.loopwatch import LoopLag, thread_names
from bench.stamp import StampedSource
from edge_capture.encoding import VideoEncoding, apply_encoding
from edge_capture.net import use_loopback_only
from edge_capture.sources.base import open_source

log = logging.getLogger("bench.floor_sender")

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
MIME = {"h264": "video/H264", "vp8": "video/VP8"}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>teleus bench floor</title>
<style>html,body{margin:0;height:100%;background:#000}video{display:block;width:100vw;height:100vh;object-fit:contain}</style>
</head><body><video id="v" autoplay muted playsinline></video><audio id="a" autoplay></audio>
<script>
(async () => {
  const mime = "__MIME__";
  const withAudio = __AUDIO__;
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.__benchPc = pc;
  const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
  if (withAudio) pc.addTransceiver("audio", { direction: "recvonly" });
  const caps = RTCRtpReceiver.getCapabilities("video").codecs;
  let chosen = caps.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  if (mime === "video/H264") {
    // what aiortc can send: Constrained Baseline / Baseline, packetization-mode 1
    const fits = (c) =>
      /packetization-mode=1/.test(c.sdpFmtpLine || "") && /profile-level-id=42(e0|00)1f/.test(c.sdpFmtpLine || "");
    chosen = chosen.filter(fits);
  }
  const rtx = caps.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  try { transceiver.setCodecPreferences([...chosen, ...rtx]); } catch (e) { transceiver.setCodecPreferences(chosen); }
  pc.ontrack = (event) => {
    const element = document.getElementById(event.track.kind === "video" ? "v" : "a");
    element.srcObject = new MediaStream([event.track]);
    element.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 3000);
  });
  const response = await fetch("/offer", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
  });
  await pc.setRemoteDescription(await response.json());
  window.__benchState = "answered";
})().catch((err) => { window.__benchError = String(err); });
</script></body></html>
"""


class Slot:
    """Latest-frame-wins hand-over from the capture thread to one track on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.item: tuple[av.VideoFrame, int] | None = None
        self.event = asyncio.Event()
        self.overwritten = 0

    def offer(self, item: tuple[av.VideoFrame, int]) -> None:
        self.loop.call_soon_threadsafe(self._set, item)

    def _set(self, item: tuple[av.VideoFrame, int]) -> None:
        if self.item is not None:
            self.overwritten += 1
        self.item = item
        self.event.set()

    async def take(self) -> tuple[av.VideoFrame, int]:
        while self.item is None:
            self.event.clear()
            await self.event.wait()
        item, self.item = self.item, None
        return item


class Capture:
    """The capture thread: read, stamp (inside the source), convert to I420, hand over."""

    def __init__(self, source: StampedSource) -> None:
        self.source = source
        self.slots: set[Slot] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.frames = 0
        self.convert_ns = 0
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            image = self.source.read()
            monotonic_ns = time.monotonic_ns()
            if image is None:
                break
            started = time.perf_counter_ns()
            # the conversion teleus uses (edge_capture/frames.py): PyAV's swscale bgr24→yuv420p costs 3–4× more
            planes = cast(npt.NDArray[np.uint8], cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            self.convert_ns += time.perf_counter_ns() - started
            self.frames += 1
            with self.lock:
                slots = list(self.slots)
            for slot in slots:
                slot.offer((frame, monotonic_ns))

    def stats(self) -> dict[str, Any]:
        frames = max(1, self.frames)
        return {
            "t": time.time(),
            "frames_captured": self.frames,
            "convert_ms_avg": self.convert_ns / frames / 1e6,
            "stamp_ms_avg": self.source.stamp_ns_total / max(1, self.source.counter) / 1e6,
            "overwritten": sum(s.overwritten for s in self.slots),
        }


class LatestTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, capture: Capture, slot: Slot) -> None:
        super().__init__()
        self.capture = capture
        self.slot = slot
        self.first_ns: int | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame, monotonic_ns = await self.slot.take()
        if self.first_ns is None:
            self.first_ns = monotonic_ns
        # 90 kHz pts from the capture clock, whole 100 µs steps (exact in libvpx's 1 µs time base too)
        frame.pts = (monotonic_ns - self.first_ns) * CLOCK_RATE // 1_000_000_000 // 9 * 9
        frame.time_base = TIME_BASE
        return frame

    def stop(self) -> None:
        with self.capture.lock:
            self.capture.slots.discard(self.slot)
        super().stop()


async def serve(args: argparse.Namespace) -> None:
    apply_encoding(VideoEncoding(codec=args.codec, bitrate_bps=int(args.bitrate * 1e6), x264_preset=args.x264_preset))
    use_loopback_only()
    inner = await asyncio.to_thread(open_source, args.source, args.width, args.height, args.fps)
    capture = Capture(StampedSource(inner))
    capture.thread.start()
    loop = asyncio.get_running_loop()
    pcs: set[RTCPeerConnection] = set()

    async def page(_: web.Request) -> web.Response:
        with_audio = "true" if args.audio or args.audio_split else "false"
        text = PAGE.replace("__MIME__", MIME[args.codec]).replace("__AUDIO__", with_audio)
        return web.Response(text=text, content_type="text/html")

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.add(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        slot = Slot(loop)
        with capture.lock:
            capture.slots.add(slot)
        pc.addTrack(LatestTrack(capture, slot))
        if args.audio or args.audio_split:
            # aiortc's silence generator; aiortc gives every track of a connection the same msid stream, so the
            # browser lip-syncs this audio with the video (as it does teleus's voice with its video)
            audio_sender = pc.addTrack(AudioStreamTrack())
            if args.audio_split:
                # bench-only: a stream id of its own for the audio (aiortc has no API for it), so the answer's
                # a=msid puts audio and video in different streams and the browser does not synchronise them
                audio_sender._stream_id = str(uuid.uuid4())
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})

    lag = LoopLag()
    lag.start()

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({**capture.stats(), "loop_lags_ms": lag.drain(), "threads": thread_names()})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/offer", offer)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"url": f"http://127.0.0.1:{port}/", "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await lag.stop()
        capture.stopping.set()
        for pc in list(pcs):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        await runner.cleanup()
        capture.thread.join(2)
        inner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_sender", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--source", default="synthetic:thyroid")
    parser.add_argument("--codec", choices=sorted(MIME), default="h264")
    teleus = VideoEncoding()
    parser.add_argument("--bitrate", type=float, default=teleus.bitrate_bps / 1e6, help="Mb/s cap (teleus's default)")
    parser.add_argument("--x264-preset", default=teleus.x264_preset)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--audio", action="store_true", help="also send a silent audio track (same msid stream)")
    parser.add_argument("--audio-split", action="store_true", help="the silent audio track in a stream of its own")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
