"""The per-frame metric set on the downsampled field of view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_capture.sources.synthetic import SyntheticSource
from qc.frame import FrameAnalyser, FrameMetrics, summarise
from tests.qc.clips import CLOCK, synthetic, truth_mask


def measure(fault: str | None) -> FrameMetrics:
    source = synthetic("thyroid", fault)
    return FrameAnalyser(truth_mask(source)).measure(source.render(0, CLOCK))


def test_metrics_stay_in_their_ranges(thyroid: SyntheticSource) -> None:
    m = measure(None)
    assert 0 <= m.saturation <= 1 and 0 <= m.dark_fraction <= 1 and 0 <= m.near_field_share <= 1
    assert 0 < m.mean < 255 and 0 < m.dynamic_range <= 255 and 0 < m.grey_levels <= 256
    assert -255 <= m.tgc_slope <= 255
    assert m.tenengrad > 0 and m.laplacian_variance > 0
    assert not m.no_contact


def test_faults_move_the_right_metrics() -> None:
    normal = measure(None)
    assert measure("saturated").saturation > normal.saturation + 0.05
    assert measure("dark").dark_fraction > 0.8
    assert measure("black").dark_fraction == 1.0
    assert measure("no_contact").no_contact
    blur = measure("blur")
    assert blur.tenengrad < normal.tenengrad and blur.laplacian_variance < normal.laplacian_variance


def test_grey_and_bgr_frames_agree(thyroid: SyntheticSource) -> None:
    analyser = FrameAnalyser(truth_mask(thyroid))
    image = thyroid.render(3, CLOCK)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert analyser.measure(grey) == analyser.measure(image)
    assert analyser.grey(image).shape == (thyroid.fov.h // 2, thyroid.fov.w // 2)
    with pytest.raises(ValueError):
        analyser.measure(image[:100])


def test_limited_range_levels_are_expanded(thyroid: SyntheticSource) -> None:
    full = cv2.cvtColor(thyroid.render(0, CLOCK), cv2.COLOR_BGR2GRAY)
    limited = (16 + full.astype(np.float32) * 219 / 255).round().astype(np.uint8)  # as H.264 stores it
    levels = np.clip((np.arange(256) - 16) * 255 / 219, 0, 255).round().astype(np.uint8)
    plain = FrameAnalyser(truth_mask(thyroid)).measure(full)
    expanded = FrameAnalyser(truth_mask(thyroid), levels=levels).measure(limited)
    assert expanded.dark_fraction == pytest.approx(plain.dark_fraction, abs=0.01)
    assert FrameAnalyser(truth_mask(thyroid)).measure(limited).dark_fraction == 0.0  # black is 16 there


def test_thumbnail_differences(thyroid: SyntheticSource) -> None:
    analyser = FrameAnalyser(truth_mask(thyroid))
    a, b = (analyser.thumbnail(thyroid.render(k, CLOCK)) for k in (0, 1))
    assert analyser.difference(a, a) == 0.0
    assert analyser.difference(a, b) > 0.5
    assert analyser.dark_share(np.zeros_like(a)) == 1.0
    assert analyser.dark_share(a) < 0.3


def test_summaries() -> None:
    samples = [measure(None), measure("no_contact")]
    summary = summarise(samples)
    assert summary["no_contact"] == {"share": 0.5}
    assert set(summary["saturation"]) == {"mean", "p5", "median", "p95"}
    assert summarise([]) == {}
