"""edge_capture.recording.mp4: fragmented H.264 + AAC segments, written with PyAV and read back with PyAV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_capture.recording.mp4 import Mp4Writer, VideoSettings, complete_prefix, probe_duration
from tests.edge_capture.recording.media import decode, peak_frequency, picture, tone

FAST = VideoSettings(preset="ultrafast", keyframe_seconds=1.0)


def i420(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    return cv2.cvtColor(picture(index, width, height), cv2.COLOR_BGR2YUV_I420)


def write(path: Path, seconds: float, fps: float = 30.0, audio: bool = True, gap_at: float | None = None) -> None:
    writer = Mp4Writer(path, 320, 240, fps, FAST, audio=audio)
    voice_sent = 0
    for index in range(int(seconds * fps)):
        t = index / fps
        writer.write_video(i420(index), round(t * 90_000))
        while voice_sent < (index + 1) * 48_000 / fps:  # 20 ms voice frames, as the hub sends them
            start = voice_sent + (int(0.5 * 48_000) if gap_at is not None and voice_sent >= gap_at * 48_000 else 0)
            writer.write_voice(tone(start, 960), start)
            voice_sent += 960
    writer.close()


def test_pictures_keep_their_capture_times_and_size(tmp_path: Path) -> None:
    path = tmp_path / "media.mp4"
    writer = Mp4Writer(path, 320, 240, 30.0, FAST, audio=False)
    times = [0.0, 0.033, 0.067, 0.2, 0.233, 1.5, 1.533]  # a stalled source: the gaps stay gaps
    for index, t in enumerate(times):
        writer.write_video(i420(index), round(t * 90_000))
    writer.close()
    decoded = decode(path)
    assert (decoded.width, decoded.height) == (320, 240)
    assert decoded.video_pts == pytest.approx(times, abs=1 / 90_000)
    assert decoded.audio.size == 0
    assert probe_duration(path) == pytest.approx(1.533, abs=0.05)


def test_voice_is_an_aac_track_on_the_same_clock_with_gaps_filled(tmp_path: Path) -> None:
    path = tmp_path / "media.mp4"
    write(path, 3.0, gap_at=1.0)  # half a second of voice missing after 1 s
    decoded = decode(path)
    assert decoded.video_pts == pytest.approx([i / 30 for i in range(90)], abs=1 / 90_000)  # not moved by the voice
    assert decoded.keyframes[:3] == pytest.approx([0.0, 1.0, 2.0], abs=0.04)  # one fragment per keyframe
    # 3 s of pictures, 3.5 s of voice timeline: the 0.5 s gap became silence, so later voice stays in step.
    assert len(decoded.audio) / 48_000 == pytest.approx(3.5, abs=0.1)
    assert peak_frequency(decoded.audio[: 48_000]) == pytest.approx(440, abs=5)
    gap = decoded.audio[int(1.1 * 48_000) : int(1.4 * 48_000)]
    assert np.abs(gap).max() < 0.01


def test_only_whole_fragments_count_and_they_play_on_their_own(tmp_path: Path) -> None:
    path = tmp_path / "media.mp4"
    write(path, 4.0)
    data = path.read_bytes()
    assert complete_prefix(path) == len(data)  # a closed file is whole, index (mfra) included
    prefixes = set()
    for cut in (len(data) * 3 // 10, len(data) * 6 // 10 + 777, len(data) - 10):
        torn = tmp_path / f"torn-{cut}.mp4"
        torn.write_bytes(data[:cut])
        end = complete_prefix(torn)
        assert 0 < end <= cut
        prefixes.add(end)
        torn.write_bytes(data[:end])
        decoded = decode(torn)  # no error: every fragment in it is whole
        assert 0 < len(decoded.video_pts) <= 120 and decoded.video_pts == sorted(decoded.video_pts)
    assert len(prefixes) == 3
    (tmp_path / "header-only.mp4").write_bytes(data[:20])
    assert complete_prefix(tmp_path / "header-only.mp4") == 0
