"""Gain, dark fraction, dynamic range use and TGC balance: properties on synthetic frames."""

from __future__ import annotations

import cv2
import numpy as np

from edge_capture.sources.synthetic import SyntheticSource
from qc.exposure import (
    dark_fraction,
    dynamic_range,
    fov_histogram,
    grey_levels,
    percentile_of,
    saturation,
    tgc_slope,
)
from tests.qc.clips import CLOCK, synthetic


def fov_grey(source: SyntheticSource) -> np.ndarray:
    return cv2.cvtColor(source.render(0, CLOCK), cv2.COLOR_BGR2GRAY)[source.fov.slices]


def gained(grey: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(grey.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def test_more_gain_more_saturation(thyroid: SyntheticSource) -> None:
    grey = fov_grey(thyroid)
    values = [saturation(gained(grey, g)) for g in (1.0, 1.4, 1.8, 2.4)]
    assert values == sorted(values) and values[-1] > values[0] + 0.05
    assert all(0.0 <= v <= 1.0 for v in values)
    assert saturation(fov_grey(synthetic("thyroid", "saturated"))) > saturation(grey) + 0.05


def test_less_gain_more_dark(thyroid: SyntheticSource) -> None:
    grey = fov_grey(thyroid)
    values = [dark_fraction(gained(grey, g)) for g in (1.0, 0.5, 0.2, 0.05)]
    assert values == sorted(values) and values[-1] > 0.5
    assert dark_fraction(fov_grey(synthetic("thyroid", "dark"))) > 0.8
    assert dark_fraction(np.zeros((20, 20), np.uint8)) == 1.0


def test_mask_limits_the_statistics() -> None:
    image = np.zeros((10, 10), np.uint8)
    image[:, 5:] = 255
    mask = np.zeros((10, 10), bool)
    mask[:, 5:] = True
    assert saturation(image) == 0.5
    assert saturation(image, mask) == 1.0
    assert dark_fraction(image, mask) == 0.0
    assert fov_histogram(image, mask).sum() == 50


def test_compressed_histogram_uses_less_range(thyroid: SyntheticSource) -> None:
    grey = fov_grey(thyroid)
    flat = (grey.astype(np.float32) * 0.3 + 90).astype(np.uint8)
    assert dynamic_range(flat) < dynamic_range(grey) * 0.5
    assert grey_levels(flat) < grey_levels(grey)
    assert 0 <= dynamic_range(grey) <= 255 and 0 < grey_levels(grey) <= 256


def test_percentiles_of_a_histogram() -> None:
    hist = np.zeros(256)
    hist[10] = hist[200] = 50
    assert percentile_of(hist, 1) == 10
    assert percentile_of(hist, 99) == 200


def test_fading_with_depth_lowers_the_tgc_slope(thyroid: SyntheticSource) -> None:
    grey = fov_grey(thyroid)
    ramp = np.linspace(1.0, 0.3, grey.shape[0], dtype=np.float32)[:, None]
    faded = (grey * ramp).astype(np.uint8)
    boosted = np.clip(grey * ramp[::-1] * 1.5, 0, 255).astype(np.uint8)
    assert tgc_slope(faded) < tgc_slope(grey) - 20
    assert tgc_slope(boosted) > tgc_slope(grey) + 20
    assert tgc_slope(np.full((50, 40), 120, np.uint8)) == 0.0
    assert -255 <= tgc_slope(faded) <= 255
