"""SourceFrame: immutable, shared without copies, I420 computed once."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edge_capture.frames import SourceFrame


def make_frame(index: int = 0, width: int = 64, height: int = 48, value: int = 128) -> SourceFrame:
    image = np.full((height, width, 3), value, np.uint8)
    return SourceFrame(index, 1_700_000_000_000_000_000 + index, 1_000 + index, image)


def test_size_and_stamps() -> None:
    frame = make_frame(3, 64, 48)
    assert (frame.width, frame.height) == (64, 48)
    assert frame.index == 3
    assert frame.capture_time_ns > frame.monotonic_ns


def test_pixels_are_read_only_and_the_frame_frozen() -> None:
    frame = make_frame()
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.index = 5  # type: ignore[misc]


def test_identity_equality_so_frames_never_compare_pixels() -> None:
    a, b = make_frame(), make_frame()
    assert a != b
    assert a == a


def test_i420_planes_match_opencv_and_are_cached() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = SourceFrame(0, 0, 0, image)
    planes = frame.i420()
    assert planes.shape == (48 * 3 // 2, 64)
    assert planes.dtype == np.uint8
    np.testing.assert_array_equal(planes, cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
    assert frame.i420() is planes
    assert not planes.flags.writeable


def test_grey_has_neutral_chroma_and_nbytes_counts_the_cache() -> None:
    frame = make_frame(value=200)
    before = frame.nbytes
    planes = frame.i420()
    chroma = planes[48:]
    assert np.abs(chroma.astype(int) - 128).max() <= 1
    assert planes[:48].mean() > 180
    assert frame.nbytes == before + planes.nbytes


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((47, 64, 3), np.uint8),
        np.zeros((48, 63, 3), np.uint8),
        np.zeros((48, 64), np.uint8),
        np.zeros((48, 64, 3), np.float32),
    ],
    ids=["odd-height", "odd-width", "grey", "float"],
)
def test_rejects_images_an_encoder_cannot_take(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        SourceFrame(0, 0, 0, image)


def test_rejects_negative_index() -> None:
    with pytest.raises(ValueError):
        SourceFrame(-1, 0, 0, np.zeros((2, 2, 3), np.uint8))
