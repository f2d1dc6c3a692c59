"""edge_capture.voice: mix-minus voice through the edge, with real Opus over loopback peer connections."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import AsyncIterator

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from edge_capture.net import use_loopback_only
from edge_capture.voice import (
    AIORTC_AUDIO_LEVEL,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    VoiceHub,
    audio_level_dbov,
    use_fast_audio_level,
)
from tests.waiting import eventually


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()


class ToneTrack(MediaStreamTrack):
    """A microphone playing a sine tone: s16 mono 48 kHz, 20 ms frames, in real time unless told not to."""

    kind = "audio"

    def __init__(self, frequency: float, real_time: bool = True, amplitude: int = 8000, stereo: bool = False) -> None:
        super().__init__()
        self.stereo = stereo
        self.frequency = frequency
        self.amplitude = amplitude
        self.real_time = real_time
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.real_time:
            if self._start is None:
                self._start = time.monotonic()
            await asyncio.sleep(max(0.0, self._start + self.sent * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()))
        else:
            await asyncio.sleep(0)  # a flood, but one that lets the loop breathe
        t = (self.sent * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        samples = (self.amplitude * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
        if self.stereo:  # (mono would be upmixed by the hub's resampler at -3 dB, as FFmpeg does)
            samples = np.repeat(samples, 2)
        layout = "stereo" if self.stereo else "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.sent * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent += 1
        return frame


class Page:
    """A browser stand-in: its microphone plays a tone; it records what it hears (as decoded by aiortc)."""

    def __init__(self, frequency: float | None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = ToneTrack(frequency) if frequency is not None else None
        self.heard: list[np.ndarray] = []
        self.formats: set[tuple[str, str, int, int]] = set()
        self.recording = False
        self.hearing = False  # the last frame heard was more than Opus-decoded silence
        self.task: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.task = asyncio.ensure_future(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self.formats.add((frame.format.name, frame.layout.name, frame.sample_rate, frame.samples))
                samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.hearing = bool(np.abs(samples).max() > 100)
                if self.recording:
                    self.heard.append(samples)

    async def close(self) -> None:
        await self.pc.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def join(hub: VoiceHub, edge_pc: RTCPeerConnection, page: Page, peer_id: str) -> None:
    """The edge offers a sendrecv audio transceiver carrying the mix; the page answers with its microphone."""

    @edge_pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        hub.add_talker(peer_id, track)

    edge_pc.addTransceiver(hub.listener_track(peer_id), direction="sendrecv")
    await edge_pc.setLocalDescription(await edge_pc.createOffer())
    await page.pc.setRemoteDescription(edge_pc.localDescription)
    if page.microphone is not None:
        page.pc.addTrack(page.microphone)
    await page.pc.setLocalDescription(await page.pc.createAnswer())
    await edge_pc.setRemoteDescription(page.pc.localDescription)


@contextlib.asynccontextmanager
async def consultation(*frequencies: float | None) -> AsyncIterator[tuple[VoiceHub, list[Page]]]:
    hub = VoiceHub("test-consultation")
    pages = [Page(f) for f in frequencies]
    edge_pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in pages]
    try:
        for number, (edge_pc, page) in enumerate(zip(edge_pcs, pages, strict=True)):
            await join(hub, edge_pc, page, f"peer-{number}")
        yield hub, pages
    finally:
        for pc in edge_pcs:
            await pc.close()
        for page in pages:
            await page.close()
        hub.close()
        await hub.wait_closed()


async def hearing(pages: list[Page]) -> None:
    """Until every page hears a tone: connected, and past Opus's first (silent) frames, however busy the machine."""
    await eventually(lambda: all(page.hearing for page in pages), timeout=60, what="every page to hear a tone")


async def record(pages: list[Page], seconds: float) -> None:
    """Until every page has heard ``seconds`` of audio (a busy loop delivers fewer frames a second)."""
    for page in pages:
        page.recording = True
    await asyncio.sleep(seconds)
    await eventually(
        lambda: all(sum(len(h) for h in page.heard) >= seconds * SAMPLE_RATE for page in pages),
        timeout=60,
        what=f"{seconds} s of audio on every page",
    )
    for page in pages:
        page.recording = False


