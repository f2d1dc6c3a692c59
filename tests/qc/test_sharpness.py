"""Focus: more blur, lower sharpness, by both measures."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from edge_capture.sources.synthetic import SyntheticSource
from qc.sharpness import laplacian_variance, tenengrad
from tests.qc.clips import CLOCK, synthetic, truth_mask

Measure = Callable[..., float]


@pytest.mark.parametrize("measure", [tenengrad, laplacian_variance])
def test_more_blur_lower_sharpness(measure: Measure, thyroid: SyntheticSource) -> None:
    grey = cv2.cvtColor(thyroid.render(0, CLOCK), cv2.COLOR_BGR2GRAY)
    mask = truth_mask(thyroid)
    values = [measure(grey if s == 0 else cv2.GaussianBlur(grey, (0, 0), s), mask) for s in (0, 0.8, 1.6, 3.2)]
    assert values == sorted(values, reverse=True)
    assert values[-1] < 0.3 * values[0]
    assert all(v >= 0 for v in values)


@pytest.mark.parametrize("measure", [tenengrad, laplacian_variance])
def test_the_blur_fault_is_softer(measure: Measure, thyroid: SyntheticSource) -> None:
    blurred = synthetic("thyroid", "blur")
    sharp = measure(cv2.cvtColor(thyroid.render(0, CLOCK), cv2.COLOR_BGR2GRAY), truth_mask(thyroid))
    soft = measure(cv2.cvtColor(blurred.render(0, CLOCK), cv2.COLOR_BGR2GRAY), truth_mask(blurred))
    assert soft < 0.6 * sharp


def test_the_field_of_view_edge_is_not_detail() -> None:
    image = np.zeros((60, 60), np.uint8)
    image[10:50, 10:50] = 128  # a flat grey box on black: an edge, no detail inside
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    assert tenengrad(image, mask) == 0.0
    assert laplacian_variance(image, mask) == 0.0
    assert tenengrad(image) > 0.0
