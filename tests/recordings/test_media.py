"""Frames from files: MP4 luma planes with their times, DICOM frames with their calibration."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from recordings.media import LIMITED_RANGE_LEVELS, DicomFile, MediaError, VideoFile, open_media
from tests.qc.clips import clip, synthetic, write_mp4


def test_an_mp4(faulty_mp4: Path) -> None:
    video = open_media(faulty_mp4)
    assert isinstance(video, VideoFile)
    info = video.info
    assert (info.kind, info.width, info.height, info.fps, info.frames) == ("mp4", 640, 360, 30.0, 300)
    assert info.duration_s == pytest.approx(10.0, abs=0.05)
    assert video.levels is LIMITED_RANGE_LEVELS
    times = []
    for t, luma in video.frames():
        times.append(t)
        assert luma.shape == (360, 640) and luma.dtype == np.uint8
    assert len(times) == 300 and times[0] == 0.0 and times[30] == pytest.approx(1.0)
    probe = video.probe(16)
    assert 4 <= len(probe) <= 16 and probe[0].shape == (360, 640)


def test_a_dicom_cine(cine: Path) -> None:
    dicom = open_media(cine)
    assert isinstance(dicom, DicomFile)
    info = dicom.info
    assert (info.kind, info.frames, info.fps) == ("dicom", 120, pytest.approx(30.0, abs=0.01))
    assert info.duration_s == pytest.approx(4.0, abs=0.01)
    assert info.regions and dicom.levels is None
    frames = list(dicom.frames())
    assert len(frames) == 120 and frames[1][0] == pytest.approx(1 / 30, abs=1e-3)
    assert frames[0][1].shape == (480, 640, 3)
    assert len(dicom.probe(16)) == 16


def test_a_dicom_still(probe_in_air: Path) -> None:
    still = open_media(probe_in_air)
    assert (still.info.frames, still.info.fps, still.info.duration_s) == (1, None, None)
    assert [t for t, _ in still.frames()] == [0.0]


def test_what_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as missing:
        open_media(tmp_path / "nothing.mp4")
    assert missing.value.code == "unreadable"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError) as unreadable:
        open_media(junk)
    assert unreadable.value.code == "unreadable"
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 10)
    with pytest.raises(MediaError):
        open_media(fake)


def test_only_reference_frames_are_decoded_unless_asked(tmp_path: Path) -> None:
    source = synthetic("carotid", None, 320, 180)
    path = write_mp4(tmp_path / "b-frames.mp4", clip(source, 2.0), preset="veryfast")
    reference = [t for t, _ in open_media(path).frames()]
    every = [t for t, _ in open_media(path, all_frames=True).frames()]
    assert len(every) == 60 and 20 <= len(reference) < 60
    assert reference == sorted(reference) and max(b - a for a, b in itertools.pairwise(reference)) <= 0.1 + 1e-6