def spectrum_peak(samples: np.ndarray) -> tuple[float, float]:
    """(dominant frequency in Hz, fraction of the spectrum's energy within 20 Hz of it)."""
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    peak = float(frequencies[int(np.argmax(power[1:])) + 1])
    near = np.abs(frequencies - peak) <= 20
    return peak, float(power[near].sum() / power.sum())


def band_energy(samples: np.ndarray, frequency: float) -> float:
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(power[np.abs(frequencies - frequency) <= 20].sum() / power.sum())


async def test_each_page_hears_only_the_other(loopback: None) -> None:
    async with consultation(440.0, 1000.0) as (hub, (page_a, page_b)):
        await hearing([page_a, page_b])
        await record([page_a, page_b], 1.0)
        assert hub.buffered_ms("peer-0") <= 100 and hub.buffered_ms("peer-1") <= 100

    for page, hears, own in ((page_a, 1000.0, 440.0), (page_b, 440.0, 1000.0)):
        assert page.formats == {("s16", "stereo", SAMPLE_RATE, FRAME_SAMPLES)}  # what aiortc's Opus decodes to
        heard = np.concatenate(page.heard)
        peak, share = spectrum_peak(heard)
        # On a very busy machine the hub's clock skips ahead (a click, a jump in phase) every few tenths of a second,
        # which smears the peak by a few hertz; 440 and 1000 Hz stay far apart.
        assert abs(peak - hears) <= 15, f"heard {peak} Hz, expected {hears} Hz"
        assert share > 0.4  # a pure tone (0.99 on an idle machine), less the clicks a busy loop makes
        # its own voice mixed in at even -17 dB would put 0.01 of the energy there; clicks alone put < 0.001
        assert band_energy(heard, own) < 0.01, "a page hears its own voice"


async def test_a_lone_talker_hears_silence_and_others_hear_them(loopback: None) -> None:
    async with consultation(440.0, None) as (_hub, (talker, listener)):
        await hearing([listener])
        await record([talker, listener], 0.6)
    assert np.abs(np.concatenate(talker.heard)).max() <= 2  # nobody else talks: (Opus-decoded) silence
    peak, _ = spectrum_peak(np.concatenate(listener.heard))
    assert abs(peak - 440) <= 15


async def test_with_nobody_talking_a_listener_gets_silence_in_real_time() -> None:
    hub = VoiceHub("quiet")
    track = hub.listener_track("peer-0")
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = [await track.recv() for _ in range(10)]
        elapsed = loop.time() - start
    finally:
        hub.close()
        await hub.wait_closed()
    # Paced at 20 ms a frame, not as fast as the listener asks (a busy machine only makes it later).
    assert elapsed >= 9 * 0.020
    for frame in frames:
        assert (frame.format.name, frame.layout.name, frame.sample_rate, frame.samples) == (
            "s16",
            "stereo",
            SAMPLE_RATE,
            FRAME_SAMPLES,
        )
        assert not frame.to_ndarray().any()
    assert [f.pts for f in frames] == sorted(f.pts or 0 for f in frames)
    assert track.readyState == "ended"


async def test_buffers_stay_bounded_when_a_talker_floods() -> None:
    hub = VoiceHub("flood")
    flood = ToneTrack(440.0, real_time=False)
    hub.add_talker("peer-0", flood)
    listener = hub.listener_track("peer-1")  # connected, but its sender never reads
    try:
        await eventually(lambda: flood.sent > 100, what="a flood")  # far more voice than the 100 ms a hub keeps
        assert hub.buffered_ms("peer-0") <= 100
        assert hub.dropped_frames("peer-0") >= flood.sent - 5 - 20
        frames = []
        while True:  # the listener's queue is bounded too: what is queued is at most ~100 ms
            frames.append(await asyncio.wait_for(listener.recv(), 0.1))
            if len(frames) > 5:
                break
    finally:
        hub.close()
        await hub.wait_closed()
    assert frames[0].pts is not None and frames[-1].pts is not None
    assert frames[-1].pts - frames[0].pts >= 5 * FRAME_SAMPLES  # the sixth came from the clock, not a backlog


