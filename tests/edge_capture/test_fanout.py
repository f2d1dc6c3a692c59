"""edge_capture.fanout: one H.264 encode per frame for every page, checked with real aiortc peers on loopback,
plus the encoder and its tracks driven through aiortc's own sender code without a network."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import CODECS, h264
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
)

from edge_capture import resend
from edge_capture.encoding import SenderRate, VideoEncoding, prefer_codec
from edge_capture.fanout import PacketVideoTrack, SharedH264Encoder, abs_send_time_now
from edge_capture.frames import SourceFrame
from edge_capture.net import use_loopback_only
from edge_capture.ring import FrameRing
from edge_capture.tracks import RingVideoTrack, capture_pts
from edge_capture.viewer import Viewer, answer_sends
from edge_capture.voice import VoiceHub
from signaling_server.signaling.messages import Peer
from tests.edge_capture.test_tracks import Camera, put_frames, read_stamp, received_rtp_timestamp

BITRATE = 2_000_000


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback ICE, and a fixed H.264 bitrate: REMB cannot re-open the context, so keyframes come only when asked."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()
    for name in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE"):
        monkeypatch.setattr(h264, name, BITRATE)
    yield


@dataclass
class Decoded:
    rtp: int
    stamp: int | None
    keyframe: bool


class Page:
    """One receiving peer: decodes the edge's video, keeping each frame's RTP timestamp, stamp and type."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[Decoded] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.receiver: RTCRtpReceiver | None = None
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(remote: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is remote)
            if remote.kind == "video":
                self.receiver = receiver
                self._tasks.append(asyncio.ensure_future(self._consume(remote, receiver)))

    async def _consume(self, remote: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await self.reading.wait()
                frame = await remote.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frames.append(Decoded(received_rtp_timestamp(receiver, frame), read_stamp(frame), frame.key_frame))

    async def wait_for(self, count: int, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while len(self.frames) < count:
            assert time.monotonic() < deadline, f"only {len(self.frames)} of {count} frames decoded"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Link:
    """The edge's side of one page: its peer connection, its track on the shared encoder, its frame map."""

    page: Page
    pc: RTCPeerConnection
    track: PacketVideoTrack
    sender: RTCRtpSender
    sent_map: dict[int, float] = field(default_factory=dict)

    def stamps(self) -> list[int]:
        return [f.stamp for f in self.page.frames if f.stamp is not None]


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


@dataclass
class Call:
    ring: FrameRing
    shared: SharedH264Encoder
    camera: Camera
    links: list[Link] = field(default_factory=list)

    async def add_page(self, name: str) -> Link:
        sent_map: dict[int, float] = {}
        track = PacketVideoTrack(self.shared, on_frame=sent_map.__setitem__, name=name)
        edge = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = edge.addTransceiver(track, direction="sendonly")
        prefer_codec(transceiver, "h264")
        track.bind_sender(transceiver.sender)
        link = Link(Page(), edge, track, transceiver.sender, sent_map)
        self.links.append(link)
        await negotiate(edge, link.page.pc)
        return link


@contextlib.asynccontextmanager
async def call(pages: int) -> AsyncIterator[Call]:
    """A camera at 30 fps into a ring, one shared encoder, and ``pages`` receiving peers."""
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE, name="test")
    try:
        with Camera(ring) as camera:
            the_call = Call(ring, shared, camera)
            try:
                for i in range(pages):
                    await the_call.add_page(f"page-{i}")
                yield the_call
            finally:
                for link in the_call.links:
                    await link.pc.close()
                    await link.page.close()
    finally:
        await shared.close()
        ring.close()


def sender_encoder(sender: RTCRtpSender) -> Any:
    return sender._RTCRtpSender__encoder  # type: ignore[attr-defined]


async def test_two_pages_decode_every_picture_from_one_encode(loopback: None) -> None:
    async with call(pages=2) as c:
        for link in c.links:
            await link.page.wait_for(60)
        put, encoded, skipped = c.ring.frames_put, c.shared.frames_encoded, c.shared.frames_skipped
        encoders = [sender_encoder(link.sender) for link in c.links]

    assert c.shared.runs == 1
    # Each captured frame went into libx264 at most once (the reader only ever moves forward) ...
    assert encoded + skipped <= put
    # ... and no sender encoded anything itself: it only packed the shared packets.
    for encoder in encoders:
        assert isinstance(encoder, h264.H264Encoder) and encoder.codec is None
    for link in c.links:
        frames, stamps = link.page.frames, link.stamps()
        assert frames[0].keyframe, "a page must start at a keyframe"
        assert len(stamps) >= len(frames) - 1, "pictures decoded wrongly"
        assert all(b > a for a, b in itertools.pairwise(stamps)), "a picture repeated or out of order"
        assert len(frames) <= c.shared.frames_encoded
        assert link.track.keyframes_requested == 0, "a decoder failed and sent a PLI"
    first, second = (set(link.stamps()) for link in c.links)
    assert len(first & second) >= 50, "the two pages did not get the same pictures"


async def test_the_frame_map_gives_each_page_the_capture_time_of_each_picture(loopback: None) -> None:
    async with call(pages=2) as c:
        for link in c.links:
            await link.page.wait_for(45)

    origins = {link.track.rtp_origin for link in c.links}
    assert None not in origins and len(origins) == 2  # each sender has its own random origin
    for link in c.links:
        identified = [(f.rtp, f.stamp) for f in link.page.frames if f.stamp is not None]
        mapped = [(rtp, index) for rtp, index in identified if rtp in link.sent_map]
        # The map starts once two frames agreed on the origin: at most the first few frames go without.
        assert len(mapped) >= len(identified) - 4
        for rtp, index in mapped:
            assert link.sent_map[rtp] == c.camera.capture_ms[index], f"{link.track.name}: frame {index} mapped wrongly"


async def test_a_page_joining_later_starts_cleanly_at_a_keyframe(loopback: None) -> None:
    async with call(pages=1) as c:
        early = c.links[0]
        await early.page.wait_for(30)
        late = await c.add_page("late")
        await late.page.wait_for(20)
        keyframes = c.shared.keyframes_encoded

    assert c.shared.runs == 1, "the encoder restarted for the late page"
    assert keyframes >= 2  # the first page's start, the late page's start
    frames, stamps = late.page.frames, late.stamps()
    assert frames[0].keyframe
    assert len(stamps) == len(frames), "the late page decoded a broken picture"
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[0] > early.stamps()[0] + 25
    assert late.track.resyncs == 0 and late.track.frames_dropped <= 3  # only what was in flight as it joined
    assert late.track.keyframes_requested == 0, "the late page's decoder failed and sent a PLI"
    assert len(early.page.frames) >= 45, "the first page stalled while the late one joined"


async def test_a_pli_from_one_page_produces_a_keyframe_for_all(loopback: None) -> None:
    async with call(pages=2) as c:
        asking, other = c.links
        for link in c.links:
            await link.page.wait_for(20)
        await asyncio.sleep(0.3)
        keyframes, seen_by_other = c.shared.keyframes_encoded, len(other.page.frames)
        asked_before = asking.track.keyframes_requested
        assert asking.page.receiver is not None
        await asking.page.receiver._send_rtcp_pli(asking.sender._ssrc)  # what a decoder error makes it send

        deadline = time.monotonic() + 3
        while c.shared.keyframes_encoded == keyframes:
            assert time.monotonic() < deadline, "no keyframe after the PLI"
            await asyncio.sleep(0.02)
        await other.page.wait_for(seen_by_other + 10)

    assert asking.track.keyframes_requested == asked_before + 1
    assert other.track.keyframes_requested == 0
    assert any(f.keyframe for f in other.page.frames[seen_by_other:]), "the other page did not get the keyframe"


async def test_a_page_that_stops_reading_does_not_stall_the_others(loopback: None) -> None:
    async with call(pages=2) as c:
        steady, paused = c.links
        for link in c.links:
            await link.page.wait_for(20)

        async def steady_keeps_up() -> None:
            """For one second, the encoder keeps encoding and the steady page's sender takes every picture."""
            encoded, sent, decoded = c.shared.frames_encoded, steady.track.frames_sent, len(steady.page.frames)
            await asyncio.sleep(1.0)
            assert c.shared.frames_encoded - encoded >= 10, "the encoder stalled"
            assert steady.track.frames_sent - sent >= c.shared.frames_encoded - encoded - 2
            assert len(steady.page.frames) - decoded >= 8

        # A page that stops taking its decoded pictures: the edge does not even notice.
        paused.page.reading.clear()
        await steady_keeps_up()
        paused.page.reading.set()

        # An edge-side track whose sender stops reading: it falls behind alone, and asks for nothing meanwhile.
        stalled = PacketVideoTrack(c.shared, name="stalled")
        first = await stalled.recv()
        assert first.is_keyframe
        keyframes = c.shared.keyframes_encoded
        await steady_keeps_up()
        assert stalled.resyncs >= 1 and len(stalled._queue) <= c.shared.queue_frames
        assert c.shared.keyframes_encoded - keyframes <= 1  # x264's own interval at most, never one per resync
        resumed = await asyncio.wait_for(stalled.recv(), 3)
        assert resumed.is_keyframe
        stalled.stop()
        await paused.page.wait_for(len(paused.page.frames) + 10)

    assert c.shared.runs == 1
    assert steady.track.resyncs == 0


# ---- the encoder and its tracks through aiortc's own sender code, no network --------------------------------

H264 = next(c for c in CODECS["video"] if c.mimeType == "video/H264")


async def next_packet(sender: RTCRtpSender, codec: RTCRtpCodecParameters = H264) -> tuple[list[bytes], int]:
    """What the sender's loop does for each packet: recv() from its track, then pack() (made on first use)."""
    encoded = await sender._next_encoded_frame(codec)
    assert encoded is not None
    return encoded.payloads, encoded.timestamp


def is_keyframe(payloads: list[bytes]) -> bool:
    """Whether these RTP payloads carry an IDR slice (NAL type 5), alone, in a STAP-A or in an FU-A."""
    for payload in payloads:
        kind = payload[0] & 0x1F
        if kind == 5 or (kind == 28 and payload[1] & 0x1F == 5):
            return True
        if kind == 24:
            offset = 1
            while offset + 2 < len(payload):
                size = int.from_bytes(payload[offset : offset + 2], "big")
                if payload[offset + 2] & 0x1F == 5:
                    return True
                offset += 2 + size
    return False


async def remb(sender: RTCRtpSender, bitrate: int) -> None:
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bitrate, [sender._ssrc]))
    )


