"""edge_capture.encoding: real aiortc → aiortc calls on loopback, plus the encoder on its own."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import AsyncIterator, Iterator

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    VideoStreamTrack,
    rtcrtpsender,
)
from aiortc.codecs import get_encoder as stock_get_encoder
from aiortc.codecs import h264, vpx
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError

from edge_capture.encoding import (
    BITRATE_FLOOR_BPS,
    RTP_HISTORY_PACKETS,
    SenderRate,
    TunedH264Encoder,
    VideoEncoding,
    apply_encoding,
    can_retarget,
    fit_context,
    h264_level,
    open_libx264,
    prefer_codec,
    vbv_bufsize,
)
from edge_capture.net import use_loopback_only


@pytest.fixture
def aiortc_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever apply_encoding and use_loopback_only change process-wide is put back after the test."""
    for module in (h264, vpx):
        for name in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE"):
            monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(rtcrtpsender, "get_encoder", rtcrtpsender.get_encoder)
    monkeypatch.setattr(rtcrtpsender, "RTP_HISTORY_SIZE", rtcrtpsender.RTP_HISTORY_SIZE)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()
    yield


class NoiseTrack(VideoStreamTrack):
    """30 fps of random pixels: the worst case for an encoder, so the bitrate hits its cap."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        rng = np.random.default_rng(7)
        self.planes = [rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8) for _ in range(5)]
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.planes[self.count % len(self.planes)], format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


class Received:
    """What the receiving peer decoded: how many frames, and the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.last: av.VideoFrame | None = None

    async def first(self) -> av.VideoFrame:
        deadline = time.monotonic() + 10
        while self.last is None:
            assert time.monotonic() < deadline, "no video frame decoded"
            await asyncio.sleep(0.05)
        return self.last


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


@contextlib.asynccontextmanager
async def video_call(
    track: MediaStreamTrack, codec: str
) -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection, Received]]:
    """An edge-like sender (sendonly, codec preferred) and a receiver that keeps its decoded frames."""
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received = Received()
    tasks: list[asyncio.Task[None]] = []

    async def consume(remote: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                assert isinstance(frame, av.VideoFrame)
                received.count += 1
                received.last = frame

    @receiver_pc.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(consume(remote)))

    try:
        transceiver = sender_pc.addTransceiver(track, direction="sendonly")
        prefer_codec(transceiver, codec)  # type: ignore[arg-type]
        await negotiate(sender_pc, receiver_pc)
        yield sender_pc, receiver_pc, received
    finally:
        await sender_pc.close()
        await receiver_pc.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def transport_bytes_received(pc: RTCPeerConnection) -> int:
    report = await pc.getStats()
    return sum(s.bytesReceived for s in report.values() if s.type == "transport")


def live_encoder(pc: RTCPeerConnection) -> object:
    # The sender keeps its encoder private; the name-mangled attribute is the only way to see the live one.
    sender = pc.getTransceivers()[0].sender
    return sender._RTCRtpSender__encoder  # type: ignore[attr-defined]


def answered_codec(pc: RTCPeerConnection) -> str:
    return pc.getTransceivers()[0]._codecs[0].mimeType