async def test_mixing_sums_voices_and_clips_instead_of_wrapping() -> None:
    hub = VoiceHub("mix")
    # 450 Hz is 9 whole cycles a frame: every frame is alike, so the voices add in phase however they align
    quiet = [ToneTrack(450.0, amplitude=5000, stereo=True) for _ in range(3)]
    loud = ToneTrack(450.0, amplitude=30000, stereo=True)
    for number, track in enumerate([*quiet, loud]):
        hub.add_talker(f"talker-{number}", track)
    hears_quiet = hub.listener_track("talker-3")  # its own loud voice left out: 3 × 5000
    hears_all = hub.listener_track("listener")  # 3 × 5000 + 30000: must clip
    try:
        await asyncio.sleep(0.3)
        for _ in range(4):  # skip what was mixed while the talkers were still starting
            await hears_quiet.recv()
            await hears_all.recv()
        summed = (await hears_quiet.recv()).to_ndarray().astype(np.int32).reshape(-1)
        clipped = (await hears_all.recv()).to_ndarray().astype(np.int32).reshape(-1)
    finally:
        hub.close()
        await hub.wait_closed()
    assert 14_990 <= summed.max() <= 15_000 and -15_000 <= summed.min() <= -14_990
    assert clipped.max() == 32767 and clipped.min() == -32768
    # no wrap-around: where the sum is clipped the sign of the tone is kept
    reference = np.sin(2 * np.pi * 450 * np.arange(len(clipped) // 2) / SAMPLE_RATE)
    strong = np.abs(reference) > 0.5
    assert (np.sign(clipped[::2][strong]) == np.sign(reference[strong])).all()
    assert all(track.readyState == "live" for track in [*quiet, loud])  # the hub consumes; it does not own


async def test_removing_a_peer_ends_its_listener_and_its_voice() -> None:
    hub = VoiceHub("remove")
    hub.add_talker("a", ToneTrack(440.0))
    listener_a = hub.listener_track("a")
    listener_b = hub.listener_track("b")
    try:
        await asyncio.sleep(0.1)
        hub.remove("a")
        assert listener_a.readyState == "ended"
        with pytest.raises(MediaStreamError):
            await listener_a.recv()
        assert hub.buffered_ms("a") == 0
        while True:  # drain what was mixed before the removal; then b hears only silence
            frame = await asyncio.wait_for(listener_b.recv(), 0.2)
            if not frame.to_ndarray().any():
                break
    finally:
        hub.close()
        await hub.wait_closed()
    assert listener_b.readyState == "ended"
    with pytest.raises(RuntimeError):
        hub.listener_track("c")


def test_the_fast_audio_level_is_aiortcs_to_the_decibel() -> None:
    rng = np.random.default_rng(7)
    frames = [np.zeros(FRAME_SAMPLES * 2, np.int16), np.full(FRAME_SAMPLES * 2, 32767, np.int16)]
    noise = [rng.normal(0, scale, FRAME_SAMPLES * 2) for scale in (3, 300, 9000)]
    frames += [n.clip(-32768, 32767).astype(np.int16) for n in noise]
    for samples in frames:
        for layout in ("stereo", "mono"):
            data = samples if layout == "stereo" else samples[:FRAME_SAMPLES]
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout=layout)
            assert audio_level_dbov(frame) == AIORTC_AUDIO_LEVEL(frame)


def test_aiortcs_senders_use_the_fast_audio_level() -> None:
    from aiortc import rtp

    try:
        use_fast_audio_level()
        use_fast_audio_level()
        assert rtp.compute_audio_level_dbov is audio_level_dbov
    finally:
        rtp.compute_audio_level_dbov = AIORTC_AUDIO_LEVEL
