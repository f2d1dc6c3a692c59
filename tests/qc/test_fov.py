"""The field of view against the synthetic scanner's ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_capture.dicom.calibration import for_synthetic
from edge_capture.sources.synthetic import SyntheticSource
from qc.fov import (
    best_fov,
    bounding_box,
    default_fov,
    grown_fov,
    mask_iou,
    region_fov,
    resize_mask,
    temporal_fov,
)
from qc.frame import THUMB_STRIDE
from tests.qc.clips import CLOCK, truth_mask


def thumbnails(source: SyntheticSource, count: int = 10, step: int = 3) -> list[np.ndarray]:
    frames = [source.render(k * step, CLOCK + k * 0.2) for k in range(count)]
    return [cv2.cvtColor(np.ascontiguousarray(f[::THUMB_STRIDE, ::THUMB_STRIDE]), cv2.COLOR_BGR2GRAY) for f in frames]


@pytest.mark.parametrize("preset", ["thyroid", "carotid"])
def test_what_changes_is_the_field_of_view(preset: str, request: pytest.FixtureRequest) -> None:
    source: SyntheticSource = request.getfixturevalue(preset)
    mask = temporal_fov(thumbnails(source))
    assert mask is not None
    assert mask_iou(resize_mask(mask, (source.height, source.width)), truth_mask(source)) >= 0.9


def test_best_fov_prefers_what_changes_and_says_so(thyroid: SyntheticSource) -> None:
    mask, how = best_fov((thyroid.height, thyroid.width), thumbnails(thyroid))
    assert how == "temporal"
    assert mask.shape == (720, 1280)
    assert mask_iou(mask, truth_mask(thyroid)) >= 0.9


def test_the_clock_alone_is_no_field_of_view(thyroid: SyntheticSource) -> None:
    frozen = [thyroid.render(0, CLOCK + k) for k in range(5)]  # the banner clock ticks, the image does not
    thumbs = [cv2.cvtColor(np.ascontiguousarray(f[::4, ::4]), cv2.COLOR_BGR2GRAY) for f in frozen]
    assert temporal_fov(thumbs) is None
    mask, how = best_fov((720, 1280), thumbs)
    assert how == "grown"
    assert mask_iou(mask, truth_mask(thyroid)) >= 0.85


@pytest.mark.parametrize("preset", ["thyroid", "carotid"])
def test_grown_from_one_frame(preset: str, request: pytest.FixtureRequest) -> None:
    # the carotid's lumen crosses the whole image: the parts are joined again
    source: SyntheticSource = request.getfixturevalue(preset)
    grey = cv2.cvtColor(source.render(0, CLOCK), cv2.COLOR_BGR2GRAY)
    mask = grown_fov(grey)
    assert mask is not None
    assert mask_iou(mask, truth_mask(source)) >= 0.85


def test_calibrated_regions_give_the_box(thyroid: SyntheticSource) -> None:
    regions = for_synthetic(thyroid).regions
    mask = region_fov((720, 1280), regions)
    assert mask is not None
    assert mask_iou(mask, truth_mask(thyroid)) == 1.0
    temporal, how = best_fov((720, 1280), thumbnails(thyroid), regions)
    assert how == "temporal" and not (temporal & ~mask).any()


def test_nothing_known_gives_the_central_box() -> None:
    black = [np.zeros((180, 320), np.uint8)] * 3
    mask, how = best_fov((720, 1280), black)
    assert how == "default"
    assert mask.mean() == pytest.approx(0.75 * 0.6, abs=0.01)
    assert (mask == default_fov((720, 1280))).all()


def test_box_and_iou_helpers() -> None:
    a = np.zeros((10, 10), bool)
    a[2:5, 3:9] = True
    box = bounding_box(a)
    assert (box.x, box.y, box.w, box.h) == (3, 2, 6, 3)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, ~a) == 0.0
    assert bounding_box(np.zeros((4, 6), bool)).w == 6
