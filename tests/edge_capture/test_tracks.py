"""edge_capture.tracks: latest-frame-wins video from the ring, and the RTP → capture-time map, checked
end to end with two real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from edge_capture.encoding import prefer_codec
from edge_capture.frames import SourceFrame
from edge_capture.net import use_loopback_only
from edge_capture.ring import FrameRing
from edge_capture.tracks import VIDEO_TIME_BASE, RingVideoTrack, capture_pts

WIDTH, HEIGHT = 640, 480
BLOCK = 32  # px per stamped bit: survives any sane encoder
BITS = 16


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()


def stamped_frame(index: int) -> SourceFrame:
    """A frame whose index is drawn as big black/white blocks: the bits on row 0, their complement on row 1."""
    image = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
    image[2 * BLOCK :, :, 1] = (np.arange(WIDTH) * 255 // WIDTH).astype(np.uint8)
    for bit in range(BITS):
        on = (index >> bit) & 1
        columns = slice(bit * BLOCK, (bit + 1) * BLOCK)
        image[:BLOCK, columns] = 235 if on else 16
        image[BLOCK : 2 * BLOCK, columns] = 16 if on else 235
    return SourceFrame(index, time.time_ns(), time.monotonic_ns(), image)


def read_stamp(frame: av.VideoFrame) -> int | None:
    luma = frame.to_ndarray(format="yuv420p")[: frame.height]
    centres = [bit * BLOCK + BLOCK // 2 for bit in range(BITS)]
    bits = [int(luma[BLOCK // 2, x] > 128) for x in centres]
    complement = [int(luma[BLOCK + BLOCK // 2, x] > 128) for x in centres]
    if any(b == c for b, c in zip(bits, complement, strict=True)):
        return None
    return sum(b << i for i, b in enumerate(bits))


class Camera:
    """A capture thread putting stamped frames into the ring at 30 fps, remembering each capture time."""

    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring
        self.capture_ms: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-camera")

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(1 / 30):
            frame = stamped_frame(index)
            self.capture_ms[index] = frame.capture_time_ns / 1e6
            self.ring.put(frame)
            index += 1

    def __enter__(self) -> Camera:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def received_rtp_timestamp(receiver: RTCRtpReceiver, frame: av.VideoFrame) -> int:
    """The RTP timestamp a decoded frame arrived with.

    aiortc's receiver does not give decoded frames the RTP timestamp as pts: its TimestampMapper subtracts
    the first frame's RTP timestamp (and unwraps), so pts starts at 0. Its private origin puts it back.
    """
    mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
    assert frame.time_base == VIDEO_TIME_BASE and frame.pts is not None
    return (frame.pts + mapper._origin) % (1 << 32)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_frame_map_gives_the_capture_time_of_each_received_frame(loopback: None, codec: str) -> None:
    ring = FrameRing()
    sent_map: dict[int, float] = {}
    track = RingVideoTrack(ring, on_frame=sent_map.__setitem__, name="viewer-1")
    edge = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: list[tuple[int, int | None]] = []  # (rtp, stamped index)
    tasks: list[asyncio.Task[None]] = []

    async def consume(remote: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                assert isinstance(frame, av.VideoFrame)
                received.append((received_rtp_timestamp(receiver, frame), read_stamp(frame)))

    @viewer.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in viewer.getTransceivers() if t.receiver.track is remote)
        tasks.append(asyncio.ensure_future(consume(remote, receiver)))

    try:
        with Camera(ring) as camera:
            transceiver = edge.addTransceiver(track, direction="sendonly")
            prefer_codec(transceiver, codec)  # type: ignore[arg-type]
            track.bind_sender(transceiver.sender)
            await edge.setLocalDescription(await edge.createOffer())
            await viewer.setRemoteDescription(edge.localDescription)
            await viewer.setLocalDescription(await viewer.createAnswer())
            await edge.setRemoteDescription(viewer.localDescription)
            deadline = time.monotonic() + 15
            while len(received) < 45:
                assert time.monotonic() < deadline, f"only {len(received)} frames received"
                await asyncio.sleep(0.05)
    finally:
        await edge.close()
        await viewer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ring.close()

    assert track.rtp_origin is not None
    identified = [(rtp, index) for rtp, index in received if index is not None]
    assert len(identified) >= 40, "the stamps did not survive the codec"
    mapped = [(rtp, index) for rtp, index in identified if rtp in sent_map]
    # The map starts once two frames agreed on the origin: at most the first few frames go without.
    assert len(mapped) >= len(identified) - 4
    for rtp, index in mapped:
        assert sent_map[rtp] == camera.capture_ms[index], f"frame {index} (rtp {rtp}) mapped wrongly"
    assert track.frames_sent >= len(received)


def put_frames(ring: FrameRing, indices: range, start_ns: int) -> None:
    for index in indices:
        image = np.zeros((48, 64, 3), np.uint8)
        ring.put(SourceFrame(index, 1_700_000_000_000_000_000 + index, start_ns + index * 33_333_333, image))


async def test_recv_takes_the_newest_frame_counts_skips_and_stamps_capture_pts() -> None:
    ring = FrameRing()
    track = RingVideoTrack(ring)
    put_frames(ring, range(0, 10), start_ns=5_000_000_000)
    first = await track.recv()
    assert first.pts == 0 and first.time_base == VIDEO_TIME_BASE
    assert (first.width, first.height, first.format.name) == (64, 48, "yuv420p")

    put_frames(ring, range(10, 13), start_ns=5_000_000_000)
    newest = await track.recv()
    assert newest.pts == capture_pts(3 * 33_333_333) == 8991  # frame 12's capture, counted from frame 9's
    assert (track.frames_sent, track.frames_skipped) == (2, 2)

    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing newer: it waits, it never repeats a frame
    put_frames(ring, range(13, 14), start_ns=5_000_000_000)
    assert (await waiting).pts == capture_pts(4 * 33_333_333) == 11997
    assert track.frames_skipped == 2


async def test_closing_the_ring_ends_the_track() -> None:
    ring = FrameRing()
    track = RingVideoTrack(ring)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    ring.close()
    with pytest.raises(MediaStreamError):
        await waiting
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_without_a_bound_sender_there_is_no_map() -> None:
    calls: list[tuple[int, float]] = []

    async def run() -> None:
        ring = FrameRing()
        track = RingVideoTrack(ring, on_frame=lambda rtp, ms: calls.append((rtp, ms)))
        put_frames(ring, range(3), start_ns=0)
        await track.recv()
        put_frames(ring, range(3, 4), start_ns=0)
        await track.recv()
        assert track.rtp_origin is None

    asyncio.run(run())
    assert calls == []


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert not [t for t in threading.enumerate() if t not in before and t.name == "test-camera"]


async def test_a_failing_frame_callback_does_not_stop_the_video(caplog: pytest.LogCaptureFixture) -> None:
    ring = FrameRing()

    def broken(rtp: int, capture_ms: float) -> None:
        raise ValueError("channel closed")

    track = RingVideoTrack(ring, on_frame=broken, name="viewer-3")
    track._clock.observe(0, None)  # as if bound to a sender whose origin is already known: 1000
    track._clock.observe(1000, 0)
    track._clock.observe(1000 + 9, 9)
    put_frames(ring, range(2), start_ns=0)
    with caplog.at_level(logging.ERROR):
        frame = await track.recv()
    assert frame.pts == 0
    assert "viewer-3" in caplog.text and "on_frame failed" in caplog.text