async def step(ring: FrameRing, index: int, senders: list[RTCRtpSender]) -> list[list[bytes]]:
    """Every sender asks for its next packet, then frame ``index`` is captured: each sender's RTP payloads."""
    asking = [asyncio.ensure_future(next_packet(sender)) for sender in senders]
    await asyncio.sleep(0.01)
    put_frames(ring, range(index, index + 1), start_ns=0)
    packed = await asyncio.wait_for(asyncio.gather(*asking), 5)
    assert all(timestamp == capture_pts(index * 33_333_333) for _, timestamp in packed)
    return [payloads for payloads, _ in packed]


@contextlib.asynccontextmanager
async def senders(shared: SharedH264Encoder, count: int) -> AsyncIterator[list[RTCRtpSender]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    result: list[RTCRtpSender] = []
    try:
        for i in range(count):
            track = PacketVideoTrack(shared, name=f"page-{i}")
            sender = pc.addTransceiver(track, direction="sendonly").sender
            track.bind_sender(sender)
            result.append(sender)
        yield result
    finally:
        for sender in result:
            sender.track.stop()
        await shared.close()
        await pc.close()


async def test_the_encoder_follows_the_lowest_remb_in_place_without_a_keyframe(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h264, "MIN_BITRATE", 300_000)
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE)
    async with senders(shared, 2) as (a, b):
        assert all(is_keyframe(p) for p in await step(ring, 0, [a, b]))
        assert shared.x264_options["maxrate"] == str(BITRATE)
        x264 = shared._x264
        assert x264 is not None and x264.codec is not None

        await remb(a, 1_500_000)
        await remb(b, 1_000_000)
        assert not any(is_keyframe(p) for p in await step(ring, 1, [a, b]))  # retargeted in place
        assert shared.bitrate_bps == 1_000_000 and x264.codec.bit_rate == x264.codec.max_bit_rate == 1_000_000
        assert sender_encoder(a).codec is None and sender_encoder(b).codec is None  # the senders only pack

        await remb(b, 1_080_000)
        assert not any(is_keyframe(p) for p in await step(ring, 2, [a, b]))
        assert shared.bitrate_bps == 1_080_000 and x264.codec.max_bit_rate == 1_080_000

        await remb(b, 20_000_000)  # clamped by aiortc to h264.MAX_BITRATE: a's 1.5 Mb/s is now the lowest
        assert not any(is_keyframe(p) for p in await step(ring, 3, [a, b]))
        assert x264.codec.max_bit_rate == 1_500_000 and shared.frames_encoded == 4
        assert x264.contexts_opened == 1  # one context all along: no keyframe for anyone
    ring.close()