async def test_h264_call_runs_the_chosen_preset_above_the_stock_cap(aiortc_globals: None) -> None:
    apply_encoding(VideoEncoding(codec="h264", bitrate_bps=6_000_000, x264_preset="ultrafast"))
    async with video_call(NoiseTrack(1280, 720), "h264") as (sender_pc, receiver_pc, received):
        assert answered_codec(sender_pc) == "video/H264"
        assert answered_codec(receiver_pc) == "video/H264"
        frame = await received.first()
        assert (frame.width, frame.height) == (1280, 720)

        encoder = live_encoder(sender_pc)
        assert isinstance(encoder, TunedH264Encoder)
        assert encoder.codec is not None and encoder.codec.is_open
        assert encoder.x264_options == {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "level": "31",
            "maxrate": "6000000",
            "bufsize": "1200000",  # a keyframe capped at 0.2 s of the rate
        }
        assert encoder.x264_settings is not None
        assert "subme=0" in encoder.x264_settings and "me=dia" in encoder.x264_settings  # ultrafast's

        # Three one-second windows: the best shows what the cap allows, even if a busy machine slows the
        # loop and REMB lowers the target for a while. The VBV cap is checked per frame (bits a frame × 30),
        # which a busy loop's bursts and stalls do not distort.
        await asyncio.sleep(1.0)
        windows: list[tuple[float, int, float]] = []  # (bits, frames, seconds)
        for _ in range(3):
            start_bytes, start_frames = await transport_bytes_received(receiver_pc), received.count
            start = time.monotonic()
            await asyncio.sleep(1.0)
            bits = (await transport_bytes_received(receiver_pc) - start_bytes) * 8
            windows.append((bits, received.count - start_frames, time.monotonic() - start))
        report = ", ".join(f"{b / s / 1e6:.2f} Mb/s at {n / s:.1f} fps" for b, n, s in windows)
        print(f"received {report}; encoder target {encoder.target_bitrate}")
        if sum(n for _, n, _ in windows) / sum(s for _, _, s in windows) < 25:
            pytest.skip(f"the machine is too busy to send 720p30 (REMB backs off): {report}")
        assert max(b / s for b, _, s in windows) > 4_000_000, f"not above aiortc's 3 Mb/s cap: {report}"
        per_frame = sum(b for b, _, _ in windows) / max(1, sum(n for _, n, _ in windows))
        assert per_frame * 30 < 7_000_000, f"6 Mb/s (+ RTP overhead) exceeded: {report}"


async def test_vp8_call_when_asked(aiortc_globals: None) -> None:
    apply_encoding(VideoEncoding(codec="vp8", bitrate_bps=4_000_000))
    async with video_call(NoiseTrack(640, 360), "vp8") as (sender_pc, _, received):
        assert answered_codec(sender_pc) == "video/VP8"
        frame = await received.first()
        assert (frame.width, frame.height) == (640, 360)
        encoder = live_encoder(sender_pc)
        assert isinstance(encoder, Vp8Encoder)
        assert vpx.MAX_BITRATE == 4_000_000
        assert BITRATE_FLOOR_BPS <= encoder.target_bitrate <= 4_000_000


