"""edge_capture.recording.recorder: the recorder thread, fed by a real capture thread and ring."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_capture.capture import CaptureThread
from edge_capture.frames import SourceFrame
from edge_capture.recording.mp4 import VideoSettings
from edge_capture.recording.recorder import Recorder, RecorderSettings, Segment
from edge_capture.ring import FrameRing, RingReader
from recordings import timeline as tl
from tests.edge_capture.recording.media import PatternCard, decode, peak_frequency, tone, wait_until

SETTINGS = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0)


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


def test_a_recording_is_a_playable_mp4_on_the_capture_clock_with_voice_and_events(tmp_path: Path) -> None:
    told: list[Segment] = []
    with capturing(PatternCard(640, 360)) as (ring, capture):
        recorder = Recorder(ring, tmp_path, "c1", SETTINGS, on_segment=told.append)
        recorder.start()
        assert wait_until(lambda: recorder.frames_written > 0)
        start_ns = time.monotonic_ns()
        for k in range(100):  # two seconds of a 440 Hz voice, in the hub's 20 ms frames
            recorder.add_voice(tone(k * 960, 960), start_ns + k * 20_000_000)
        recorder.add_event(tl.Mark(0, "m1", "arrow", ((0.1, 0.1), (0.5, 0.5)), None, "p1"), start_ns + 1_000_000_000)
        recorder.add_event(tl.Chat(0, "hello", "Expert", "expert", "u1"))
        time.sleep(2.2)
        stats = recorder.stop()
        captured = capture.stats().frames_captured

    assert not stats.running and stats.frames_dropped == 0 and stats.segments == 1 and stats.events == 2
    assert [s.closed for s in told] == [False, True] and told[1].frames == stats.frames_written
    decoded = decode(tmp_path / "media.mp4")
    assert (decoded.width, decoded.height) == (640, 360)
    pts = decoded.video_pts
    assert pts[0] == 0 and all(b > a for a, b in itertools.pairwise(pts))
    assert len(pts) == stats.frames_written and len(pts) <= captured
    assert len(pts) == pytest.approx(pts[-1] * 30 + 1, abs=3)  # every frame the card gave while recording
    assert decoded.keyframes[:2] == pytest.approx([0.0, 2.0], abs=0.1)  # a keyframe (a fragment) every ~2 s
    assert peak_frequency(decoded.audio[48_000 // 2 :]) == pytest.approx(440, abs=5)

    timeline = tl.decode_timeline((tmp_path / "timeline.jsonl").read_bytes())
    assert (timeline.header.consultation_id, timeline.header.width, timeline.header.height) == ("c1", 640, 360)
    origin = first_frame(ring, timeline.header)
    mark, chat = timeline.events
    assert isinstance(mark, tl.Mark) and mark.t == pytest.approx((start_ns + 1e9 - origin.monotonic_ns) / 1e9, abs=1e-3)
    assert isinstance(chat, tl.Chat) and 0 <= chat.t < 0.5


class SlowRecorder(Recorder):
    """A recorder on a starved machine: every frame takes 80 ms to write."""

    def _write_frame(self, frame: SourceFrame) -> None:
        time.sleep(0.08)
        super()._write_frame(frame)


async def test_a_recorder_that_falls_behind_drops_frames_and_never_holds_anyone_up(tmp_path: Path) -> None:
    settings = RecorderSettings(video=VideoSettings(preset="ultrafast"), fps=30.0, max_lag_seconds=0.3)
    with capturing(PatternCard(320, 240)) as (ring, capture):
        recorder = SlowRecorder(ring, tmp_path, "c2", settings)
        recorder.start()
        reader, loop = RingReader(ring), asyncio.get_running_loop()
        gaps, last = [], loop.time()
        while loop.time() - last < 2.0 and len(gaps) < 60:  # a live consumer on the event loop meanwhile
            await reader.next()
            now = loop.time()
            gaps.append(now - last)
            last = now
        stats = await asyncio.to_thread(recorder.stop)
        card_fps = capture.stats().fps
    assert stats.frames_dropped > 10 and stats.frames_written > 5
    assert card_fps == pytest.approx(30, abs=2)  # the capture thread never waited for the recorder
    assert reader.frames_skipped <= 2 and max(gaps[1:]) < 0.1  # neither did the live reader
    decoded = decode(tmp_path / "media.mp4")
    assert len(decoded.video_pts) == stats.frames_written
    # Still on the capture clock: the frames skipped are gaps in time, not a faster film. The card's own clock
    # wanders by a frame or two under load; dropped frames (> 10) would shorten a faster film by > 0.33 s.
    nominal = (stats.frames_written + stats.frames_dropped - 1) / 30
    assert decoded.video_pts[-1] == pytest.approx(nominal, abs=3 / 30)


def test_segments_roll_over_at_the_size_cap_and_when_the_picture_changes(tmp_path: Path) -> None:
    settings = RecorderSettings(video=VideoSettings(preset="ultrafast", keyframe_seconds=0.5, x264_params=""), fps=30.0,
                                max_segment_bytes=20_000, audio=False)
    with capturing(PatternCard(320, 240, resize_at=45)) as (ring, _capture):
        recorder = Recorder(ring, tmp_path, "c3", settings, first_segment=2)  # after two earlier runs
        recorder.start()
        assert wait_until(lambda: recorder.frames_written > 75, timeout=6)
        stats = recorder.stop()
    assert stats.segments >= 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "media.mp4" not in names and "media.2.mp4" in names and "timeline.2.jsonl" in names
    sizes, frames = set(), 0
    for number in range(2, 2 + stats.segments):
        decoded = decode(tmp_path / f"media.{number}.mp4")
        header = tl.decode_timeline((tmp_path / f"timeline.{number}.jsonl").read_bytes()).header
        assert header.segment == number and (header.width, header.height) == (decoded.width, decoded.height)
        assert decoded.video_pts[0] == 0
        sizes.add((decoded.width, decoded.height))
        frames += len(decoded.video_pts)
    assert sizes == {(320, 240), (160, 120)} and frames == stats.frames_written


def test_stop_before_any_frame_and_twice_is_harmless(tmp_path: Path) -> None:
    ring = FrameRing()
    recorder = Recorder(ring, tmp_path, "c4", SETTINGS)
    recorder.add_event(tl.State(0, "live"))
    recorder.start()
    assert recorder.stop(timeout=5).frames_written == 0
    assert recorder.stop(timeout=5).running is False
    assert list(tmp_path.iterdir()) == []