def put_large_frame(ring: FrameRing, index: int) -> None:
    image = np.full((720, 1280, 3), 90, np.uint8)  # large enough for a low rate to be worth degrading
    ring.put(SourceFrame(index, 1_700_000_000_000_000_000 + index, index * 33_333_333, image))


@pytest.mark.parametrize(("degradation", "size", "thinned"), [("resolution", (854, 480), False),
                                                              ("framerate", (1280, 720), True)])  # fmt: skip
async def test_a_slow_link_degrades_as_set_and_the_ring_keeps_the_full_picture(
    loopback: None, monkeypatch: pytest.MonkeyPatch, degradation: str, size: tuple[int, int], thinned: bool
) -> None:
    monkeypatch.setattr(h264, "MIN_BITRATE", 150_000)
    ring = FrameRing()
    now = [0.0]
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE, rate=SenderRate(BITRATE, degradation, clock=lambda: now[0]))
    async with senders(shared, 1) as (sender,):
        asking = asyncio.ensure_future(next_packet(sender))
        await asyncio.sleep(0.01)
        put_large_frame(ring, 0)
        await asyncio.wait_for(asking, 5)
        assert shared._x264 is not None and shared._x264.codec is not None
        assert (shared._x264.codec.width, shared._x264.codec.height) == (1280, 720)

        await remb(sender, 1_000_000)  # 0.036 bit a pixel at 30 fps: one step down
        asking = asyncio.ensure_future(next_packet(sender))
        put_large_frame(ring, 1)  # the fall of the rate is seen with this frame: congestion, at 0 s
        for _ in range(250):
            if shared.frames_encoded + shared.frames_thinned + shared.frames_skipped >= 2:
                break
            await asyncio.sleep(0.02)
        assert (shared._x264.codec.width, shared._x264.codec.height) == (1280, 720)  # no new size while congested
        now[0] = 3.0  # the congestion has passed (SHAPE_SETTLE_S)
        for index in range(2, 5):
            await asyncio.sleep(0.05)
            put_large_frame(ring, index)
        await asyncio.wait_for(asking, 5)
        for _ in range(250):  # until the encoder has read frame 4 (or skipped past it in the ring)
            if shared.frames_encoded + shared.frames_thinned + shared.frames_skipped >= 5:
                break
            await asyncio.sleep(0.02)
        codec = shared._x264.codec
        assert (codec.width, codec.height) == size
        assert (shared.frames_thinned > 0) is thinned  # every other frame read is not encoded
        # x264 budgets a frame at rate / 30: at 15 fps it is told twice the target, so the link gets the target
        assert codec.bit_rate == shared.bitrate_bps * (2 if thinned else 1)
        latest = ring.latest()
        assert latest is not None and latest.image.shape[:2] == (720, 1280)  # stills come from here, untouched
    ring.close()


