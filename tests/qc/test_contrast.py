"""Target visibility and speckle statistics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_capture.sources.synthetic import SyntheticSource
from qc.contrast import LOG_SPECKLE_STD_DB, RAYLEIGH_SNR, cnr, disc, gcnr, ring, speckle_snr, speckle_std_db
from tests.qc.clips import CLOCK


def test_a_nodule_stands_out_more_than_parenchyma_from_itself(thyroid: SyntheticSource) -> None:
    grey = cv2.cvtColor(thyroid.render(0, CLOCK), cv2.COLOR_BGR2GRAY)
    centre, radius = thyroid.nodule_centre_px, thyroid.nodule_radius_px
    assert centre is not None
    nodule = grey[disc(grey.shape, centre, 0.8 * radius)]
    surround = grey[ring(grey.shape, centre, 1.3 * radius, 2.0 * radius)]
    px, py = thyroid.parenchyma_centre_px or (0.0, 0.0)
    patch = 3.0 / thyroid.mm_per_pixel  # the 3 mm homogeneous patch
    left = grey[disc(grey.shape, (px - patch / 2, py), patch / 2)]
    right = grey[disc(grey.shape, (px + patch / 2, py), patch / 2)]
    assert gcnr(nodule, surround) > gcnr(left, right) + 0.2
    assert cnr(nodule, surround) > cnr(left, right)


def test_gcnr_range_and_invariance() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 100, 5000).astype(np.uint8)
    b = rng.integers(150, 256, 5000).astype(np.uint8)
    assert gcnr(a, b) == 1.0
    assert gcnr(a, a) == 0.0
    c = rng.normal(100, 20, 5000).clip(0, 255).astype(np.uint8)
    d = rng.normal(130, 20, 5000).clip(0, 255).astype(np.uint8)
    gamma = (255 * (np.arange(256) / 255) ** 0.5).astype(np.uint8)  # a monotonic remapping
    assert 0 < gcnr(c, d) < 1
    assert gcnr(gamma[c], gamma[d]) == pytest.approx(gcnr(c, d), abs=0.02)
    assert gcnr(np.array([], np.uint8), d) == 0.0


def test_cnr_follows_its_definition() -> None:
    inside, outside = np.array([10.0, 12.0, 14.0]), np.array([30.0, 34.0, 38.0])
    expected = 22.0 / np.sqrt(inside.var() + outside.var())
    assert cnr(inside, outside) == pytest.approx(expected)
    assert cnr(inside, inside) == 0.0


def test_fully_developed_speckle_matches_theory() -> None:
    rng = np.random.default_rng(2)
    envelope = np.abs(rng.normal(size=200_000) + 1j * rng.normal(size=200_000))
    assert speckle_snr(envelope) == pytest.approx(RAYLEIGH_SNR, rel=0.02)
    dynamic_range_db = 60.0
    log_grey = 255 * (20 * np.log10(envelope) + dynamic_range_db) / dynamic_range_db
    assert speckle_std_db(log_grey, dynamic_range_db) == pytest.approx(LOG_SPECKLE_STD_DB, rel=0.03)
    assert speckle_snr(np.full(10, 5.0)) == 0.0


def test_smoothing_raises_speckle_snr(thyroid: SyntheticSource) -> None:
    grey = cv2.cvtColor(thyroid.render(0, CLOCK), cv2.COLOR_BGR2GRAY)
    centre = thyroid.parenchyma_centre_px or (0.0, 0.0)
    region = disc(grey.shape, centre, 3.0 / thyroid.mm_per_pixel)
    smooth = cv2.GaussianBlur(grey, (0, 0), 3)
    assert speckle_snr(smooth[region]) > speckle_snr(grey[region])
    assert speckle_std_db(smooth[region], 60) < speckle_std_db(grey[region], 60)