def test_prefer_codec_orders_the_offer_and_keeps_rtx() -> None:
    async def offer_payloads(codec: str) -> list[str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            prefer_codec(pc.addTransceiver("video", direction="sendonly"), codec)  # type: ignore[arg-type]
            offer = await pc.createOffer()
            return [line.split()[1].split("/")[0] for line in offer.sdp.splitlines() if "a=rtpmap" in line]
        finally:
            await pc.close()

    h264_first = asyncio.run(offer_payloads("h264"))
    assert h264_first[:2] == ["H264", "rtx"] and "VP8" in h264_first
    vp8_first = asyncio.run(offer_payloads("vp8"))
    assert vp8_first[:2] == ["VP8", "rtx"] and "H264" in vp8_first


def test_apply_encoding_sets_the_bounds_and_installs_once(aiortc_globals: None) -> None:
    apply_encoding(VideoEncoding(bitrate_bps=6_000_000, x264_preset="veryfast"))
    apply_encoding(VideoEncoding(bitrate_bps=5_000_000, x264_preset="superfast"))
    for module in (h264, vpx):
        bounds = (module.DEFAULT_BITRATE, module.MAX_BITRATE, module.MIN_BITRATE)
        assert bounds == (5_000_000, 5_000_000, BITRATE_FLOOR_BPS)
    factory = rtcrtpsender.get_encoder
    assert factory.stock is stock_get_encoder  # type: ignore[attr-defined]
    assert rtcrtpsender.RTP_HISTORY_SIZE == RTP_HISTORY_PACKETS  # type: ignore[attr-defined]  # resends: ~0.9 s

    h264_codec = next(c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "H264")
    encoder = factory(h264_codec)  # type: ignore[arg-type]
    assert isinstance(encoder, TunedH264Encoder) and encoder.preset == "superfast"
    assert encoder.target_bitrate == 5_000_000
    encoder.target_bitrate = 20_000_000
    assert encoder.target_bitrate == 5_000_000
    encoder.target_bitrate = 1_000
    assert encoder.target_bitrate == BITRATE_FLOOR_BPS == 500_000

    apply_encoding(VideoEncoding(bitrate_bps=120_000))
    assert h264.MIN_BITRATE == h264.MAX_BITRATE == 120_000


@pytest.mark.parametrize(
    ("width", "height", "fps", "level"),
    [(640, 480, 30, 30), (1280, 720, 30, 31), (1280, 720, 60, 32), (1920, 1080, 30, 40), (1920, 1080, 60, 42)],
)
def test_h264_level_fits_the_frame(width: int, height: int, fps: int, level: int) -> None:
    assert h264_level(width, height, fps) == level


def test_h264_level_rises_with_the_bitrate() -> None:
    assert h264_level(1280, 720, 30, 6_000_000) == 31
    assert h264_level(1280, 720, 30, 16_000_000) == 32


@pytest.mark.parametrize(("preset", "subme"), [("ultrafast", "subme=0"), ("medium", "subme=7")])
def test_encoder_opens_libx264_with_the_preset_and_a_fitting_level(preset: str, subme: str) -> None:
    encoder = TunedH264Encoder(preset=preset)
    frame = av.VideoFrame.from_ndarray(np.full((1080 * 3 // 2, 1920), 128, np.uint8), format="yuv420p")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    nals = list(encoder._encode_frame(frame, force_keyframe=True))
    assert encoder.x264_options["preset"] == preset and encoder.x264_options["level"] == "40"
    assert encoder.x264_settings is not None and subme in encoder.x264_settings
    sps = next(nal for nal in nals if nal[0] & 0x1F == 7)
    assert sps[1] == 66  # profile_idc: Baseline, which browsers negotiate
    assert sps[3] == 40  # level_idc: 4.0 fits 1080p30 (aiortc would claim 3.1)


@pytest.mark.parametrize(
    "kwargs",
    [{"codec": "av1"}, {"bitrate_bps": 10}, {"x264_preset": "ludicrous"}, {"degradation": "colour"}],
)
def test_video_encoding_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        VideoEncoding(**kwargs)  # type: ignore[arg-type]


def _speckle_frames(count: int, start: int, width: int = 640, height: int = 360) -> Iterator[av.VideoFrame]:
    """Noise: the hardest picture for a rate control (x264 overshoots most on it)."""
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (height * 3 // 2, width), np.uint8), format="yuv420p")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        yield frame


def _encode(codec: av.VideoCodecContext, frames: Iterator[av.VideoFrame]) -> tuple[float, int]:
    """(Mb/s at 30 fps, keyframes) of what ``codec`` made of ``frames``."""
    sizes, keyframes = [], 0
    for frame in frames:
        for packet in codec.encode(frame):
            sizes.append(packet.size)
            keyframes += packet.is_keyframe
    return sum(sizes) * 8 * 30 / len(sizes) / 1e6, keyframes


def test_a_new_bitrate_reaches_the_open_x264_without_a_new_context_or_keyframe() -> None:
    codec, options = open_libx264(640, 360, 3_000_000, "ultrafast")
    assert options["bufsize"] == str(vbv_bufsize(3_000_000))
    high, keyframes = _encode(codec, _speckle_frames(30, 0))
    assert keyframes == 1 and can_retarget(codec)

    assert not fit_context(codec, 640, 360, 600_000)  # no new context needed: changed in place
    assert codec.bit_rate == 600_000 and codec.max_bit_rate == 600_000  # the VBV cap moved too
    _encode(codec, _speckle_frames(15, 30))  # x264 settles within its VBV buffer
    low, keyframes = _encode(codec, _speckle_frames(30, 45))
    assert keyframes == 0  # the same stream goes on: no IDR, so a page keeps decoding
    assert low < 0.8 and high > 2 * low  # and it runs at the new rate, capped (not the old 3 Mb/s VBV)

    assert fit_context(codec, 320, 180, 600_000)  # a new size does need a new context


def test_the_per_sender_encoder_follows_remb_in_place() -> None:
    encoder = TunedH264Encoder()
    opened = []
    original = encoder._open

    def counting_open(width: int, height: int) -> av.VideoCodecContext:
        opened.append((width, height))
        return original(width, height)

    encoder._open = counting_open  # type: ignore[method-assign]
    frames = _speckle_frames(20, 0)
    keyframes = 0
    for i, frame in enumerate(frames):
        if i == 10:
            encoder.target_bitrate = h264.MIN_BITRATE  # what a REMB does
        nals = list(encoder._encode_frame(frame, force_keyframe=False))
        keyframes += any(nal[0] & 0x1F == 5 for nal in nals)  # an IDR picture (x264 may slice it)
    assert len(opened) == 1 and keyframes == 1
    assert encoder.codec is not None and encoder.codec.bit_rate == h264.MIN_BITRATE


def test_sender_rate_reads_remb_and_each_receiver_report_once(aiortc_globals: None) -> None:
    """SenderRate against a real RTCRtpSender whose REMB and receiver report aiortc itself recorded."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, pack_remb_fci

    apply_encoding(VideoEncoding(bitrate_bps=4_000_000))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def scenario() -> None:
        sender = pc.addTransceiver(VideoStreamTrack(), direction="sendonly").sender
        sender._RTCRtpSender__encoder = TunedH264Encoder()  # type: ignore[attr-defined]  # made at the first packet
        now = [0.0]
        rate = SenderRate(4_000_000, clock=lambda: now[0])
        assert rate.update([sender]) == 4_000_000

        remb = pack_remb_fci(2_000_000, [sender._ssrc])
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=remb))
        now[0] = 0.5
        assert rate.update([sender]) == 2_000_000

        async def receiver_report(lost: int, fraction: int) -> None:
            info = RtcpReceiverInfo(ssrc=sender._ssrc, fraction_lost=fraction, packets_lost=lost,
                                    highest_sequence=1000, jitter=0, lsr=0, dlsr=0)  # fmt: skip
            await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=1, reports=[info]))

        await receiver_report(lost=0, fraction=0)  # opens a loss window
        now[0] = 1.0
        assert rate.update([sender]) == 2_000_000
        sender._RTCRtpSender__packet_count = 400  # type: ignore[attr-defined]  # what aiortc counts as sent
        await receiver_report(lost=20, fraction=200)  # 78 % in its own few milliseconds, 5 % over the window
        now[0] = 1.3
        assert rate.update([sender]) == 2_000_000  # a window is half a second at least: nothing judged yet
        await receiver_report(lost=100, fraction=64)
        now[0] = 2.1
        assert rate.update([sender]) == 1_750_000  # 100 lost, 300 received since the window opened: cut by 12.5 %
        now[0] = 2.3
        assert rate.update([sender]) == 1_750_000  # the same report does not cut twice
        assert rate.report()["fraction_lost"] == 0.25 and rate.report()["cuts"] == 1
        assert rate.shape_for(1280, 720).level == 0
        # 1.75 Mb/s is one step down for 1080p30, but a new size (a keyframe) waits for the congestion to pass
        assert rate.shape_for(1920, 1080).scale == 1.0
        now[0] = 4.2
        assert rate.shape_for(1920, 1080).scale < 1.0
        await pc.close()

    asyncio.run(scenario())