async def test_a_pli_reaches_the_shared_encoder_through_the_sender(loopback: None) -> None:
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE)
    async with senders(shared, 2) as (a, b):
        for index in range(3):
            assert [is_keyframe(p) for p in await step(ring, index, [a, b])] == [index == 0] * 2
        await b._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=b._ssrc))
        assert all(is_keyframe(p) for p in await step(ring, 3, [a, b]))
        assert b.track.keyframes_requested == 1  # type: ignore[attr-defined]
        assert shared.frames_encoded == 4 and shared.keyframes_encoded == 2
    ring.close()


async def test_a_track_that_falls_behind_drops_its_queue_and_restarts_at_a_keyframe() -> None:
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE, queue_frames=3, keyframe_ask_seconds=0.3)
    fast, slow = PacketVideoTrack(shared, name="fast"), PacketVideoTrack(shared, name="slow")

    async def capture_and_read(index: int, *tracks: PacketVideoTrack) -> list[av.Packet]:
        reading = [asyncio.ensure_future(track.recv()) for track in tracks]
        await asyncio.sleep(0.01)
        put_frames(ring, range(index, index + 1), start_ns=0)
        return await asyncio.wait_for(asyncio.gather(*reading), 3)

    try:
        assert all(p.is_keyframe for p in await capture_and_read(0, fast, slow))
        for index in range(1, 6):  # slow reads nothing: 5 frames for a queue of 3
            assert not (await capture_and_read(index, fast))[0].is_keyframe
        assert (slow.resyncs, slow.frames_dropped, len(slow._queue)) == (1, 5, 0)
        assert shared.keyframes_encoded == 1  # falling behind alone asks for nothing

        await asyncio.sleep(0.3)  # reading again, past the ask interval: it asks at once
        packets = await capture_and_read(6, fast, slow)
        assert all(p.is_keyframe for p in packets) and packets[1].pts == capture_pts(6 * 33_333_333)

        for index in range(7, 11):  # behind again at once: this time its ask waits for the interval
            await capture_and_read(index, fast)
        assert slow.resyncs == 2
        asked = slow._keyframe_asked_at
        assert asked is not None
        resumed = asyncio.ensure_future(slow.recv())
        index = 11
        while not resumed.done():
            await capture_and_read(index, fast)
            index += 1
        assert (await resumed).is_keyframe
        assert index >= 13, "it asked at once: pictures in between should have gone by without a keyframe"
        assert slow._keyframe_asked_at is not None and slow._keyframe_asked_at - asked >= 0.3
        assert fast.resyncs == 0 and fast.frames_dropped == 0 and fast.frames_sent == index
    finally:
        fast.stop()
        slow.stop()
        await shared.close()
        ring.close()


