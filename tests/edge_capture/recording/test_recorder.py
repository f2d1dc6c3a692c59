"""edge_capture.recording.recorder: the recorder thread, fed by a real capture thread and ring."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from edge_capture.capture import CaptureThread
from edge_capture.fanout import PacketVideoTrack, SharedH264Encoder
from edge_capture.frames import SourceFrame
from edge_capture.livefirst import LiveFirst
from edge_capture.recording.mp4 import VideoSettings
from edge_capture.recording.recorder import Recorder, RecorderSettings, Segment
from edge_capture.ring import FrameRing, RingReader
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import is_sealed, read_sealed
from recordings import timeline as tl
from tests.edge_capture.recording.media import PatternCard, decode, peak_frequency, tone, wait_until

SETTINGS = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0)
KEYS = Keyring.generate()


def timeline_of(path: Path) -> tl.Timeline:
    return tl.decode_timeline(read_sealed(path, KEYS))


@contextmanager
def capturing(card: PatternCard) -> Iterator[tuple[FrameRing, CaptureThread]]:
    ring = FrameRing(history_seconds=30)
    capture = CaptureThread(card, ring, name="test-card")
    capture.start()
    try:
        assert wait_until(lambda: ring.latest() is not None)
        yield ring, capture
    finally:
        capture.stop()
        ring.close()


def first_frame(ring: FrameRing, header: tl.Header) -> SourceFrame:
    return next(f for f in ring.since(60) if f.capture_time_ns / 1e6 == header.started_at_ms)


def on_the_capture_clock(ring: FrameRing, header: tl.Header, count: int) -> list[float]:
    """The media times (s) of the ``count`` frames the card gave from the segment's first one on, no gap allowed."""
    origin = first_frame(ring, header)
    frames = [f for f in ring.since(60) if f.index >= origin.index][:count]
    assert [f.index for f in frames] == list(range(origin.index, origin.index + count))
    return [(f.monotonic_ns - origin.monotonic_ns) * 90_000 // 1_000_000_000 / 90_000 for f in frames]


def test_a_recording_is_a_playable_mp4_on_the_capture_clock_with_voice_and_events(tmp_path: Path) -> None:
    told: list[Segment] = []
    with capturing(PatternCard(640, 360)) as (ring, capture):
        recorder = Recorder(ring, tmp_path, "c1", SETTINGS, on_segment=told.append, keys=KEYS)
        recorder.start()
        assert wait_until(lambda: recorder.frames_written > 0)
        start_ns = time.monotonic_ns()
        for k in range(100):  # two seconds of a 440 Hz voice, in the hub's 20 ms frames
            recorder.add_voice(tone(k * 960, 960), start_ns + k * 20_000_000)
        recorder.add_event(tl.Mark(0, "m1", "arrow", ((0.1, 0.1), (0.5, 0.5)), None, "p1"), start_ns + 1_000_000_000)
        chat_from_ns = time.monotonic_ns()
        recorder.add_event(tl.Chat(0, "hello", "Expert", "expert", "u1"))
        chat_until_ns = time.monotonic_ns()
        # Past the second keyframe (frame 60) and the two seconds of voice, however slowly the card runs.
        assert wait_until(lambda: recorder.frames_written > 66 and time.monotonic_ns() > start_ns + 2.2e9, 60)
        stats = recorder.stop()
        captured = capture.stats().frames_captured

    assert not stats.running and stats.frames_dropped == 0 and stats.segments == 1 and stats.events == 2
    assert [s.closed for s in told] == [False, True] and told[1].frames == stats.frames_written
    decoded = decode(tmp_path / "media.mp4", KEYS)
    assert (decoded.width, decoded.height) == (640, 360)
    pts = decoded.video_pts
    assert pts[0] == 0 and all(b > a for a, b in itertools.pairwise(pts))
    assert len(pts) == stats.frames_written and len(pts) <= captured
    timeline = timeline_of(tmp_path / "timeline.jsonl")
    # Every frame the card gave while recording, each at its capture time (a busy machine makes the card late,
    # which shows as longer frames, never as frames missing or moved).
    assert pts == pytest.approx(on_the_capture_clock(ring, timeline.header, len(pts)), abs=1.5 / 90_000)
    assert decoded.keyframes[:2] == [0.0, pts[60]]  # a keyframe (a fragment) every 60 frames, ~2 s at 30 fps
    assert peak_frequency(decoded.audio[48_000 // 2 :]) == pytest.approx(440, abs=5)

    assert (timeline.header.consultation_id, timeline.header.width, timeline.header.height) == ("c1", 640, 360)
    origin = first_frame(ring, timeline.header)
    mark, chat = timeline.events
    assert isinstance(mark, tl.Mark) and mark.t == pytest.approx((start_ns + 1e9 - origin.monotonic_ns) / 1e9, abs=1e-3)
    assert isinstance(chat, tl.Chat)  # stamped when it was added
    low, high = (chat_from_ns - origin.monotonic_ns) / 1e9, (chat_until_ns - origin.monotonic_ns) / 1e9
    assert low - 1e-3 <= chat.t <= high + 1e-3  # (the timeline keeps milliseconds)


class StuckRecorder(Recorder):
    """A recorder on a starved machine: after its first frames, writing a frame hangs until ``unstick`` is set."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stuck, self.unstick = threading.Event(), threading.Event()

    def _write_frame(self, frame: SourceFrame) -> None:
        if self.frames_written == 5:
            self.stuck.set()
            self.unstick.wait(60)
        super()._write_frame(frame)


async def test_a_recorder_that_falls_behind_drops_frames_and_never_holds_anyone_up(tmp_path: Path) -> None:
    settings = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0, max_lag_seconds=0.3)
    with capturing(PatternCard(320, 240)) as (ring, capture):
        recorder = StuckRecorder(ring, tmp_path, "c2", settings, keys=KEYS)
        recorder.start()
        assert await asyncio.to_thread(recorder.stuck.wait, 60)
        stuck_at = ring.latest()
        assert stuck_at is not None
        # While the recorder hangs, the card goes on and a live consumer on the event loop gets frame after frame.
        reader, seen = RingReader(ring), 0
        while seen < 45:  # a second and a half of pictures, three times the recorder's allowed lag
            await asyncio.wait_for(reader.next(), 30)
            seen += 1
        assert recorder.frames_written == 5 and capture.stats().running
        recorder.unstick.set()
        target = recorder.frames_written + 10
        assert await asyncio.to_thread(wait_until, lambda: recorder.frames_written >= target, 60)
        stats = await asyncio.to_thread(recorder.stop)
    # The recorder skipped what it could no longer reach within its lag, and counted it.
    assert stats.frames_dropped > 10 and stats.frames_written >= 15
    decoded = decode(tmp_path / "media.mp4", KEYS)
    assert len(decoded.video_pts) == stats.frames_written
    # Still on the capture clock: the frames skipped are gaps in time, not a faster film. Every picture sits at its
    # own frame's capture time, and the gap is there.
    timeline = timeline_of(tmp_path / "timeline.jsonl")
    origin = first_frame(ring, timeline.header)
    times = {(f.monotonic_ns - origin.monotonic_ns) * 90_000 // 1_000_000_000 for f in ring.since(60)}
    assert all(round(t * 90_000) in times for t in decoded.video_pts)
    gap = max(b - a for a, b in itertools.pairwise(decoded.video_pts))
    assert gap > 10 / 30


def test_segments_roll_over_at_the_size_cap_and_when_the_picture_changes(tmp_path: Path) -> None:
    settings = RecorderSettings(
        video=VideoSettings(preset="ultrafast", keyframe_seconds=0.5, x264_params=""),
        fps=30.0,
        max_segment_bytes=20_000,
        audio=False,
    )
    with capturing(PatternCard(320, 240, resize_at=45)) as (ring, _capture):
        recorder = Recorder(ring, tmp_path, "c3", settings, first_segment=2, keys=KEYS)  # after two earlier runs
        recorder.start()
        assert wait_until(lambda: recorder.frames_written > 75, timeout=60)
        stats = recorder.stop()
    assert stats.segments >= 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "media.mp4" not in names and "media.2.mp4" in names and "timeline.2.jsonl" in names
    sizes, frames = set(), 0
    for number in range(2, 2 + stats.segments):
        decoded = decode(tmp_path / f"media.{number}.mp4", KEYS)
        header = timeline_of(tmp_path / f"timeline.{number}.jsonl").header
        assert header.segment == number and (header.width, header.height) == (decoded.width, decoded.height)
        assert decoded.video_pts[0] == 0
        sizes.add((decoded.width, decoded.height))
        frames += len(decoded.video_pts)
    assert sizes == {(320, 240), (160, 120)} and frames == stats.frames_written


def test_stop_before_any_frame_and_twice_is_harmless(tmp_path: Path) -> None:
    ring = FrameRing()
    recorder = Recorder(ring, tmp_path, "c4", SETTINGS, keys=KEYS)
    recorder.add_event(tl.State(0, "live"))
    recorder.start()
    assert recorder.stop(timeout=5).frames_written == 0
    assert recorder.stop(timeout=5).running is False
    assert list(tmp_path.iterdir()) == []


def test_what_the_recorder_writes_is_sealed_on_disk_and_private(tmp_path: Path) -> None:
    """A thief of the clinic PC's disk finds no MP4 and no chat line: both files are sealed as they are written,
    0600 in a 0700 folder; opened with the key, they are the playable MP4 and the timeline."""
    folder = tmp_path / "recordings" / "c5"
    with capturing(PatternCard(320, 240)) as (ring, _capture):
        recorder = Recorder(ring, folder, "c5", SETTINGS, keys=KEYS)
        recorder.start()
        recorder.add_event(tl.Chat(0, "the patient Zhang San, nodule left lobe", "Expert", "expert", "u1"))
        assert wait_until(lambda: recorder.frames_written > 40 and recorder.events == 1, 60)
        recorder.stop()
    media, timeline = (folder / "media.mp4").read_bytes(), (folder / "timeline.jsonl").read_bytes()
    assert is_sealed(folder / "media.mp4") and is_sealed(folder / "timeline.jsonl")
    assert b"ftyp" not in media and b"moof" not in media and b"avc1" not in media
    assert b"Zhang San" not in timeline and b"consultation_id" not in timeline
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {
        "media.mp4": 0o600,
        "timeline.jsonl": 0o600,
    }
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    plain = read_sealed(folder / "media.mp4", KEYS)
    assert plain[4:8] == b"ftyp" and len(decode(folder / "media.mp4", KEYS).video_pts) > 40
    assert timeline_of(folder / "timeline.jsonl").events[0].text.startswith("the patient")  # type: ignore[union-attr]


def profile_of(path: Path) -> str:
    with av.open(io.BytesIO(read_sealed(path, KEYS)), "r") as container:
        return str(container.streams.video[0].codec_context.profile)


async def test_the_recording_copies_the_live_bitstream_and_encodes_its_own_once_nobody_watches(tmp_path: Path) -> None:
    """One encode, two outputs: while a page reads the shared live encoder (at a rate above the floor), the recording
    is the live bitstream itself, from a live keyframe on; when the page goes, the recorder encodes its own frames in
    the next segment. Both segments play, on the capture clock, with no frame written twice."""
    settings = RecorderSettings(
        video=VideoSettings(preset="ultrafast"), fps=30.0, audio=False, copy_min_bpp=0.01, min_segment_seconds=0.5
    )
    live_first = LiveFirst(idle_seconds=0.3)
    with capturing(PatternCard(320, 240)) as (ring, _capture):
        shared = SharedH264Encoder(ring, bitrate_bps=1_000_000, name="c6", live_first=live_first)
        loop = asyncio.get_running_loop()
        live_first.ask_keyframe = lambda: loop.call_soon_threadsafe(shared.request_keyframe, "recording")
        page = PacketVideoTrack(shared, name="page")
        reading = asyncio.ensure_future(read_until_stopped(page))
        assert await wait_for_async(lambda: shared.frames_encoded > 0)  # the page watches before the recording starts
        recorder = Recorder(ring, tmp_path, "c6", settings, live_first=live_first, keys=KEYS)
        recorder.start()
        try:
            assert await wait_for_async(lambda: recorder.frames_copied > 45)
            copied_then = recorder.frames_copied
            page.stop()  # nobody watches: the live encoder stops
            await reading
            assert await wait_for_async(lambda: recorder.segments == 2 and recorder.frames_written > copied_then + 30)
        finally:
            stats = await asyncio.to_thread(recorder.stop)
            await shared.close()
    assert stats.segments == 2 and stats.frames_copied >= copied_then and stats.frames_written > stats.frames_copied
    copied, encoded = decode(tmp_path / "media.mp4", KEYS), decode(tmp_path / "media.1.mp4", KEYS)
    assert profile_of(tmp_path / "media.mp4") == "Constrained Baseline"  # the live encoder's stream, as sent
    assert profile_of(tmp_path / "media.1.mp4") != "Constrained Baseline"  # the recorder's own x264
    assert len(copied.video_pts) == stats.frames_copied and copied.keyframes[0] == 0.0
    assert len(copied.video_pts) + len(encoded.video_pts) == stats.frames_written
    for decoded in (copied, encoded):
        assert decoded.video_pts[0] == 0 and all(b > a for a, b in itertools.pairwise(decoded.video_pts))
    first, second = (timeline_of(tmp_path / name).header for name in ("timeline.jsonl", "timeline.1.jsonl"))
    assert second.started_at_ms > first.started_at_ms + copied.video_pts[-1] * 1000


def test_the_copy_floor_keeps_the_720p_quality_at_other_sizes() -> None:
    """The floor is 0.15 bits per pixel at 720p and the rate of the same picture quality at other sizes: the shipped
    6 Mb/s live stream is good enough to record at 720p and at 1080p, 5 Mb/s at 1080p is not."""
    settings = RecorderSettings()
    floor_720p, floor_1080p = settings.copy_floor_bps(1280, 720), settings.copy_floor_bps(1920, 1080)
    assert floor_720p == pytest.approx(0.15 * 1280 * 720 * 30)
    assert floor_1080p is not None and 5_000_000 < floor_1080p <= 6_000_000
    assert floor_720p is not None and floor_720p < floor_1080p < floor_720p * 2.25  # fewer bits per pixel at 1080p
    assert RecorderSettings(copy_min_bpp=None).copy_floor_bps(1920, 1080) is None


async def test_at_1080p_the_shipped_live_rate_is_copied_and_copying_resumes_at_full_rate(tmp_path: Path) -> None:
    """At 1080p30 the live encoder at its shipped 6 Mb/s is copied into the recording (no second encode). When the
    live rate falls under the floor the recorder encodes; when the live encoder is back at its full rate, which is
    less than 10 % above the floor, it copies again (the margin would never be reached)."""
    settings = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0, audio=False, min_segment_seconds=0.5)
    live_first = LiveFirst(idle_seconds=5.0)  # a loaded host encodes 1080p slowly: that is not nobody watching
    with capturing(PatternCard(1920, 1080)) as (ring, _capture):
        shared = SharedH264Encoder(ring, bitrate_bps=6_000_000, name="c1080", live_first=live_first)
        loop = asyncio.get_running_loop()
        live_first.ask_keyframe = lambda: loop.call_soon_threadsafe(shared.request_keyframe, "recording")
        page = PacketVideoTrack(shared, name="page")
        reading = asyncio.ensure_future(read_until_stopped(page))
        assert await wait_for_async(lambda: shared.frames_encoded > 0)
        recorder = Recorder(ring, tmp_path, "c1080", settings, live_first=live_first, keys=KEYS)
        recorder.start()
        try:
            assert await wait_for_async(lambda: recorder.frames_copied > 10, timeout=180)
            shared.max_bitrate_bps = 5_000_000  # the live rate under the 1080p floor: the recorder encodes
            ok = await wait_for_async(
                lambda: recorder.segments == 2 and recorder.frames_written > recorder.frames_copied + 10, timeout=180
            )
            assert ok, (
                recorder.segments,
                recorder.frames_written,
                recorder.frames_copied,
                shared.bitrate_bps,
                recorder.stats,
            )
            copied_before = recorder.frames_copied
            shared.max_bitrate_bps = 6_000_000  # back at full rate: copied again, in a third segment
            assert await wait_for_async(
                lambda: recorder.segments == 3 and recorder.frames_copied > copied_before + 10, timeout=180
            )
        finally:
            page.stop()
            await reading
            stats = await asyncio.to_thread(recorder.stop)
            await shared.close()
    assert stats.segments == 3
    assert [
        profile_of(tmp_path / name) == "Constrained Baseline" for name in ("media.mp4", "media.1.mp4", "media.2.mp4")
    ] == [True, False, True]
    for name in ("media.mp4", "media.1.mp4", "media.2.mp4"):
        decoded = decode(tmp_path / name, KEYS)
        assert (decoded.width, decoded.height) == (1920, 1080) and decoded.video_pts[0] == 0


async def read_until_stopped(track: PacketVideoTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def wait_for_async(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def test_a_link_lost_span_open_when_a_segment_ends_goes_on_in_the_next(tmp_path: Path) -> None:
    settings = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0, audio=False)
    with capturing(PatternCard(320, 240, resize_at=30)) as (ring, _capture):
        recorder = Recorder(ring, tmp_path, "c7", settings, keys=KEYS)
        recorder.start()
        assert wait_until(lambda: recorder.frames_written > 3, timeout=60)
        recorder.add_event(tl.LinkLost(0, "start"))
        assert wait_until(lambda: recorder.segments == 2 and recorder.frames_written > 40, timeout=60)
        recorder.add_event(tl.LinkLost(0, "end"))
        assert wait_until(lambda: recorder.events == 2, timeout=60)
        recorder.stop()
    first, second = timeline_of(tmp_path / "timeline.jsonl"), timeline_of(tmp_path / "timeline.1.jsonl")
    assert [(e.TYPE, e.state) for e in first.events] == [("link_lost", "start")]  # type: ignore[attr-defined]
    assert [(e.TYPE, e.state, e.t > 0) for e in second.events] == [  # type: ignore[attr-defined]
        ("link_lost", "start", False),
        ("link_lost", "end", True),
    ]
