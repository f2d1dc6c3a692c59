"""Depth from US Region Calibration."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from edge_capture.dicom.calibration import for_synthetic
from edge_capture.sources.synthetic import SyntheticSource
from qc.depth import depth_mm, depth_mm_of
from qc.regions import UltrasoundRegion


def test_the_synthetic_scanner_depth(thyroid: SyntheticSource) -> None:
    depth = depth_mm(for_synthetic(thyroid).regions)
    assert depth == pytest.approx(thyroid.depth_mm, abs=thyroid.mm_per_pixel)


def test_only_a_2d_tissue_region_in_cm_counts() -> None:
    spectral = UltrasoundRegion(0, 300, 639, 479, 0.01, -5.0, 4, 7, 3, 3)
    tissue = UltrasoundRegion(0, 0, 639, 299, 0.01, 0.015)
    assert depth_mm([spectral]) is None
    assert depth_mm([spectral, tissue]) == pytest.approx(299 * 0.15)


def test_from_a_dicom_file() -> None:
    ds = pydicom.dcmread(get_testdata_file("OBXXXX1A.dcm"), stop_before_pixels=True)
    depth = depth_mm_of(ds)
    assert depth is not None and 100 < depth < 130  # the screen says 11 cm
    assert depth_mm_of(Dataset()) is None