async def test_the_encoder_runs_only_while_a_track_reads() -> None:
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE)
    first = PacketVideoTrack(shared, name="first")
    assert not shared.running
    put_frames(ring, range(0, 1), start_ns=5_000_000_000)
    packet = await first.recv()
    assert shared.running and packet.is_keyframe and packet.pts == 0
    first.stop()
    assert not shared.running and shared.subscribers == 0

    put_frames(ring, range(1, 3), start_ns=5_000_000_000)
    second = PacketVideoTrack(shared, name="second")
    packet = await second.recv()
    assert packet.is_keyframe and packet.pts == 0  # a fresh run: a new context, pts from its first frame
    assert shared.runs == 2

    waiting = asyncio.ensure_future(second.recv())
    await asyncio.sleep(0.01)
    ring.close()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 3)
    assert second.readyState == "ended" and not shared.running
    await shared.close()


async def test_while_the_event_loop_runs_late_frames_are_dropped_not_queued() -> None:
    """Guidance first: a loop that resumed the encoder late (the edge saturated) makes it drop the next frames
    unencoded (counted), never queue them; at most ``max_shed_seconds`` pass without a frame."""
    ring = FrameRing()
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE, shed_after_seconds=0.05, max_shed_seconds=1.0)
    page = PacketVideoTrack(shared, name="page")
    loop = asyncio.get_running_loop()
    try:
        put_frames(ring, range(0, 1), start_ns=0)
        assert (await asyncio.wait_for(page.recv(), 10)).pts == 0
        await asyncio.sleep(1.0)  # past max_shed_seconds: frame 1 goes out however busy this machine is
        # The loop stalls while frame 1 is in x264's worker thread: this callback runs after the ring's wake-up and
        # queues the stall behind the encoder's step, which hands the frame to the worker and waits.
        reading = asyncio.ensure_future(page.recv())
        put_frames(ring, range(1, 2), start_ns=0)
        loop.call_soon(loop.call_soon, time.sleep, 0.3)
        assert (await asyncio.wait_for(reading, 10)).pts == capture_pts(33_333_333)

        reading = asyncio.ensure_future(page.recv())
        for index in range(2, 8):  # the loop was late: within max_shed_seconds, none of these is encoded
            put_frames(ring, range(index, index + 1), start_ns=0)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert not reading.done() and shared.frames_encoded == 2 and shared.frames_shed >= 1
        assert shared.frames_shed + shared.frames_skipped == 6  # each dropped (shed) or never woken for (newer one)
        await asyncio.sleep(1.0)  # past max_shed_seconds: the next frame goes out
        put_frames(ring, range(8, 9), start_ns=0)
        assert (await asyncio.wait_for(reading, 10)).pts == capture_pts(8 * 33_333_333)
        assert shared.frames_encoded == 3 and len(page._queue) == 0 and page.frames_dropped == 0
    finally:
        page.stop()
        await shared.close()
        ring.close()


# ---- the viewer: shared for H.264, its own encoder for a page that cannot take it ----------------------------


