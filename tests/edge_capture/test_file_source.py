"""Recorded sources: a DICOM cine or still and a video file, replayed at their own rate."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from edge_capture.sources.base import SourceError, open_source
from edge_capture.sources.dicom import DicomCineSource
from edge_capture.sources.file import VideoFileSource, open_file
from tests.clocks import FakeClock

CINE = "color3d_jpeg_baseline.dcm"  # 120 frames 640×480, JPEG baseline YBR_FULL_422, Frame Time 33.333 ms


def data_file(name: str) -> str:
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames at 24 fps, 320×240, a white bar whose x position encodes the frame number."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for n in range(48):
            image = np.zeros((240, 320, 3), np.uint8)
            image[:, 5 * n + 40 : 5 * n + 50] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bar_position(image: np.ndarray) -> float:
    """Left edge of the bright bar, in clip pixels, from its centre in the clip scaled 2× to 640×480."""
    columns = np.flatnonzero(image[240, :, 1] > 128)
    return float(columns.mean()) / 2 - 45


def test_dicom_cine_plays_every_frame_then_loops() -> None:
    source = open_file(data_file(CINE), 1280, 720, paced=False)
    assert isinstance(source, DicomCineSource)
    assert source.frame_count == 120
    assert source.fps == pytest.approx(1000 / 33.333)
    frames = []
    for _ in range(121):
        image = source.read()
        assert image is not None and image.shape == (720, 1280, 3)
        frames.append(image)
    np.testing.assert_array_equal(frames[120], frames[0])
    assert not np.array_equal(frames[60], frames[0])


def test_dicom_cine_without_loop_ends_after_its_frames() -> None:
    source = open_file(data_file(CINE), 640, 480, loop=False, paced=False)
    count = 0
    while source.read() is not None:
        count += 1
    assert count == 120


def test_dicom_cine_is_letterboxed_not_stretched() -> None:
    image = open_file(data_file(CINE), 1280, 720, paced=False).read()
    assert image is not None
    # 640×480 scaled by 1.5 is 960×720: 160-pixel black bars left and right.
    assert image[:, :158].max() == 0 and image[:, 1122:].max() == 0
    assert image[:, 160:1120].max() > 100


def test_dicom_cine_is_paced_at_its_frame_time() -> None:
    clock = FakeClock()
    source = open_file(data_file(CINE), 640, 480, pace_clock=clock)
    source.read()
    started = clock.now
    for _ in range(12):
        source.read()
    assert clock.now - started == pytest.approx(12 * 0.033333, abs=1e-4)  # the cine's Frame Time, 33.33 ms


def test_single_frame_dicom_is_a_still_at_the_requested_rate() -> None:
    source = open_file(data_file("US1_UNCR.dcm"), 640, 480, fps=10.0, paced=False)
    assert isinstance(source, DicomCineSource)
    assert (source.frame_count, source.fps) == (1, 10.0)
    first, second = source.read(), source.read()
    assert first is not None and second is not None
    np.testing.assert_array_equal(first, second)
    assert first.max() > 0


def test_palette_colour_dicom_is_expanded_to_bgr() -> None:
    source = open_file(data_file("OBXXXX1A_rle_2frame.dcm"), 800, 600, paced=False)
    image = source.read()
    assert image is not None and image.shape == (600, 800, 3)
    assert image.max() > 100


def test_mp4_plays_back_in_order_and_loops(mp4: Path) -> None:
    source = open_file(str(mp4), 640, 480, paced=False)
    assert isinstance(source, VideoFileSource)
    assert source.fps == pytest.approx(24.0)
    positions = []
    for _ in range(49):
        image = source.read()
        assert image is not None and image.shape == (480, 640, 3)
        positions.append(bar_position(image))
    assert positions[:48] == pytest.approx([5 * n for n in range(48)], abs=2)
    assert positions[48] == pytest.approx(0, abs=2)
    source.close()


def test_mp4_without_loop_ends(mp4: Path) -> None:
    source = VideoFileSource(str(mp4), 320, 240, loop=False, paced=False)
    count = 0
    while source.read() is not None:
        count += 1
    assert count == 48


def test_mp4_is_paced_at_its_frame_rate(mp4: Path) -> None:
    clock = FakeClock()
    source = open_file(str(mp4), 320, 240, pace_clock=clock)
    source.read()
    started = clock.now
    for _ in range(12):
        source.read()
    assert clock.now - started == pytest.approx(12 / 24)  # the file's 24 fps
    source.close()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        open_source(f"file:{tmp_path / 'nope.mp4'}")
    assert error.value.code == "not_found"
    assert "nope.mp4" in error.value.message


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"not a video\n" * 100), ("report.pdf", b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50)],
)
def test_file_that_is_not_a_video(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as error:
        open_source(f"file:{path}")
    assert error.value.code == "unreadable"


def test_dcm_that_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\x00" * 64 + b"garbage")
    with pytest.raises(SourceError) as error:
        open_source(f"file:{path}")
    assert error.value.code == "unreadable"


def test_dicom_without_pixels(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "NO^PIXELS"
    path = tmp_path / "report.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    with pytest.raises(SourceError) as error:
        open_source(f"file:{path}")
    assert error.value.code == "unreadable"
    assert "Pixel Data" in error.value.message


def test_jpeg_2000_dicom_decodes_through_pydicom() -> None:
    source = open_file(data_file("US1_J2KR.dcm"), 640, 480, paced=False)
    image = source.read()
    assert image is not None and image.shape == (480, 640, 3)
    reference = open_file(data_file("US1_UNCR.dcm"), 640, 480, paced=False).read()
    assert reference is not None
    assert np.abs(image.astype(int) - reference).mean() < 1.0  # the same picture, losslessly coded


def test_truncated_video_fails_at_open(mp4: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(mp4.read_bytes()[:600])
    with pytest.raises(SourceError) as error:
        open_source(f"file:{path}")
    assert error.value.code == "unreadable"
