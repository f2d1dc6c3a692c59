"""Offline analysis of whole files: freezes, no-contact and dark stretches, real cines."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_capture.frames import SourceFrame
from edge_capture.recording.mp4 import Mp4Writer, VideoSettings
from qc.offline import OfflineConfig, analyse, stretches
from recordings.media import open_media
from tests.qc.clips import CLOCK, synthetic

SAMPLE = 0.5  # s between full metric samples (2 a second)


def test_the_faults_of_a_recording_are_found(faulty_mp4: Path) -> None:
    progress: list[float] = []
    report = analyse(open_media(faulty_mp4), progress=progress.append)
    assert report.frames == 300 and len(report.samples) == 20
    assert report.fov["how"] == "temporal"
    (freeze,) = report.freezes
    assert freeze.start == pytest.approx(2.0, abs=1 / 30) and freeze.end == pytest.approx(4.0, abs=1 / 30)
    (in_air,) = report.no_contact
    assert in_air.start == pytest.approx(5.0, abs=SAMPLE) and in_air.end == pytest.approx(6.5, abs=SAMPLE)
    (black,) = report.dark
    assert black.start == pytest.approx(7.5, abs=SAMPLE) and black.end == pytest.approx(9.0, abs=SAMPLE)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    data = report.to_dict()
    assert data["imaging_metrics"]["no_contact"] == {"share": 0.0}
    assert data["metrics"]["no_contact"]["share"] > 0
    assert data["freezes"][0]["seconds"] == pytest.approx(2.0, abs=1 / 30)


def test_a_real_cine_with_single_repeated_frames_is_not_frozen(cine: Path) -> None:
    report = analyse(open_media(cine))
    assert report.frames == 120
    assert report.freezes == []
    assert report.no_contact == [] and report.dark == []
    assert report.depth_mm is not None and report.depth_mm > 0
    # the repeats are there: at any length they are found
    assert analyse(open_media(cine), OfflineConfig(min_frozen_seconds=0.0)).freezes


def test_the_probe_in_air_still_is_no_contact(probe_in_air: Path) -> None:
    report = analyse(open_media(probe_in_air))
    assert report.fov["how"] == "region"
    assert len(report.no_contact) == 1 and report.samples[0][1].no_contact
    assert report.to_dict()["realtime_factor"] is None


def test_stretches() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert stretches(times, [False, True, True, False, True], 0.5)[0].to_dict() == {
        "start": 0.5, "end": 1.5, "samples": 2}  # fmt: skip
    assert stretches(times, [False, True, True, False, True], 0.5)[1].end == 2.5
    assert stretches([], [], 0.5) == []


def test_a_recording_written_by_the_edge_recorder(tmp_path: Path) -> None:
    source = synthetic("carotid", None, 640, 360)
    writer = Mp4Writer(tmp_path / "media.mp4", 640, 360, 30.0, VideoSettings(), audio=False)
    for k in range(150):  # 5 s at 30 fps on the 90 kHz clock, held still from 1.5 s to 3.5 s
        frame = SourceFrame(k, 0, 0, source.render(50 if 45 <= k < 105 else k, CLOCK + k / 30))
        writer.write_video(frame.i420(), k * 3000)
    writer.close()
    report = analyse(open_media(tmp_path / "media.mp4"))
    assert report.duration_s == pytest.approx(5.0, abs=0.05)
    assert report.frames < 150  # x264 veryfast's non-reference B-frames are not decoded
    (freeze,) = report.freezes
    assert freeze.start == pytest.approx(1.5, abs=2 / 30) and freeze.end == pytest.approx(3.5, abs=2 / 30)