async def vp8_only_answer(pc: RTCPeerConnection, offer: str) -> str:
    """An answer from a page that cannot decode H.264."""
    video = pc.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"])
    pc.addTransceiver("audio", direction="recvonly")
    return await answer(pc, offer)


async def answer(pc: RTCPeerConnection, offer: str) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


async def test_viewers_share_the_h264_encoder_and_a_vp8_page_gets_its_own(loopback: None) -> None:
    ring = FrameRing()
    voice = VoiceHub(name="c1")
    shared = SharedH264Encoder(ring, bitrate_bps=BITRATE, name="c1")
    encoding = VideoEncoding(codec="h264", bitrate_bps=BITRATE)
    viewers = [
        Viewer(
            "c1",
            Peer(f"p{i}", "observer", f"observer {i}"),
            ring,
            voice,
            encoding,
            RTCConfiguration(iceServers=[]),
            lambda *a: None,
            lambda *a: None,
            shared,
        )
        for i in range(3)
    ]
    pages = [Page() for _ in viewers]
    try:
        with Camera(ring):
            for i, (viewer, page) in enumerate(zip(viewers, pages, strict=True)):
                offer = await viewer.offer()
                sdp = await (vp8_only_answer(page.pc, offer) if i == 2 else answer(page.pc, offer))
                assert answer_sends(sdp, "h264") == (i != 2)
                await viewer.accept_answer(sdp)
            for page in pages:
                await page.wait_for(20)
            assert [v.stats["video_encoder"] for v in viewers] == ["shared", "shared", "own"]
            assert isinstance(viewers[2].video, RingVideoTrack)
            assert shared.subscribers == 2 and shared.runs == 1
    finally:
        for viewer, page in zip(viewers, pages, strict=True):
            await viewer.close()
            await page.close()
        await shared.close()
        voice.close()
        await voice.wait_closed()
        ring.close()
    assert not shared.running


def newest_sent(sender: RTCRtpSender) -> Any:
    """The packet the sender sent last, from its resend history."""
    history = sender._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
    now = abs_send_time_now()
    return min(history.values(), key=lambda p: (now - p.extensions.abs_send_time) & 0xFFFFFF)


def rtx_sent(sender: RTCRtpSender) -> int:
    """Resends so far: aiortc numbers each one on the RTX stream (and nothing else)."""
    return sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined,no-any-return]


async def nack(sender: RTCRtpSender, sequence_number: int) -> None:
    await sender._handle_rtcp_packet(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=[sequence_number])
    )


async def test_a_nack_is_answered_unless_its_packet_is_superseded_stale_or_over_budget(loopback: None) -> None:
    """Real peers: NACKs reach the resend hook through aiortc's RTCP handling, and what it sends shows on RTX."""
    async with call(1) as c:
        (link,) = c.links
        await link.page.wait_for(10)
        sender, track = link.sender, link.track
        assert sender._RTCRtpSender__rtx_payload_type is not None  # type: ignore[attr-defined]

        before_keyframe = newest_sent(sender)
        resent = rtx_sent(sender)
        await nack(sender, before_keyframe.sequence_number)  # young, after the first keyframe, within budget
        assert rtx_sent(sender) == resent + 1 and track.resends["resend"] == 1

        keyframes = c.shared.keyframes_encoded
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc))
        for _ in range(500):  # until the keyframe has gone out
            if c.shared.keyframes_encoded > keyframes and track._keyframe_sent_abs is not None:
                break
            await asyncio.sleep(0.02)
        await link.page.wait_for(len(link.page.frames) + 3)
        resent = rtx_sent(sender)
        await nack(sender, before_keyframe.sequence_number)  # the picture it belonged to is not needed any more
        assert rtx_sent(sender) == resent and track.resends["superseded"] == 1

        # a round trip bound of a millisecond: any packet is too old; the page gets a keyframe instead
        track.resend_limits = resend.ResendLimits(min_age_s=0.001, no_rtt_age_s=0.001, max_age_s=0.001)
        asked = track.keyframes_requested
        await asyncio.sleep(0.05)
        await nack(sender, newest_sent(sender).sequence_number)
        assert rtx_sent(sender) == resent and track.resends["too_old"] == 1
        assert track.keyframes_requested == asked + 1

        # no budget for resends: none goes out
        track.resend_limits = resend.ResendLimits(budget_share=0.0, min_burst_bytes=0)
        await nack(sender, newest_sent(sender).sequence_number)
        assert rtx_sent(sender) == resent and track.resends["over_budget"] == 1
