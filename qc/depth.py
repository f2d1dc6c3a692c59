"""Imaging depth from the US Region Calibration (QC.md §1): (MaxY1 − MinY0) · PhysicalDeltaY.

Thyroid and carotid presets are typically 3–5 cm deep: much deeper wastes the screen on tissue nobody looks at,
much shallower cuts the target off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pydicom.dataset import Dataset

from qc.regions import CalibrationError, regions_from_dataset

CM = 3  # PhysicalUnitsYDirection: cm
SPATIAL_2D = 1
TISSUE = 1


class CalibratedRegion(Protocol):
    """What depth needs of a US region (qc.regions.UltrasoundRegion fits)."""

    @property
    def min_y0(self) -> int: ...
    @property
    def max_y1(self) -> int: ...
    @property
    def physical_delta_y(self) -> float: ...
    @property
    def physical_units_y(self) -> int: ...
    @property
    def spatial_format(self) -> int: ...
    @property
    def data_type(self) -> int: ...


def depth_mm(regions: Iterable[CalibratedRegion]) -> float | None:
    """Depth in mm of the first 2D tissue region calibrated in cm; None when there is none. Range > 0;
    neither direction is better: compare with the preset's expected range."""
    for r in regions:
        if r.spatial_format == SPATIAL_2D and r.data_type == TISSUE and r.physical_units_y == CM:
            return abs(r.max_y1 - r.min_y0) * abs(float(r.physical_delta_y)) * 10.0
    return None


def depth_mm_of(ds: Dataset) -> float | None:
    """Depth in mm of a DICOM ultrasound image from its Sequence of Ultrasound Regions."""
    try:
        return depth_mm(regions_from_dataset(ds))
    except (CalibrationError, AttributeError, TypeError, ValueError):
        return None
